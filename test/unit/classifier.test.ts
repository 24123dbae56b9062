import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { ModelError } from '../../shared/errors.ts';
import { Classifier, softmax, topLabels } from '../../shared/model/classifier.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';

type EditableManifest = { input: Record<string, unknown>; sha256: string };

interface ExportCheck {
  shape: number[];
  input: number[];
  logits: number[];
}

describe('the bundled model under onnxruntime', () => {
  it('matches the PyTorch outputs saved at export time (max abs diff <= 1e-4)', async () => {
    const check = JSON.parse(
      await readFile(join(DEFAULT_MODEL_DIR, 'export-check.json'), 'utf8'),
    ) as ExportCheck;
    const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
    const classifier = await Classifier.create(bundle, { intraOpThreads: 1 });
    const count = check.shape[0] as number;
    const classes = bundle.labels.length;
    // All classes with probabilities: compare logits through log-softmax differences.
    const labels = await classifier.classify(Float32Array.from(check.input), count, classes);
    let maxDiff = 0;
    for (let i = 0; i < count; i++) {
      const expected = softmax(Float32Array.from(check.logits.slice(i * classes, (i + 1) * classes)));
      for (const { label, score } of labels[i] ?? []) {
        const diff = Math.abs(score - (expected[bundle.labels.indexOf(label)] as number));
        maxDiff = Math.max(maxDiff, diff);
      }
      assert.equal(labels[i]?.length, classes);
    }
    assert.ok(maxDiff <= 1e-4, `max abs diff ${maxDiff}`);
    await classifier.release();
  });

  // onnxruntime writes its own provider-load error straight to file descriptor 2, which no
  // in-process hook sees: run the fallback in a child process so that error is captured
  // and asserted here instead of printed into the test output.
  it('falls back to the CPU provider when a requested provider is missing, and says so', () => {
    const script = `
      import { Classifier } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'shared/model/classifier.ts')).href)};
      import { loadModelBundle } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'shared/model/manifest.ts')).href)};
      const warnings = [];
      const c = await Classifier.create(
        await loadModelBundle(${JSON.stringify(DEFAULT_MODEL_DIR)}),
        { executionProviders: ['cuda', 'cpu'], intraOpThreads: 1 },
        { warn: (message, details) => warnings.push({ message, details }) },
      );
      console.log(JSON.stringify({ provider: c.executionProvider, warnings }));
      await c.release();`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    });
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout) as {
      provider: string;
      warnings: { message: string; details: { error: string } }[];
    };
    assert.equal(outcome.provider, 'cpu');
    assert.equal(outcome.warnings.length, 1);
    assert.match(outcome.warnings[0]?.message ?? '', /cuda is unavailable/);
    assert.match(outcome.warnings[0]?.details.error ?? '', /Cuda/);
    // What onnxruntime itself printed is about the CUDA provider library, and nothing else.
    const printed = stripVTControlCharacters(run.stderr)
      .split('\n')
      .filter((line) => line.trim() !== '');
    assert.ok(printed.length > 0, 'onnxruntime reports why the provider failed');
    for (const line of printed) {
      assert.match(line, /Failed to load library \S*libonnxruntime_providers_(shared|cuda)\.so/);
    }
  });
});

describe('the inference thread', () => {
  it('starts under flags that make evaluated code a module (as a bundled handler may run)', async () => {
    const script = `
      import { Classifier } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'shared/model/classifier.ts')).href)};
      import { loadModelBundle } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'shared/model/manifest.ts')).href)};
      const c = await Classifier.create(await loadModelBundle(${JSON.stringify(DEFAULT_MODEL_DIR)}), { intraOpThreads: 1 });
      const [labels] = await c.classify(new Float32Array(c.imageLength), 1, 3);
      console.log(labels.length);
      await c.release();`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '3');
  });
});

describe('model folder checks at start-up', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-model-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function variant(name: string, edit: (manifest: EditableManifest) => void, labels?: string) {
    const target = join(dir, name);
    await cp(DEFAULT_MODEL_DIR, target, { recursive: true, filter: (src) => !src.includes('samples') });
    const manifest = JSON.parse(await readFile(join(target, 'manifest.json'), 'utf8')) as EditableManifest;
    edit(manifest);
    await writeFile(join(target, 'manifest.json'), JSON.stringify(manifest));
    if (labels !== undefined) await writeFile(join(target, 'labels.txt'), labels);
    return target;
  }

  async function codeOf(target: string): Promise<string> {
    const error = await loadModelBundle(target)
      .then((bundle) => Classifier.create(bundle, { intraOpThreads: 1 }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(error instanceof ModelError, `expected a ModelError, got ${String(error)}`);
    return `${error.code}: ${error.message}`;
  }

  it('refuses a manifest whose input size disagrees with the model', async () => {
    const target = await variant('size', (m) => {
      m.input.width = 32;
    });
    assert.match(await codeOf(target), /^model\/mismatch: .*28, 28.*28x32/);
  });

  it('refuses a manifest that names an input the model does not have', async () => {
    const target = await variant('name', (m) => {
      m.input.name = 'pixels';
    });
    assert.match(await codeOf(target), /^model\/mismatch: .*"pixels"/);
  });

  it('refuses a labels file whose length differs from the model outputs', async () => {
    const target = await variant('labels', () => {}, 'a\nb\nc\n');
    assert.match(await codeOf(target), /^model\/mismatch: .*the model has 10 classes, labels.txt lists 3$/);
  });

  it('refuses a model file whose sha256 differs from the manifest', async () => {
    const target = await variant('sha', (m) => {
      m.sha256 = '0'.repeat(64);
    });
    assert.match(await codeOf(target), /^model\/checksum-mismatch/);
  });

  it('refuses a manifest that fails the schema, naming the field', async () => {
    const target = await variant('schema', (m) => {
      m.input.layout = 'CHW';
    });
    assert.match(await codeOf(target), /^model\/manifest-invalid: .*input\.layout/);
  });

  it('refuses a folder without a manifest', async () => {
    assert.match(await codeOf(join(dir, 'nothing-here')), /^model\/not-found/);
  });
});

describe('scores', () => {
  it('softmax turns logits into probabilities that sum to 1, preserving order', () => {
    const p = softmax(Float32Array.from([1, 3, 2, 10]));
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    assert.ok(
      (p[3] as number) > 0.99 && (p[1] as number) > (p[2] as number) && (p[2] as number) > (p[0] as number),
    );
    assert.ok(softmax(Float32Array.from([1000, 0]))[0] === 1, 'large logits do not overflow');
  });

  it('topLabels returns the k best, best first, ties in class order', () => {
    const labels = ['a', 'b', 'c', 'd', 'e'];
    const top = topLabels(Float32Array.from([0.1, 0.4, 0.1, 0.3, 0.1]), labels, 3);
    assert.deepEqual(
      top.map((l) => l.label),
      ['b', 'd', 'a'],
    );
    assert.equal(topLabels(Float32Array.from([0.5, 0.5]), ['x', 'y'], 5).length, 2);
  });
});
