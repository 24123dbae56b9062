// The GPU run kit (bench/gpu/): the splitter and its manifest on a generated file, the
// measuring script's dry run on the CPU provider, and its refusal to measure when the
// CUDA provider is not the one in use. The real pack (downloads of ~380 MB from the npm
// registry) is a manual step: `npm run bench:gpu:pack` (bench/README.md, "GPU run").
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { GpuRunResults } from '../../bench/gpu/measure.ts';
import { plan, renderMarkdown } from '../../bench/gpu/measure.ts';
import {
  MAX_TRANSFER_BYTES,
  sha256File,
  splitIntoParts,
  verifyKit,
  writeKitManifest,
} from '../../bench/gpu/parts.ts';
import { GPU_RUNS_HEADING, withRun } from '../../bench/gpu/record.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';

const run = promisify(execFile);
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpu-kit-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kit parts and manifest', () => {
  it('splits a file over the limit into parts no larger than it, which verify and reassemble', async () => {
    const out = await mkdtemp(join(dir, 'kit-'));
    const source = join(dir, 'big.bin');
    const limit = 1024 * 1024;
    // 2.5 limits: two full parts and a half one.
    const bytes = randomBytes(limit * 2 + limit / 2);
    await writeFile(source, bytes);
    const small = join(dir, 'small.bin');
    await writeFile(small, randomBytes(1000));

    const big = await splitIntoParts(source, out, limit);
    const whole = await splitIntoParts(small, out, limit);
    assert.deepEqual(
      big.parts.map((p) => p.file),
      ['big.bin.part-00', 'big.bin.part-01', 'big.bin.part-02'],
    );
    assert.deepEqual(
      big.parts.map((p) => p.bytes),
      [limit, limit, limit / 2],
    );
    assert.equal(big.sha256, await sha256File(source));
    assert.deepEqual(
      whole.parts.map((p) => p.file),
      ['small.bin'],
      'a file within the limit goes as it is',
    );
    for (const part of big.parts) {
      assert.ok((await stat(join(out, part.file))).size <= limit);
      assert.equal(part.sha256, await sha256File(join(out, part.file)));
    }

    await writeKitManifest(out, [big, whole], [], { test: true });
    assert.deepEqual((await verifyKit(out)).problems, []);

    // The far side's shell route: sha256sum -c on the parts, cat in ASSEMBLE.txt's order,
    // sha256sum -c on the artifacts (what bench/gpu/run.sh does before Node.js exists).
    await rm(source);
    await run('sha256sum', ['--quiet', '-c', 'PARTS.sha256'], { cwd: out });
    const assemble = (await readFile(join(out, 'ASSEMBLE.txt'), 'utf8')).trim();
    assert.equal(assemble, 'big.bin big.bin.part-00 big.bin.part-01 big.bin.part-02');
    await run('bash', ['-c', 'while read -r name parts; do cat $parts > "$name"; done < ASSEMBLE.txt'], {
      cwd: out,
    });
    await run('sha256sum', ['--quiet', '-c', 'ARTIFACTS.sha256'], { cwd: out });
    assert.ok(bytes.equals(await readFile(join(out, 'big.bin'))));
  });

  it('reports a damaged or missing part', async () => {
    const out = await mkdtemp(join(dir, 'kit-'));
    const source = join(dir, 'damaged.bin');
    await writeFile(source, randomBytes(3000));
    const artifact = await splitIntoParts(source, out, 1000);
    await writeKitManifest(out, [artifact], [], {});
    const part = join(out, 'damaged.bin.part-01');
    const data = await readFile(part);
    data[0] = (data[0] as number) ^ 0xff;
    await writeFile(part, data);
    await rm(join(out, 'damaged.bin.part-02'));
    const { problems } = await verifyKit(out);
    assert.deepEqual(
      problems.map((p) => [p.file, p.problem.split(' ')[0]]),
      [
        ['damaged.bin.part-01', 'sha256'],
        ['damaged.bin.part-02', 'missing'],
      ],
    );
    await assert.rejects(run('sha256sum', ['--quiet', '-c', 'PARTS.sha256'], { cwd: out }));
  });

  it('keeps every transfer within 64 MiB', () => {
    assert.equal(MAX_TRANSFER_BYTES, 64 * 1024 * 1024);
  });
});

describe('measuring script', () => {
  it("plans issue 14's table on a 16-core GPU host", () => {
    const phases = plan({
      provider: 'cuda',
      rawBatches: [32, 128],
      classifierBatches: [1, 8, 32, 64, 128],
      pipelineBatch: 32,
      cores: 16,
    });
    assert.deepEqual(phases[0], { kind: 'check' }, 'the provider check comes first');
    const names = phases.slice(1).map((p) => {
      switch (p.kind) {
        case 'raw':
        case 'classifier':
          return `${p.kind} ${p.batch}`;
        case 'decode':
          return `decode pool ${p.pool}`;
        case 'labelAll':
          return `labelAll ${p.provider} pool ${p.pool}`;
        default:
          return p.kind;
      }
    });
    assert.deepEqual(names, [
      'raw 32',
      'raw 128',
      'classifier 1',
      'classifier 8',
      'classifier 32',
      'classifier 64',
      'classifier 128',
      'decode pool 4',
      'decode pool 16',
      'labelAll cuda pool 4',
      'labelAll cuda pool 16',
      'labelAll cpu pool 4',
      'labelAll cpu pool 16',
    ]);
  });

  it('dry run on the CPU provider: every phase measured, table and JSON written', async () => {
    const out = join(dir, 'dry');
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        join(PACKAGE_ROOT, 'bench', 'gpu', 'measure.ts'),
        '--provider',
        'cpu',
        '--model',
        DEFAULT_MODEL_DIR,
        '--out',
        out,
        '--seconds',
        '0.2',
        '--images',
        '3',
        '--image-kind',
        'small',
        '--raw-batches',
        '4',
        '--batches',
        '1,4',
        '--pipeline-batch',
        '4',
      ],
      { cwd: PACKAGE_ROOT, timeout: 600_000 },
    );
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as GpuRunResults;
    assert.equal(results.provider, 'cpu');
    assert.equal(results.model.id, 'fashion-efficientnet');
    assert.ok(results.machine.cores >= 1);
    const kinds = results.rows.map((r) => r.phase.kind);
    assert.deepEqual([...new Set(kinds)], ['raw', 'classifier', 'decode', 'labelAll']);
    for (const row of results.rows) {
      assert.ok(row.images > 0 && row.imagesPerSecond > 0, `${JSON.stringify(row.phase)} measured`);
      if (row.phase.kind === 'classifier' || row.phase.kind === 'labelAll')
        assert.equal(row.providerInUse, 'cpu');
    }
    const markdown = await readFile(join(out, 'results.md'), 'utf8');
    assert.equal(markdown, renderMarkdown(results));
    assert.equal(stdout, markdown);
    assert.match(markdown, /\| raw `session.run`, batch 4 \|/);
    assert.match(markdown, /\| the project's `Classifier`, batch 1 \/ 4 \|/);
    assert.match(markdown, /`labelAll` end to end on the CPU, batch 4/);
  });

  it('refuses to measure when CUDA is not the provider in use', async (t) => {
    if ((await run('bash', ['-c', 'command -v nvidia-smi || true'])).stdout.trim() !== '') {
      t.skip('this machine has nvidia-smi: CUDA may well load here');
      return;
    }
    const out = join(dir, 'no-cuda');
    const failure = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        join(PACKAGE_ROOT, 'bench', 'gpu', 'measure.ts'),
        '--provider',
        'cuda',
        '--model',
        DEFAULT_MODEL_DIR,
        '--out',
        out,
        '--images',
        '1',
        '--image-kind',
        'small',
      ],
      { cwd: PACKAGE_ROOT, timeout: 300_000 },
    ).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    assert.ok(failure, 'the run must fail');
    assert.equal(failure.code, 1);
    assert.match(failure.stderr ?? '', /model\/provider-unavailable/);
    await assert.rejects(stat(join(out, 'results.json')), 'no results from a run that did not use CUDA');
  });
});

describe('recording a GPU run', () => {
  it('puts the newest run first under the GPU runs heading, before the next section', () => {
    const start = `# R\n\nintro\n\n${GPU_RUNS_HEADING}\n\nhow runs are recorded\n\n### old run\n\nold\n\n## Later section\n\nkept\n`;
    const once = withRun(start, '### new run\n\nnew\n');
    assert.ok(once.indexOf('### new run') < once.indexOf('### old run'), 'newest first');
    assert.ok(once.indexOf('how runs are recorded') < once.indexOf('### new run'), 'after the intro');
    assert.ok(once.includes('## Later section\n\nkept\n'));
    const fresh = withRun('# R\n', '### first\n\nx\n');
    assert.equal(fresh, `# R\n\n${GPU_RUNS_HEADING}\n\n### first\n\nx\n`);
  });
});
