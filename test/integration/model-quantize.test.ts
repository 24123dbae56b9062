import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { loadModelBundle, readManifest } from '../../shared/model/manifest.ts';
import { uint8Params } from '../../shared/model/quantize.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const { onnx } = onnxProto;

function opCounts(model: Uint8Array): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of onnx.ModelProto.decode(model).graph?.node ?? []) {
    counts.set(node.opType ?? '', (counts.get(node.opType ?? '') ?? 0) + 1);
  }
  return counts;
}

function topLabels(stdout: string): Map<string, string> {
  return new Map(
    jsonLines(stdout).map((row) => [
      String(row.file),
      String((row.labels as Array<{ label: string }> | undefined)?.[0]?.label),
    ]),
  );
}

describe('labeler model quantize: a static INT8 variant of the bundled model', () => {
  let dir: string;
  let out: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-quantize-'));
    out = join(dir, 'int8');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('calibrates on images, writes a manifest naming the variant and its FP32 source, and the model loads', async () => {
    const run = await runCli([
      'model',
      'quantize',
      '--calibration',
      SAMPLES,
      '--images',
      '100',
      '--out',
      out,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const report = jsonLines(run.stdout)[0] as Record<string, unknown>;
    assert.equal(report.calibrationImages, 100);
    const fp32 = await readManifest(DEFAULT_MODEL_DIR);
    const int8 = await loadModelBundle(out);
    assert.equal(int8.manifest.precision, 'int8');
    assert.equal(int8.manifest.id, `${fp32.id}-int8`);
    assert.deepEqual(int8.manifest.quantization?.from, {
      id: fp32.id,
      version: fp32.version,
      sha256: fp32.sha256,
    });
    assert.equal(int8.manifest.quantization?.calibrationImages, 100);
    assert.deepEqual(int8.manifest.input, fp32.input, 'the same preprocessing as the FP32 model');
  });

  it("runs on onnxruntime's integer kernels: every Conv becomes a QLinearConv, no float Conv is left", async () => {
    const fp32Convs = opCounts(await readFile(join(DEFAULT_MODEL_DIR, 'model.onnx'))).get('Conv') ?? 0;
    assert.ok(fp32Convs > 0);
    const optimized = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(join(out, 'model.onnx'), {
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: optimized,
      logSeverityLevel: 3,
    });
    await session.release();
    const ops = opCounts(await readFile(optimized));
    assert.equal(ops.get('QLinearConv'), fp32Convs);
    assert.equal(ops.get('Conv'), undefined);
    assert.equal(ops.get('DequantizeLinear'), undefined, 'no float island between integer kernels');
  });

  it('labels the samples as the FP32 model does (top-1 agreement at least 97 %)', async () => {
    const [fp32Run, int8Run] = [
      await runCli(['label', SAMPLES]),
      await runCli(['label', '--model', out, SAMPLES]),
    ];
    assert.equal(fp32Run.code, 0, fp32Run.stderr);
    assert.equal(int8Run.code, 0, int8Run.stderr);
    const fp32 = topLabels(fp32Run.stdout);
    const int8 = topLabels(int8Run.stdout);
    assert.equal(int8.size, fp32.size);
    assert.ok(fp32.size >= 200);
    const agree = [...fp32].filter(([file, label]) => int8.get(file) === label).length;
    assert.ok(agree / fp32.size >= 0.97, `top-1 agreement ${agree} of ${fp32.size}`);
  });

  it('refuses an INT8 model, calibration with no decodable image, and bad options, each with its code', async () => {
    const again = await runCli([
      'model',
      'quantize',
      '--model',
      out,
      '--calibration',
      SAMPLES,
      '--out',
      join(dir, 'x'),
    ]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /\[model\/already-quantized\]/);

    const junk = join(dir, 'junk');
    execFileSync('mkdir', ['-p', junk]);
    await writeFile(join(junk, 'notes.txt'), 'not an image');
    execFileSync('mkfifo', [join(junk, 'pipe.png')]);
    const empty = await runCli(['model', 'quantize', '--calibration', junk, '--out', join(dir, 'y')]);
    assert.equal(empty.code, 3, empty.stderr);
    assert.match(empty.stderr, /\[model\/calibration-empty\]/);
    assert.match(
      empty.stderr,
      /none of the 2 calibration files could be decoded \(first: \S*notes\.txt: image\/unsupported-format\)/,
    );

    const overSource = await runCli([
      'model',
      'quantize',
      '--calibration',
      SAMPLES,
      '--out',
      DEFAULT_MODEL_DIR,
    ]);
    assert.equal(overSource.code, 3);
    assert.match(overSource.stderr, /\[model\/out-is-source\]/);

    for (const args of [
      [],
      ['--calibration', SAMPLES, '--images', '0'],
      ['--calibration', SAMPLES, 'extra'],
    ]) {
      const bad = await runCli(['model', 'quantize', ...args]);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    }
    const help = await runCli(['model', 'quantize', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--calibration/);
  });

  it('keeps real zero exact and never makes a zero or subnormal scale, even for ranges of 1e-14', () => {
    for (const range of [
      { min: -0.28, max: 6.1 },
      { min: 0, max: 1 },
      { min: -3e-14, max: 1e-14 },
    ]) {
      const { scale, zeroPoint } = uint8Params(range);
      assert.ok(scale >= 2 ** -126, `scale ${scale}`);
      assert.ok(Number.isInteger(zeroPoint) && zeroPoint >= 0 && zeroPoint <= 255);
      // Both ends of the range are representable within one step.
      assert.ok((0 - zeroPoint) * scale <= range.min + scale);
      assert.ok((255 - zeroPoint) * scale >= range.max - scale);
    }
    assert.deepEqual(uint8Params({ min: 0, max: 0 }), { scale: 1, zeroPoint: 0 });
  });
});
