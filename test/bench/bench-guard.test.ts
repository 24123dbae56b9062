import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Context, FULL } from '../../bench/lib/context.ts';
import { sectionProblems } from '../../bench/lib/outcome.ts';
import { javaMajor } from '../../bench/lib/prerequisites.ts';
import { machineInfo } from '../../bench/lib/system.ts';
import { evaluateTargets } from '../../bench/lib/targets.ts';
import type { Results, SectionRecord } from '../../bench/lib/types.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';

const BENCH = join(PACKAGE_ROOT, 'bench');
const COMMITTED = ['RESULTS.md', 'results.json'];

/** Runs `npm run bench`'s entry point with its arguments; PATH and BENCH_PYTHON shape the machine it sees. */
function bench(args: readonly string[], env: NodeJS.ProcessEnv) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(BENCH, 'run.ts'), ...args], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: run.status, stderr: run.stderr };
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

async function script(path: string, body: string): Promise<string> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

const hasGpp = spawnSync('g++', ['--version']).status === 0;

describe('npm run bench on a machine that cannot run it', () => {
  let dir: string;
  let committed: Record<string, string>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-bench-'));
    committed = {};
    for (const name of COMMITTED) committed[name] = await sha256(join(BENCH, name));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names every missing prerequisite and its packages in one line, exits 3 and measures nothing', async () => {
    const empty = join(dir, 'empty-path');
    await mkdir(empty);
    const python = await script(
      join(dir, 'python-without-torch'),
      `echo "ModuleNotFoundError: No module named 'torch'" >&2\nexit 1`,
    );
    const out = join(dir, 'out-missing');
    const run = bench(['--only', 'fma,pipeline,e2e,peers', '--out-dir', out], {
      PATH: empty,
      BENCH_PYTHON: python,
    });
    assert.equal(run.code, 3, run.stderr);
    const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, run.stderr);
    const line = lines[0] ?? '';
    assert.match(line, new RegExp(`torch and torchvision for ${python}`));
    assert.match(line, /g\+\+ \(for fma\)/);
    assert.match(line, /taskset \(for pipeline\)/);
    assert.match(line, /Java 17\+ \(for e2e\)/);
    assert.match(
      line,
      /Install them with: apt-get install python3-torch python3-torchvision g\+\+ util-linux default-jdk-headless$/,
    );
    await assert.rejects(readdir(out), { code: 'ENOENT' }, 'nothing was written');
  });

  it('says when the python itself is missing', () => {
    const run = bench(['--only', 'peers,decode', '--out-dir', join(dir, 'out-no-python')], {
      BENCH_PYTHON: join(dir, 'no-such-python'),
    });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /python3 \(\S*no-such-python\) \(for .*decode, peers\)/);
    assert.match(run.stderr, /apt-get install python3 python3-torch python3-torchvision/);
  });

  it('exits 1 when a section fails and leaves the earlier results as they were', async () => {
    const bin = join(dir, 'broken-gpp');
    await mkdir(bin);
    // A compiler that answers --version but cannot compile: the check passes, the section fails.
    await script(
      join(bin, 'g++'),
      'if [ "$1" = "--version" ]; then echo "g++ (broken) 0"; exit 0; fi\necho "broken g++: cannot compile" >&2\nexit 1',
    );
    const out = join(dir, 'out-failed');
    await mkdir(out);
    for (const name of COMMITTED) await copyFile(join(BENCH, name), join(out, name));

    const run = bench(['--quick', '--only', 'fma', '--out-dir', out], { PATH: bin });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /failed: fma: failed: g\+\+ failed: broken g\+\+: cannot compile/);
    assert.match(run.stderr, /left as they were/);
    for (const name of COMMITTED) {
      assert.equal(await sha256(join(out, name)), committed[name], `${name} is unchanged`);
    }
    const failed = JSON.parse(await readFile(join(out, 'failed-run', 'results.json'), 'utf8')) as Results;
    assert.equal(failed.sections.fma?.status, 'failed');
    assert.deepEqual((await readdir(out)).sort(), ['RESULTS.md', 'failed-run', 'results.json']);
  });

  it('writes the results when every selected section measured', { skip: !hasGpp && 'no g++' }, async () => {
    const out = join(dir, 'out-ok');
    const run = bench(['--quick', '--only', 'fma', '--out-dir', out], {});
    assert.equal(run.code, 0, run.stderr);
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
    assert.equal(results.sections.fma?.status, 'ok');
    assert.match(await readFile(join(out, 'RESULTS.md'), 'utf8'), /^# Benchmark results/);
    assert.deepEqual((await readdir(out)).sort(), ['RESULTS.md', 'results.json'], 'no staged files left');
  });

  it('never touched the committed bench/RESULTS.md and bench/results.json', async () => {
    for (const name of COMMITTED) {
      assert.equal(await sha256(join(BENCH, name)), committed[name], name);
    }
  });
});

describe("the headline table: today's targets", () => {
  const ok = (data: unknown) => ({ status: 'ok', date: 'd', seconds: 1, quick: false, data });
  const row = (set: string, preprocessCpuMs: number, pilCpuMs: number, previousCpuMs: number) => ({
    set,
    files: 4,
    megapixels: 1,
    preprocessCpuMs,
    previousCpuMs,
    pilCpuMs,
    pilDraftCpuMs: pilCpuMs / 2,
    ratio: preprocessCpuMs / pilCpuMs,
    goal: 0,
    parts: { header: 0.2, fullDecode: 4, fullDecodeWithProfile: 9, decodeResize: 4.5, tensorFill: 0.3 },
  });
  const targetsFor = (sections: Record<string, unknown>) =>
    evaluateTargets(new Context(FULL, machineInfo(), { sections } as unknown as Results));

  it('lists every current goal and not the retired end-to-end share', () => {
    const names = targetsFor({}).map((t) => t.name);
    for (const wanted of [
      /Preprocessing vs PIL .*real photos/,
      /Preprocessing vs PIL .*medium/,
      /previous code/,
      /handler vs in process/,
      /naive Node/,
      /PyTorch/,
      /FP32 FLOP-bound limit/,
      /Cold start/,
      /cost per million images \(real photos/,
      /cost per million images \(medium/,
      /INT8 speed-up/,
      /INT8 top-1 agreement/,
    ]) {
      assert.ok(
        names.some((n) => wanted.test(n)),
        `${wanted} in ${names.join('; ')}`,
      );
    }
    assert.ok(!names.some((n) => /inference-only/.test(n)));
  });

  it('judges preprocessing against PIL by the ratio of the same run, and says what bounds a miss', () => {
    const decode = ok({
      core: '0',
      pil: '9.4.0',
      rows: [row('real photos (4, 0.5-0.8 MP)', 6, 3.5, 12), row('medium (1.99 MP, 1728x1152)', 9, 14, 9.5)],
    });
    const targets = targetsFor({ decode });
    const verdict = (re: RegExp) => targets.find((t) => re.test(t.name));
    assert.equal(verdict(/PIL .*real photos/)?.verdict, 'missed');
    assert.match(verdict(/PIL .*real photos/)?.bound ?? '', /full decode to raw 4\.00/);
    assert.equal(verdict(/PIL .*medium/)?.verdict, 'met');
    assert.equal(verdict(/previous code/)?.verdict, 'met');
    assert.match(verdict(/previous code/)?.measured ?? '', /6\.00 vs 12\.00 CPU-ms = 0\.50x/);
  });
});

describe('what counts as a failed bench section', () => {
  const ok = (data: unknown) =>
    ({ status: 'ok', date: 'd', seconds: 1, quick: false, data }) as unknown as SectionRecord;

  it('a failed or skipped section, a row error, an errors list and anything unavailable', () => {
    assert.deepEqual(
      sectionProblems('fma', { status: 'failed', date: 'd', seconds: 0, quick: false, error: 'no g++' }),
      ['failed: no g++'],
    );
    assert.deepEqual(sectionProblems('cost', undefined), ['cost did not run']);
    assert.deepEqual(sectionProblems('inference', ok({ settings: [{ batchSize: 1 }, { error: 'OOM' }] })), [
      'settings[1]: OOM',
    ]);
    assert.deepEqual(sectionProblems('peers', ok({ torch: [], errors: ['torch: exited with 1'] })), [
      'peers: torch: exited with 1',
    ]);
    assert.deepEqual(sectionProblems('e2e', ok({ available: false, note: 'java was not found' })), [
      'e2e: java was not found',
    ]);
    assert.deepEqual(
      sectionProblems('coldstart', ok({ rows: [], handler: { available: false, note: 'no bundle' } })),
      ['handler: no bundle'],
    );
  });

  it('the committed full run has none', async () => {
    const results = JSON.parse(await readFile(join(BENCH, 'results.json'), 'utf8')) as Results;
    for (const [name, record] of Object.entries(results.sections)) {
      assert.deepEqual(sectionProblems(name as keyof Results['sections'], record), [], name);
    }
  });

  it('reads the Java major version from java -version', () => {
    assert.equal(javaMajor('openjdk version "17.0.9" 2023-10-17'), 17);
    assert.equal(javaMajor('java version "1.8.0_392"'), 8);
    assert.equal(javaMajor('openjdk version "21" 2023-09-19'), 21);
    assert.equal(javaMajor('command not found'), undefined);
  });
});
