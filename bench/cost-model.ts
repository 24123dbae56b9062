// When does a GPU pay? Prints the cost model's table (shared/labeling/cost-model.ts) for
// B0, B3 and B7 at their native resolutions and writes it into bench/RESULTS.md between
// its markers. CPU rates come from bench/results.json (this machine's last `npm run
// bench`); the GPU rate from the GPU run named by --gpu-run (bench/gpu/measure.ts's
// results.json), else issue 14's H200 figure.
//
//   node --import tsx bench/cost-model.ts [--results bench/results.json] [--gpu-run <results.json>] [--print]
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type CostTableRow,
  costTable,
  EFFICIENTNETS,
  efficientNet,
  GPU_START_HOURS,
  MEASURED,
  type MeasuredRates,
  PRICES,
} from '../shared/labeling/cost-model.ts';
import { CLASSIFY } from '../shared/settings.ts';
import type { GpuRunResults } from './gpu/measure.ts';
import { BENCH_DIR } from './lib/child.ts';

export const START_MARKER = '<!-- cost-model:start (bench/cost-model.ts writes this block) -->';
export const END_MARKER = '<!-- cost-model:end -->';

interface BenchResults {
  date: string;
  machine: { cpuModel: string; availableParallelism: number };
  sections: {
    preprocess?: {
      data?: { rows: { set: string; mode: string; imagesPerCpuSecond: number; error?: string }[] };
    };
    inference?: { data?: { settings: { threads: number; cpuSecondsPerImage: number; error?: string }[] } };
  };
}

/** This machine's CPU figures from a bench results.json, GPU figures from a GPU run or issue 14. */
export function ratesFrom(bench: BenchResults | undefined, gpuRun: GpuRunResults | undefined): MeasuredRates {
  let rates: MeasuredRates = MEASURED;
  const medium = bench?.sections.preprocess?.data?.rows.find(
    (r) => r.mode === 'one core' && r.set.startsWith('medium') && !r.error,
  );
  const oneThread = bench?.sections.inference?.data?.settings
    .filter((s) => s.threads === 1 && !s.error)
    .sort((a, b) => a.cpuSecondsPerImage - b.cpuSecondsPerImage)[0];
  const where = bench ? `bench/results.json of ${bench.date}, ${bench.machine.cpuModel}` : '';
  if (medium) {
    rates = {
      ...rates,
      decodeCpuMs: {
        value: 1000 / medium.imagesPerCpuSecond,
        source: `${where}: preprocess, ${medium.set}, one core`,
        estimate: false,
      },
    };
  }
  if (oneThread) {
    rates = {
      ...rates,
      b0InferCpuMs: {
        value: oneThread.cpuSecondsPerImage * 1000,
        source: `${where}: B0 inference, 1 thread, best batch`,
        estimate: false,
      },
    };
  }
  const raw = gpuRun?.rows
    .filter((r) => r.phase.kind === 'raw')
    .sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
  if (gpuRun && raw && gpuRun.machine.gpu && gpuRun.model.input.startsWith('224x224')) {
    const hostDecode = gpuRun.rows.find(
      (r) => r.phase.kind === 'decode' && r.phase.pool === gpuRun.machine.cores,
    );
    rates = {
      ...rates,
      b0GpuImagesPerSecond: {
        value: raw.imagesPerSecond,
        gpu: gpuRun.machine.gpu,
        source: `GPU run of ${gpuRun.date} (${gpuRun.machine.gpu}): raw session.run, batch ${(raw.phase as { batch: number }).batch}`,
        estimate: false,
      },
      ...(hostDecode
        ? {
            gpuHostDecodePerVcpu: {
              value: hostDecode.imagesPerSecond / gpuRun.machine.cores,
              source: `GPU run of ${gpuRun.date}: decode only on ${gpuRun.machine.cores} cores`,
              estimate: false,
            },
          }
        : {}),
    };
  }
  return rates;
}

const usd = (n: number) =>
  n >= 100 ? `$${n.toFixed(0)}` : n >= 10 ? `$${n.toFixed(1)}` : `$${n.toFixed(2)}`;

export function renderCostModel(rows: readonly CostTableRow[], rates: MeasuredRates): string {
  // How much the GPU hosts' slower per-vCPU decode decides: the same table's B0 row with this
  // machine's per-core decode rate on the GPU hosts instead.
  const fastHost = costTable([efficientNet('efficientnet_b0')], {
    memoryMb: CLASSIFY.memoryMb,
    batchSize: CLASSIFY.batchSize,
    rates: {
      ...rates,
      gpuHostDecodePerVcpu: { value: 1000 / rates.decodeCpuMs.value, source: 'this machine', estimate: true },
    },
  })[0]?.bestGpu;
  const instances = rows[0]?.gpus.map((g) => g.instanceType) ?? [];
  const lines = [
    '## When does a GPU pay? (cost model)',
    '',
    `\`node --import tsx bench/cost-model.ts\` (shared/labeling/cost-model.ts). US $ per million 2 MP JPEGs labelled, by model at its native resolution; \`*\` marks an estimate (scaled, not measured on that hardware). Prices: ${PRICES.asOf}, us-east-1 on-demand.`,
    '',
    `| model | input | Lambda CPU-ms/image | Lambda x86 ${CLASSIFY.memoryMb} MB | Lambda arm64 ${CLASSIFY.memoryMb} MB | ${instances.join(' | ')} | cheapest GPU |`,
    `|---|---|---|---|---|${instances.map(() => '---|').join('')}---|`,
  ];
  for (const row of rows) {
    const arch = EFFICIENTNETS[row.model.name as keyof typeof EFFICIENTNETS];
    const star = (estimate: boolean) => (estimate ? '*' : '');
    lines.push(
      `| ${row.model.name} | ${arch ? `${arch.crop} px` : '?'} | ${row.lambdaCpuMs.value.toFixed(1)}${star(row.lambdaCpuMs.estimate)} | ${usd(row.lambda.x86PerMillion)}${star(row.lambdaCpuMs.estimate)} | ${usd(row.lambda.armPerMillion)}* | ` +
        `${row.gpus.map((g) => `${usd(g.perMillion)}${star(g.boundBy === 'inference' && g.inferImagesPerSecond.estimate)} (${Math.round(g.imagesPerSecond)}/s, ${g.boundBy})`).join(' | ')} | ${row.bestGpu.instanceType} |`,
    );
  }
  lines.push(
    '',
    'Inputs, each with its machine:',
    '',
    `- Decode: ${rates.decodeCpuMs.value.toFixed(1)} CPU-ms per image (${rates.decodeCpuMs.source}); the same for every model (B7's 600 px input needs a larger decode, so its decode cost is a lower bound).`,
    `- CPU inference: B0 ${rates.b0InferCpuMs.value.toFixed(1)} CPU-ms per image (${rates.b0InferCpuMs.source}); B3 and B7 scaled by MACs (torchvision: ${EFFICIENTNETS.efficientnet_b0.gmacs} / ${EFFICIENTNETS.efficientnet_b3.gmacs} / ${EFFICIENTNETS.efficientnet_b7.gmacs} GMAC), estimates until bench measures them.`,
    `- Lambda: ${CLASSIFY.memoryMb} MB as configured (CLASSIFY.memoryMb) buys ${(CLASSIFY.memoryMb / 1769).toFixed(2)} vCPU of time; billed time = CPU-ms / that share; one request per SQS batch of ${CLASSIFY.batchSize}. arm64 prices applied to x86 times (Graviton not measured).`,
    `- GPU host decode: ${rates.gpuHostDecodePerVcpu.value.toFixed(1)} images/s per vCPU (${rates.gpuHostDecodePerVcpu.source}), on every vCPU but the one the ECS host keeps.`,
    `- GPU inference: B0 ${Math.round(rates.b0GpuImagesPerSecond.value)} images/s (${rates.b0GpuImagesPerSecond.source}); other GPUs scaled by FP32 peak (A10G 31.2, L4 30.3 against ${rates.b0GpuImagesPerSecond.gpu} 67 TFLOP/s) and other models by MACs: estimates until the GPU kit (bench/gpu/) runs on those GPUs. Scaling by MACs is likely pessimistic for B7: B0 uses a few percent of the GPU's FP32 peak, larger models use more of it.`,
    `- A GPU instance labels at min(decode, inference) images/s: decode and inference overlap (issue 14 item 2's target; today's code reached 285 of 399 decode-only images/s on the H200 host, 71 %). Starting a GPU task from zero is counted as ${GPU_START_HOURS * 60} instance-minutes by \`jobs start --target auto\` (not in this table).`,
    ...(fastHost
      ? [
          `- Sensitivity: with this machine's per-core decode rate (${(1000 / rates.decodeCpuMs.value).toFixed(1)} images/s) on the GPU hosts instead, B0's cheapest GPU would be ${fastHost.instanceType} at ${usd(fastHost.perMillion)} per million: which CPU the GPU instance has decides B0's answer, so measure decode there (bench/gpu/run.sh does).`,
        ]
      : []),
    '- Not included: S3, SQS, DynamoDB, data transfer, ECS/EC2 idle time beyond the start-up allowance.',
    '',
  );
  return lines.join('\n');
}

/** Replaces the marked block in `markdown`, or appends it. */
export function withBlock(markdown: string, block: string): string {
  const wrapped = `${START_MARKER}\n\n${block.trimEnd()}\n\n${END_MARKER}`;
  const start = markdown.indexOf(START_MARKER);
  const end = markdown.indexOf(END_MARKER);
  if (start >= 0 && end > start)
    return `${markdown.slice(0, start)}${wrapped}${markdown.slice(end + END_MARKER.length)}`;
  return `${markdown.trimEnd()}\n\n${wrapped}\n`;
}

async function readJson<T>(path: string | undefined): Promise<T | undefined> {
  if (!path) return undefined;
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      results: { type: 'string', default: join(BENCH_DIR, 'results.json') },
      'gpu-run': { type: 'string' },
      markdown: { type: 'string', default: join(BENCH_DIR, 'RESULTS.md') },
      print: { type: 'boolean' },
    },
  });
  const bench = await readJson<BenchResults>(values.results).catch(() => undefined);
  const gpuRun = await readJson<GpuRunResults>(values['gpu-run']);
  const rates = ratesFrom(bench, gpuRun);
  const rows = costTable(
    (['efficientnet_b0', 'efficientnet_b3', 'efficientnet_b7'] as const).map(efficientNet),
    { memoryMb: CLASSIFY.memoryMb, batchSize: CLASSIFY.batchSize, rates },
  );
  const block = renderCostModel(rows, rates);
  process.stdout.write(block);
  if (values.print) return;
  const markdown = await readFile(values.markdown, 'utf8');
  await writeFile(values.markdown, withBlock(markdown, block));
  process.stderr.write(`wrote the cost model into ${values.markdown}\n`);
}

if (/cost-model\.ts$/.test(process.argv[1] ?? '')) {
  main().catch((error: unknown) => {
    process.stderr.write(`cost-model: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
