import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHE_DIR } from './child.ts';

/**
 * A model with B0's input and output (NCHW 224 px in, 1,000 logits out) that does almost no
 * work: the mean of each channel times a 3x1000 matrix. Through it a raw `session.run` costs
 * about nothing, so the Classifier's time over it is the Classifier's own overhead in ms per
 * batch: what a GPU, where inference takes a few ms, would see added to every batch.
 *
 * The ONNX file is written here by hand (protobuf encoding below), so it needs no Python.
 */
export const NULL_MODEL_DIR = join(CACHE_DIR, 'null-b0');

export async function ensureNullModel(b0Dir: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(b0Dir, 'manifest.json'), 'utf8')) as {
    labelsFile?: string;
    input: { height: number; width: number };
  };
  const labels = await readFile(join(b0Dir, manifest.labelsFile ?? 'labels.txt'), 'utf8');
  const classes = labels.split('\n').filter((l) => l.trim() !== '').length;
  const onnx = nullModelOnnx(classes, manifest.input.height, manifest.input.width);
  await mkdir(NULL_MODEL_DIR, { recursive: true });
  await writeFile(join(NULL_MODEL_DIR, 'model.onnx'), onnx);
  await writeFile(join(NULL_MODEL_DIR, 'labels.txt'), labels);
  const mine = {
    ...manifest,
    id: 'bench-null-b0',
    version: '1',
    description: 'B0-shaped input and output, almost no compute: measures the overhead around session.run',
    file: 'model.onnx',
    labelsFile: 'labels.txt',
    sha256: createHash('sha256').update(onnx).digest('hex'),
  };
  await writeFile(join(NULL_MODEL_DIR, 'manifest.json'), `${JSON.stringify(mine, null, 2)}\n`);
  return NULL_MODEL_DIR;
}

// --- protobuf, just what an ONNX ModelProto needs ---

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const key = (field: number, wire: number) => varint(field * 8 + wire);
const int = (field: number, value: number) => [...key(field, 0), ...varint(value)];
const bytes = (field: number, value: Uint8Array | readonly number[]) => [
  ...key(field, 2),
  ...varint(value.length),
  ...value,
];
const str = (field: number, value: string) => bytes(field, new TextEncoder().encode(value));

function tensorType(dims: readonly (number | string)[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  // TypeProto.tensor_type { elem_type: FLOAT, shape }
  return bytes(1, [...int(1, 1), ...bytes(2, shape)]);
}
const valueInfo = (name: string, dims: readonly (number | string)[]) => [
  ...str(1, name),
  ...bytes(2, tensorType(dims)),
];

/** ReduceMean over H and W, then MatMul by a fixed 3 x classes matrix (opset 13). */
export function nullModelOnnx(classes: number, height: number, width: number): Uint8Array {
  const weights = new Float32Array(3 * classes);
  for (let i = 0; i < weights.length; i++) weights[i] = (((i * 7919) % 2003) - 1001) / 1001;
  const reduce = [
    ...str(1, 'input'),
    ...str(2, 'pooled'),
    ...str(3, 'mean'),
    ...str(4, 'ReduceMean'),
    // attribute axes: INTS [2, 3]; keepdims: INT 0
    ...bytes(5, [...str(1, 'axes'), ...int(8, 2), ...int(8, 3), ...int(20, 7)]),
    ...bytes(5, [...str(1, 'keepdims'), ...int(3, 0), ...int(20, 2)]),
  ];
  const matmul = [
    ...str(1, 'pooled'),
    ...str(1, 'W'),
    ...str(2, 'logits'),
    ...str(3, 'head'),
    ...str(4, 'MatMul'),
  ];
  const initializer = [
    ...int(1, 3),
    ...int(1, classes),
    ...int(2, 1),
    ...str(8, 'W'),
    ...bytes(9, new Uint8Array(weights.buffer)),
  ];
  const graph = [
    ...bytes(1, reduce),
    ...bytes(1, matmul),
    ...str(2, 'null-b0'),
    ...bytes(5, initializer),
    ...bytes(11, valueInfo('input', ['batch', 3, height, width])),
    ...bytes(12, valueInfo('logits', ['batch', classes])),
  ];
  const model = [
    ...int(1, 8),
    ...str(2, 'labeler-bench'),
    ...bytes(7, graph),
    ...bytes(8, [...str(1, ''), ...int(2, 13)]),
  ];
  return Uint8Array.from(model);
}
