import type { HandlerOverheadData, Results, SectionData, SectionName, SectionRecord } from './types.ts';

const n = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
const pct = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(0)} %`;
const usd = (v: number) => `$${v < 10 ? v.toFixed(2) : v.toFixed(0)}`;

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The section's data, or a line saying why there is none. */
function section<K extends SectionName>(
  results: Results,
  name: K,
  render: (data: SectionData[K]) => string,
): string {
  const record = results.sections[name] as SectionRecord<K> | undefined;
  if (!record) return '_Not run._';
  const when =
    record.date === results.date ? '' : `_Measured ${record.date}${record.quick ? ' (quick)' : ''}._\n\n`;
  if (record.status !== 'ok') return `${when}**${record.status}:** ${record.error}`;
  return when + render(record.data);
}

export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [];
  out.push('# Benchmark results');
  out.push('');
  if (r.quick) {
    out.push('> **Quick run** (`--quick`): tiny counts for development; these numbers are not results.');
    out.push('');
  }
  out.push(
    `${r.date} · \`${r.command}\` · ${m.cpuModel}, ${m.availableParallelism} cores · ` +
      `Node ${m.versions.node} · onnxruntime-node ${m.versions.onnxruntimeNode} · sharp ${m.versions.sharp}`,
  );
  out.push('');
  out.push(
    table(
      ['Target', 'Goal', 'Measured', 'Verdict'],
      r.targets.map((t) => [t.name, t.goal, t.measured, t.verdict === 'met' ? '**met**' : t.verdict]),
    ),
  );
  out.push('');
  const missed = r.targets.filter((t) => t.verdict === 'missed' && t.bound);
  if (missed.length > 0) {
    out.push('### What bounds the missed targets');
    out.push('');
    for (const t of missed) out.push(`- **${t.name}.** ${t.bound}`);
    out.push('');
  }

  out.push('## Run');
  out.push('');
  out.push(`- Command: \`${r.command}\` (from the repository root), ${n(r.wallSeconds, 0)} s wall.`);
  out.push(`- Date: ${r.date}.`);
  out.push(
    `- Machine: ${m.cpuModel}, ${m.logicalCpus} logical CPUs (${m.availableParallelism} available), ${m.vectorIsa}` +
      `${m.hypervisor ? ', virtual machine' : ''}, ${m.memoryGb} GB RAM, Linux ${m.kernel}; ` +
      `load average at start ${m.loadAverageAtStart.join(' / ')}.`,
  );
  out.push(
    `- Software: Node ${m.versions.node}, onnxruntime-node ${m.versions.onnxruntimeNode}, sharp ${m.versions.sharp} ` +
      `(libvips ${m.versions.libvips})${r.model ? `, torch ${r.model.torch}, torchvision ${r.model.torchvision}` : ''}.`,
  );
  if (r.model) {
    out.push(
      `- Model: EfficientNet-B0 224 px, torchvision architecture, random weights (seed fixed), exported by ` +
        `\`bench/export_b0.py\` into \`bench/.cache/b0\` (sha256 ${r.model.sha256.slice(0, 12)}…); ` +
        `${(r.model.macs / 1e9).toFixed(3)} GMAC = ${(r.model.flops / 1e9).toFixed(3)} GFLOP per image, ` +
        `${(r.model.params / 1e6).toFixed(2)} M parameters (${r.model.flopsSource}).`,
    );
  } else if (r.modelError) {
    out.push(`- Model: **not available**: ${r.modelError}`);
  }
  out.push(
    '- Every measurement runs in a fresh child process (ORT_DISABLE_TELEMETRY=1); shared machines add 5–15 % noise.',
  );
  out.push('');

  out.push('## 1. Inference (onnxruntime-node, B0)');
  out.push('');
  out.push(
    section(r, 'inference', (d) => {
      const rows = d.settings.map((s) => [
        String(s.batchSize),
        String(s.threads),
        s.error ? `failed: ${s.error.slice(0, 80)}` : n(s.imagesPerSecond),
        n(s.msPerImage, 2),
        n(s.batchLatencyMs.p50),
        n(s.batchLatencyMs.p90),
        n(s.rssAfterLoadMb, 0),
        n(s.peakRssMb, 0),
        pct(s.fractionOfFlopLimit),
      ]);
      return [
        `${d.model}; ${n(d.seconds)} s per setting after warm-up, each setting in a fresh process${(d.rounds ?? 1) > 1 ? `, the fastest of ${d.rounds} rounds` : ''}; sequential execution, graph optimisation 'all', memory arena on (the project's Classifier).`,
        '',
        table(
          [
            'batch',
            'intra-op threads',
            'images/s',
            'ms/image',
            'batch p50 ms',
            'batch p90 ms',
            'RSS after load MB',
            'peak RSS MB',
            'of FP32 limit',
          ],
          rows,
        ),
        '',
        `**Defaults for the workers: batch ${d.chosen.batchSize}, ${d.chosen.threads} intra-op thread(s).** ${d.chosen.why} Inference alone; with decode on the same cores see "Threads in the pipeline" in section 3.`,
        '',
        '"Of FP32 limit" = images/s x GFLOP per image / (threads x the per-core FMA peak; the all-core peak when threads = cores).',
      ].join('\n');
    }),
  );
  out.push('');

  out.push('## 2. Preprocessing (decode + orient + resize + crop + tensor)');
  out.push('');
  out.push(
    section(r, 'preprocess', (d) =>
      [
        `\`preprocessInto\` from memory. "one core": pinned with taskset, one image at a time, \`sharp.concurrency(1)\`. "workers": the labeler's setting, as many images in flight as cores with sharp's default libvips concurrency (${d.sharpDefaultConcurrency} here). Synthetic JPEGs are seeded random colour fields plus noise, quality 90, every fourth with EXIF orientation 6. ${d.photosNote}.`,
        '',
        table(
          ['input', 'mode', 'images in flight', 'images/s', 'images per CPU-second', 'p50 ms/image'],
          d.rows.map((row) => [
            row.set,
            row.mode,
            String(row.concurrency),
            row.error ? `failed: ${row.error.slice(0, 80)}` : n(row.imagesPerSecond),
            n(row.imagesPerCpuSecond),
            n(row.msPerImageP50),
          ]),
        ),
      ].join('\n'),
    ),
  );
  out.push('');

  out.push('### Against libjpeg-turbo (PIL), one core, same run');
  out.push('');
  out.push(
    section(r, 'decode', (d) =>
      [
        `CPU-ms per image (the median pass over the files), pinned to core ${d.core}, one image at a time, \`sharp.concurrency(1)\`, files from memory. ` +
          `PIL ${d.pil || '–'} (Debian python3-pil, libjpeg-turbo) \`Image.open(...).convert('RGB')\`, the reference ` +
          "decode torchvision's EfficientNets were trained on, runs before and after ours (the mean is shown). " +
          '"previous": `preprocessInto` before decision 0031, which converted every embedded ICC profile to sRGB (bench/lib/preprocess-before.ts). ' +
          '`preprocessInto` runs in a process of its own; the previous one and these parts take turns in another: the header as `preprocessInto` reads it (in JavaScript for JPEG) and through libvips (`metadata()`), full decode to raw without and with the profile, ' +
          'decode with shrink-on-load and the resize (no tensor), and the JavaScript tensor fill alone.',
        '',
        table(
          [
            'input',
            'preprocessInto',
            'previous',
            'PIL full decode',
            'ratio (goal)',
            'PIL 1/2 scale',
            'header',
            'header (libvips)',
            'full decode',
            'with profile',
            'decode + resize',
            'tensor fill',
          ],
          d.rows.map((row) =>
            row.error
              ? [row.set, `failed: ${row.error.slice(0, 80)}`, '', '', '', '', '', '', '', '', '', '']
              : [
                  row.set,
                  n(row.preprocessCpuMs, 2),
                  n(row.previousCpuMs, 2),
                  n(row.pilCpuMs, 2),
                  `${n(row.ratio, 2)}x (<= ${n(row.goal, 1)}x)`,
                  n(row.pilDraftCpuMs, 2),
                  n(row.parts.header, 2),
                  n(row.parts.headerLibvips, 2),
                  n(row.parts.fullDecode, 2),
                  n(row.parts.fullDecodeWithProfile, 2),
                  n(row.parts.decodeResize, 2),
                  n(row.parts.tensorFill, 2),
                ],
          ),
        ),
      ].join('\n'),
    ),
  );
  out.push('');

  out.push('## 3. End to end');
  out.push('');
  out.push('### Through the local stack');
  out.push('');
  out.push(
    section(r, 'e2e', (d) => {
      if (!d.available || !d.summary)
        return `\`${d.command}\` (${d.images} medium JPEGs): **${d.note ?? 'not available'}**`;
      const s = d.summary;
      const stages = s.stageSeconds
        ? Object.entries(s.stageSeconds)
            .map(([k, v]) => `${k} ${n(v, 2)} s`)
            .join(', ')
        : '–';
      return [
        `\`${d.command}\``,
        '',
        table(
          [
            'files',
            'ok',
            'failed',
            'duplicates',
            'images/s',
            'wall s',
            'CPU s',
            'CPU ms/image',
            'stage seconds',
          ],
          [
            [
              String(s.files),
              String(s.ok),
              String(s.failed),
              String(s.duplicates),
              n(s.imagesPerSecond),
              n(s.wallSeconds),
              n(s.cpuSeconds),
              n((s.cpuSeconds / Math.max(1, s.ok)) * 1000),
              stages,
            ],
          ],
        ),
        '',
        `The command's own process took ${n(d.parentWallSeconds)} s from spawn to exit (emulator start-up included).`,
        ...(s.cpuSecondsBy
          ? [
              '',
              `CPU ms per image by process: the handler (execution environments: S3 GET, decode, inference, ` +
                `DynamoDB and S3 writes, as on Lambda) ${n((s.cpuSecondsBy.handler / Math.max(1, s.ok)) * 1000)}; ` +
                `emulators that do not exist on AWS: S3 + SQS (fauxqs) with the local glue ` +
                `${n((s.cpuSecondsBy.s3SqsAndGlue / Math.max(1, s.ok)) * 1000)}, DynamoDB Local ` +
                `${n((s.cpuSecondsBy.dynamoDbLocal / Math.max(1, s.ok)) * 1000)}.`,
            ]
          : []),
        ...(d.handlerOverhead ? ['', handlerOverheadText(d.handlerOverhead)] : []),
      ].join('\n');
    }),
  );
  out.push('');
  out.push('### In process (the labeler without queue or database)');
  out.push('');
  out.push(
    section(r, 'pipeline', (d) =>
      [
        '`createImageLabeler` + `labelAll` (decode of the next batch overlaps inference of this one), images from memory. "one core" is pinned with taskset: what a 1-vCPU (1769 MB) Lambda gets, and what section 7 prices.',
        '',
        table(
          [
            'run',
            'input',
            'batch',
            'threads',
            'in flight',
            'images/s',
            'CPU ms/image',
            'decode ms/image',
            'infer ms/image',
            'peak RSS MB',
          ],
          d.rows.map((row) => [
            row.name,
            row.set,
            String(row.batchSize),
            String(row.threads),
            String(row.concurrency),
            row.error && row.images === 0 ? `failed: ${row.error.slice(0, 80)}` : n(row.imagesPerSecond),
            n(row.cpuSecondsPerImage * 1000),
            n(row.msPerImage.preprocess),
            n(row.msPerImage.infer),
            n(row.peakRssMb, 0),
          ]),
        ),
        '',
        'decode and infer ms are wall times per image inside the overlapped pipeline (they include waiting for the other stage on a shared core), so they do not add up to 1000 / images/s.',
        '',
        `**Threads in the pipeline.** ${d.recommendation ?? ''}`,
      ].join('\n'),
    ),
  );
  out.push('');

  out.push('## 4. Peers (same run, same B0 weights, same medium JPEGs read from disk)');
  out.push('');
  out.push(
    section(r, 'peers', (d) => {
      const ours = d.ours;
      const rows = [ours, d.naive, ...d.torch]
        .filter((p): p is NonNullable<typeof p> => p !== null)
        .map((p) => [
          p.name,
          n(p.imagesPerSecond),
          n(p.cpuSecondsPerImage * 1000),
          String(p.images),
          ours && p !== ours ? `${(ours.imagesPerSecond / p.imagesPerSecond).toFixed(2)}x` : '–',
          p.note ?? '',
        ]);
      return [
        `${d.files} files of ${d.set}. Peer (a) is \`bench/peers/naive.ts\`; peer (b) is \`bench/peers/torch_eager.py\` (PIL, Resize(256), CenterCrop(224), ToTensor, Normalize; torch ${d.torchVersion ?? '?'} from Debian, \`torch.set_num_threads\` = cores). Warm-up excluded everywhere.`,
        '',
        table(['labeller', 'images/s', 'CPU ms/image', 'images', 'ours vs it', 'note'], rows),
        ...(d.errors.length > 0 ? ['', ...d.errors.map((e) => `- error: ${e}`)] : []),
      ].join('\n');
    }),
  );
  out.push('');

  out.push('## 5. The hardware limit');
  out.push('');
  out.push(
    section(r, 'fma', (d) => {
      const gflop = r.model ? r.model.flops / 1e9 : 0.772;
      const perImageMs = (gflops: number) => (gflop / gflops) * 1000;
      return [
        `\`bench/fma-peak.cpp\` (${d.compiler}, \`${d.flags}\`): ${d.perCore.chains} independent FMA chains on ${d.perCore.isa} registers (${d.perCore.lanes} FP32 lanes), best of 3.`,
        '',
        table(
          ['threads', 'GFLOP/s', 'B0 floor ms/image', 'B0 ceiling images/s'],
          [d.perCore, d.allCores].map((f) => [
            String(f.threads),
            n(f.gflops),
            n(perImageMs(f.gflops), 2),
            n(1000 / perImageMs(f.gflops)),
          ]),
        ),
        '',
        `B0 = ${gflop.toFixed(3)} GFLOP per image (${r.model ? `2 x MACs; ${r.model.flopsSource}` : 'the published 0.386 GMAC constant'}). The fractions are in section 1.`,
      ].join('\n');
    }),
  );
  out.push('');

  out.push('## 6. Cold start');
  out.push('');
  out.push(
    section(r, 'coldstart', (d) =>
      [
        "Fresh child process per run; times from the parent's spawn; median of the runs. The first label is one small JPEG through the real preprocessing.",
        '',
        table(
          [
            'model, how',
            'runs',
            'imports done ms',
            'model loaded ms',
            'first label ms',
            'all runs ms',
            'note',
          ],
          d.rows.map((row) => [
            row.name,
            String(row.runs),
            n(row.importsMs, 0),
            n(row.modelLoadedMs, 0),
            n(row.firstLabelMs, 0),
            row.allFirstLabelMs.map((v) => v.toFixed(0)).join(', '),
            row.error ? `failed: ${row.error.slice(0, 100)}` : (row.note ?? ''),
          ]),
        ),
        '',
        `Classify handler init (\`${d.handler.path}\`: \`import()\` in a fresh process; the module reads its config, creates clients and loads the model at module scope, as in Lambda INIT)${d.handler.runs.length > 0 ? '' : `: ${d.handler.note ?? 'not available'}`}`,
        ...(d.handler.runs.length > 0
          ? [
              '',
              table(
                ['model, how', 'runs', 'import() ms', 'spawn to ready ms'],
                d.handler.runs.map((h) => [
                  h.model,
                  String(h.runs),
                  n(h.importMs, 0),
                  n(h.spawnToImportedMs, 0),
                ]),
              ),
              '',
              d.handler.note ?? '',
            ]
          : []),
      ].join('\n'),
    ),
  );
  out.push('');

  out.push('## 7. Cost');
  out.push('');
  out.push(
    section(r, 'cost', (d) =>
      [
        table(
          [
            'input',
            'ms/image (billed)',
            'CPU ms/image',
            'x86 1769 MB',
            'arm64 1769 MB',
            'x86 3008 MB',
            'arm64 3008 MB',
            'Rekognition DetectLabels',
          ],
          d.rows.map((row) => [
            row.input,
            n(row.msPerImage),
            n(row.cpuMsPerImage),
            usd(row.x86_1769),
            usd(row.arm_1769),
            usd(row.x86_3008),
            usd(row.arm_3008),
            usd(d.rekognitionPerMillion),
          ]),
        ),
        '',
        'US $ per million images, Lambda list prices ($0.0000166667 per GB-s x86_64, $0.0000133334 arm64, $0.20 per million requests).',
        '',
        ...d.assumptions.map((a) => `- ${a}`),
      ].join('\n'),
    ),
  );
  out.push('');

  out.push('## 8. Classifier vs raw session.run');
  out.push('');
  out.push(
    section(r, 'classifier', (d) =>
      [
        table(
          [
            'model',
            'batch',
            'threads',
            'raw images/s',
            'Classifier images/s',
            'Classifier / raw',
            'raw p50 ms/batch',
            'Classifier p50 ms/batch',
            'Classifier − raw, ms/batch',
          ],
          d.rows.map((row) => [
            row.model,
            String(row.batchSize),
            String(row.threads),
            row.error ? `failed: ${row.error.slice(0, 80)}` : n(row.rawImagesPerSecond),
            n(row.classifierImagesPerSecond),
            pct(row.ratio),
            n(row.rawMsP50, 2),
            n(row.classifierMsP50, 2),
            n(row.classifierMsP50 - row.rawMsP50, 2),
          ]),
        ),
        '',
        'Same model, session options, threads and input in one process; the two paths take turns run by run. Raw = `session.run` on the main thread with one tensor; Classifier = `classify` (inference thread, input transferred, softmax, top 5). "null" has B0\'s input and output and almost no compute: its Classifier-minus-raw ms per batch is the overhead a GPU would see on top of its inference time per batch.',
      ].join('\n'),
    ),
  );
  out.push('');
  out.push('## 9. Compound scaling: B0, B3, B7 at their native resolutions');
  out.push('');
  out.push(
    section(r, 'scaling', (d) =>
      [
        table(
          [
            'model',
            'input (resize → crop)',
            'params',
            'GFLOP/image',
            'batch × threads',
            'images/s',
            'CPU-ms/image',
            'of FP32 limit',
            'Lambda x86 1769 MB, $/M',
          ],
          d.rows.map((row) => [
            row.arch,
            `${row.resizeSize} → ${row.resolution} px`,
            `${(row.params / 1e6).toFixed(1)} M`,
            n(row.gflopPerImage, 2),
            `${row.batchSize} × ${row.threads}`,
            row.error ? `failed: ${row.error}` : n(row.imagesPerSecond, 2),
            n(row.cpuMsPerImage, 0),
            pct(row.fractionOfFlopLimit),
            row.error ? '–' : usd(row.lambdaX86PerMillion),
          ]),
        ),
        '',
        'Inference only (no decode), random weights: torchvision architectures exported by `models/export_efficientnet.py` ' +
          'with the preprocessing of their ImageNet weights; speed does not depend on the weights. ' +
          'GFLOP = 2 × Conv/Gemm MACs counted from each ONNX graph. "Of FP32 limit" = images/s × GFLOP per image / ' +
          'the FMA peak for that many threads (section 5). Lambda $ per million = CPU-seconds per image × 1769 MB × ' +
          `x86 GB-s price + $${d.requestsPerMillion.toFixed(3)} of requests (one vCPU bills its wall time, which here is the CPU time); ` +
          'decoding the larger inputs adds the preprocessing cost of section 2 on top.',
      ].join('\n'),
    ),
  );
  out.push('');
  out.push('## 10. INT8 (static QDQ) and BF16 against FP32');
  out.push('');
  out.push(
    section(r, 'int8', (d) =>
      [
        table(
          [
            'model',
            'batch × threads',
            'FP32 images/s',
            'INT8 images/s',
            'INT8 / FP32',
            'CPU-ms/image FP32 → INT8',
            'top-1 agreement',
            'top-1 FP32 → INT8',
            'calibration',
          ],
          d.rows.map((row) => [
            row.model,
            `${row.batchSize} × ${row.threads}`,
            row.error ? `failed: ${row.error.slice(0, 80)}` : n(row.fp32ImagesPerSecond),
            n(row.int8ImagesPerSecond),
            row.error ? '–' : `${n(row.speedup, 2)}×`,
            `${n(row.fp32CpuMsPerImage, 2)} → ${n(row.int8CpuMsPerImage, 2)}`,
            row.comparison
              ? `${(row.comparison.agreement * 100).toFixed(2)} % of ${row.comparison.images}`
              : '– (random weights)',
            row.comparison
              ? `${(row.comparison.fp32Top1 * 100).toFixed(2)} → ${(row.comparison.int8Top1 * 100).toFixed(2)} %`
              : '–',
            row.calibrationSource,
          ]),
        ),
        '',
        `Targets for making INT8 the default: ≥ ${d.targets.speedup}× FP32 images/s at the default batch and ` +
          `threads and ≥ ${(d.targets.agreement * 100).toFixed(0)} % top-1 agreement on the test split. ` +
          (d.rows.every((row) => !row.error && row.speedup >= d.targets.speedup)
            ? 'Speed holds. '
            : 'Speed does not hold on this machine: the default stays FP32. ') +
          'INT8 = `labeler model quantize` (7-bit int8 weights per channel, uint8 activations, ranges = mean of ' +
          'per-batch min and max); onnxruntime fuses every node into its integer kernel (QLinearConv, QLinearSigmoid, ' +
          'QLinearMul, QLinearGlobalAveragePool, QGemm). Speed = the Classifier (infer worker), best of the FP32/INT8 ' +
          'turns; agreement and accuracy through the labeler\'s own preprocessing. The CPU\'s vector ISA is in "Run".',
        '',
        `BF16 (the bundled model cast to BF16 throughout, weights rounded, opset raised to 22, the first whose Conv ` +
          `admits bfloat16): ${d.bf16.outcome}.` +
          (d.bf16.loaded
            ? ''
            : " onnxruntime-node's CPU provider has no BF16 kernel for it, so a BF16 EfficientNet does not run on the CPU at all."),
      ].join('\n'),
    ),
  );
  out.push('');
  return `${out.join('\n')}\n`;
}

const HANDLER_PATHS: ReadonlyArray<readonly [string, string]> = [
  ['inProcess', 'in process: `labelAll` over the files'],
  ['handler', 'the handler as deployed: S3 GET, grouped DynamoDB writes, S3 export'],
  ['handlerPerImageWrites', 'the handler with one DynamoDB transaction per result (before decision 0021)'],
  ['handlerChecksums', "the handler with the SDK's default response checksums (before decision 0021)"],
  ['handlerFileImages', 'the handler reading images from disk instead of S3'],
  ['handlerRawGet', 'the handler reading images with a bare HTTP GET, no SDK'],
];

function handlerOverheadText(h: HandlerOverheadData): string {
  const head =
    `The handler against the in-process pipeline, one process and one labeler (1 inference thread, ` +
    `batches of 8), paths taking turns over ${h.rounds} rounds of ${h.images} images; the emulators run in ` +
    `other processes, so the CPU is the handler's own (decision 0021): \`${h.command}\``;
  const ms = h.cpuMsPerImage;
  const base = ms?.inProcess;
  if (!ms || base === undefined) return `${head}: **${h.note ?? 'not available'}**`;
  const rows = HANDLER_PATHS.filter(([key]) => ms[key] !== undefined).map(([key, what]) => [
    what,
    n(ms[key] as number),
    key === 'inProcess' ? '–' : `${n(((ms[key] as number) / base - 1) * 100, 0)} %`,
  ]);
  const byThread = h.cpuMsByThread ? handlerThreadsText(h.cpuMsByThread) : undefined;
  return [
    head,
    '',
    table(['path', 'CPU ms/image (median)', 'over in process'], rows),
    ...(byThread ? ['', byThread] : []),
  ].join('\n');
}

/** Which threads spent each path's CPU: `main` is JavaScript; the rest go by thread name. */
function handlerThreadsText(byThread: NonNullable<HandlerOverheadData['cpuMsByThread']>): string | undefined {
  const paths = HANDLER_PATHS.map(([key]) => key).filter((key) => byThread[key] !== undefined);
  const totals = new Map<string, number>();
  for (const key of paths) {
    for (const [group, ms] of Object.entries(byThread[key] ?? {}))
      totals.set(group, (totals.get(group) ?? 0) + ms);
  }
  if (totals.size === 0) return undefined;
  const groups = [...totals].sort((a, b) => b[1] - a[1]).map(([group]) => group);
  const rows = paths.map((key) => [key, ...groups.map((group) => n(byThread[key]?.[group]))]);
  return [
    'CPU ms per image by thread (mean of the rounds; `main` runs the JavaScript, the others go by their thread names):',
    '',
    table(['path', ...groups], rows),
  ].join('\n');
}
