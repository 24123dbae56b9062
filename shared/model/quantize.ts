import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { CODE } from '../error-codes.ts';
import { LabelerError, ModelError } from '../errors.ts';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../image/preprocess.ts';
import { readLocalFile } from '../local-files.ts';
import { inputDims, loadModelBundle, type Manifest } from './manifest.ts';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.IModelProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type Long = { toNumber(): number };

/**
 * Ops whose activations get a QuantizeLinear → DequantizeLinear pair on every input and
 * output: onnxruntime's CPU provider fuses each such "node unit" into its integer kernel
 * (QLinearConv, QGemm, QLinearSigmoid, QLinearMul, QLinearAdd, QLinearGlobalAveragePool, ...),
 * so the tensors between two of them stay 8-bit.
 */
const QUANTIZED_OPS = new Set([
  'Conv',
  'Gemm',
  'MatMul',
  'Sigmoid',
  'Mul',
  'Add',
  'GlobalAveragePool',
  'AveragePool',
  'Concat',
]);
/** Ops that only move values: their output keeps the input's scale, so onnxruntime drops the pair. */
const SAME_SCALE_OPS = new Set(['Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'MaxPool']);
/** Ops whose second input is a weight matrix (quantized int8 symmetric) and third a bias (int32). */
const WEIGHTED_OPS = new Set(['Conv', 'Gemm', 'MatMul']);

/** An activation's uint8 quantization: real = (q - zeroPoint) * scale. */
export interface ActivationParams {
  readonly scale: number;
  readonly zeroPoint: number;
}

export interface ValueRange {
  min: number;
  max: number;
}

export interface QuantizeOptions {
  /** The FP32 model: a folder or a pulled name. */
  readonly model: string;
  /** Encoded images that look like what the model will label; decoded by the labeler's own preprocessing. */
  readonly calibration: readonly string[];
  readonly out: string;
  /** What the calibration images are, for the manifest (for example "Fashion-MNIST train split"). */
  readonly calibrationSource?: string;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface QuantizeReport {
  readonly out: string;
  readonly id: string;
  readonly version: string;
  readonly calibrationImages: number;
  /** Calibration files the preprocessing refused (not images, corrupt, ...), with the reason. */
  readonly skipped: ReadonlyArray<{ file: string; code: string }>;
  readonly quantizedTensors: number;
  readonly quantizedWeights: number;
  readonly bytes: number;
}

const CALIBRATION_BATCH = 8;
/**
 * Weights use 7 bits (-63..63), not 8: x86 CPUs without VNNI multiply uint8 by int8 with
 * VPMADDUBSW, whose int16 pair sums saturate at full range (measured on AVX2: 95.6 % top-1
 * agreement with 8-bit weights, 99.0 % with 7-bit). One file then runs right on every CPU.
 */
const WEIGHT_MAX = 63;

/**
 * Writes a static QDQ INT8 variant of an FP32 model folder: per-channel int8 weights,
 * uint8 activations whose ranges come from the calibration images, int32 biases. The new folder's manifest names the variant (`precision: "int8"`, id
 * `<id>-int8`) and the FP32 model it came from; its preprocessing is the FP32 model's.
 */
export async function quantizeModel(options: QuantizeOptions): Promise<QuantizeReport> {
  const bundle = await loadModelBundle(options.model);
  if (bundle.manifest.precision === 'int8') {
    throw new ModelError(CODE.model.alreadyQuantized, `${bundle.dir} already holds an INT8 model`);
  }
  if (resolve(options.out) === resolve(bundle.dir)) {
    throw new ModelError(CODE.model.outIsSource, `--out ${options.out} is the FP32 model's own folder`);
  }
  if (options.calibration.length === 0) {
    throw new ModelError(CODE.model.calibrationEmpty, 'no calibration images were given');
  }
  const model = onnx.ModelProto.decode(bundle.modelBytes);
  const tensors = tensorsToQuantize(model);
  const { ranges, used, skipped } = await calibrate(model, tensors, bundle.manifest, options);
  if (used === 0) {
    throw new ModelError(
      CODE.model.calibrationEmpty,
      `none of the ${options.calibration.length} calibration files could be decoded (first: ${skipped[0]?.file}: ${skipped[0]?.code})`,
    );
  }
  const params = activationParams(model, ranges);
  const { model: quantized, weights } = quantizeGraph(model, params);
  const bytes = onnx.ModelProto.encode(quantized).finish();

  const manifest: Manifest = {
    ...bundle.manifest,
    id: `${bundle.manifest.id}-int8`,
    description: `${bundle.manifest.description ?? bundle.manifest.id}, static QDQ INT8`,
    file: 'model.onnx',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    labelsFile: 'labels.txt',
    precision: 'int8',
    quantization: {
      method: 'static QDQ, ranges: mean of per-batch min and max',
      activations: 'uint8 asymmetric, per tensor',
      weights: 'int8 symmetric in 7 bits (-63..63), per output channel (Conv), per tensor (Gemm, MatMul)',
      calibrationImages: used,
      ...(options.calibrationSource ? { calibrationSource: options.calibrationSource } : {}),
      from: { id: bundle.manifest.id, version: bundle.manifest.version, sha256: bundle.manifest.sha256 },
    },
  };
  await mkdir(options.out, { recursive: true });
  // An earlier variant's manifest goes first, so an interrupted run leaves no folder that loads.
  await rm(join(options.out, 'manifest.json'), { force: true });
  await writeFile(join(options.out, 'model.onnx'), bytes);
  await writeFile(join(options.out, 'labels.txt'), `${bundle.labels.join('\n')}\n`);
  // Last: a folder without its manifest is not a model, so an interrupted run leaves nothing loadable.
  await writeFile(join(options.out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return {
    out: options.out,
    id: manifest.id,
    version: manifest.version,
    calibrationImages: used,
    skipped,
    quantizedTensors: params.size,
    quantizedWeights: weights,
    bytes: bytes.length,
  };
}

const num = (v: number | Long | null | undefined): number =>
  v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber();

/** The activation tensors that get a Q/DQ pair, in the order the graph produces them. */
export function tensorsToQuantize(model: ModelProto): string[] {
  const graph = model.graph ?? {};
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const chosen = new Set<string>();
  const activation = (name: string | undefined | null): name is string =>
    typeof name === 'string' && name !== '' && !initializers.has(name) && !outputs.has(name);
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    const inputs = node.input ?? [];
    if (QUANTIZED_OPS.has(op)) {
      const activationInputs = WEIGHTED_OPS.has(op) ? inputs.slice(0, op === 'MatMul' ? 2 : 1) : inputs;
      for (const name of activationInputs) if (activation(name)) chosen.add(name);
      for (const name of node.output ?? []) if (activation(name)) chosen.add(name);
    } else if (SAME_SCALE_OPS.has(op) && chosen.has(inputs[0] ?? '') && activation(node.output?.[0])) {
      chosen.add(node.output?.[0] as string);
    }
  }
  const order = [
    ...(graph.input ?? []).map((i) => i.name ?? ''),
    ...(graph.node ?? []).flatMap((n) => n.output ?? []),
  ];
  return order.filter((name) => chosen.has(name));
}

/** Runs the FP32 model over the calibration images and records every chosen tensor's range. */
async function calibrate(
  model: ModelProto,
  tensors: readonly string[],
  manifest: Manifest,
  options: QuantizeOptions,
): Promise<{
  ranges: Map<string, ValueRange>;
  used: number;
  skipped: Array<{ file: string; code: string }>;
}> {
  const graph = model.graph ?? {};
  const inputName = graph.input?.[0]?.name ?? manifest.input.name;
  const augmented = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const present = new Set((graph.output ?? []).map((o) => o.name));
  for (const name of tensors) {
    if (present.has(name)) continue;
    augmented.graph?.output?.push(
      onnx.ValueInfoProto.create({
        name,
        type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } },
      }),
    );
  }
  const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');
  const session: InferenceSession = await ort.InferenceSession.create(
    onnx.ModelProto.encode(augmented).finish(),
    { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 },
  );
  const perImage = 3 * manifest.input.width * manifest.input.height;
  const observed = new Map<string, Observed>(
    tensors.map((t) => [
      t,
      { min: Infinity, max: -Infinity, sumOfBatchMin: 0, sumOfBatchMax: 0, batches: 0 },
    ]),
  );
  const skipped: Array<{ file: string; code: string }> = [];
  let used = 0;
  try {
    let batch = new Float32Array(CALIBRATION_BATCH * perImage);
    let filled = 0;
    const flush = async () => {
      if (filled === 0) return;
      const input = new ort.Tensor(
        'float32',
        batch.subarray(0, filled * perImage),
        inputDims(manifest.input, filled),
      );
      const results = await session.run({ [inputName]: input }, [...tensors]);
      for (const name of tensors) observe(observed.get(name) as Observed, results[name] as Tensor);
      used += filled;
      filled = 0;
      batch = new Float32Array(CALIBRATION_BATCH * perImage);
    };
    for (const [index, file] of options.calibration.entries()) {
      try {
        const bytes = await readLocalFile(file, DEFAULT_IMAGE_LIMITS.maxBytes);
        await preprocessInto(bytes, manifest.input, DEFAULT_IMAGE_LIMITS, batch, filled * perImage);
        filled++;
      } catch (error) {
        skipped.push({ file, code: error instanceof LabelerError ? error.code : CODE.file.unreadable });
      }
      if (filled === CALIBRATION_BATCH) await flush();
      options.onProgress?.(index + 1, options.calibration.length);
    }
    await flush();
  } finally {
    await session.release();
  }
  const ranges = new Map([...observed].map(([name, seen]) => [name, rangeOf(seen)]));
  return { ranges, used, skipped };
}

/** Per-tensor calibration statistics: the extremes seen, and each batch's extremes summed. */
interface Observed {
  min: number;
  max: number;
  sumOfBatchMin: number;
  sumOfBatchMax: number;
  batches: number;
}

function observe(seen: Observed, tensor: Tensor): void {
  const data = tensor.data as Float32Array;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  seen.min = Math.min(seen.min, min);
  seen.max = Math.max(seen.max, max);
  seen.sumOfBatchMin += min;
  seen.sumOfBatchMax += max;
  seen.batches++;
}

/**
 * The mean of the batches' extremes rather than the extremes of all: one outlier image then
 * cannot stretch a tensor's scale for every other (on the bundled model, 99.0 % top-1 agreement
 * against 97.3 % with plain min/max). Values beyond it saturate.
 */
function rangeOf(seen: Observed): ValueRange {
  if (seen.batches === 0) return { min: seen.min, max: seen.max };
  return { min: seen.sumOfBatchMin / seen.batches, max: seen.sumOfBatchMax / seen.batches };
}

/** uint8 parameters that represent [min, max] and zero exactly (zero padding must stay zero). */
export function uint8Params({ min, max }: ValueRange): ActivationParams {
  const lo = Math.min(0, Number.isFinite(min) ? min : 0);
  const hi = Math.max(0, Number.isFinite(max) ? max : 0);
  // A tensor that was zero on every calibration image: any scale represents it.
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  // Tiny ranges are real (random-weight exports shrink activations to 1e-14): keep the
  // scale proportional, only never zero or subnormal in float32.
  const scale = Math.max(Math.fround((hi - lo) / 255), 2 ** -126);
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/** Each tensor's parameters; a value-moving op's output takes its input's, as onnxruntime requires to drop the pair. */
function activationParams(model: ModelProto, ranges: Map<string, ValueRange>): Map<string, ActivationParams> {
  const params = new Map<string, ActivationParams>();
  for (const [name, range] of ranges) params.set(name, uint8Params(range));
  for (const node of model.graph?.node ?? []) {
    const output = node.output?.[0];
    const input = params.get(node.input?.[0] ?? '');
    if (SAME_SCALE_OPS.has(node.opType ?? '') && output && params.has(output) && input)
      params.set(output, input);
  }
  return params;
}

/**
 * The graph with a QuantizeLinear → DequantizeLinear pair after every quantized activation
 * and every weight of a weighted op stored as int8 (bias as int32) behind a DequantizeLinear.
 * Pure: calibration results in, model out.
 */
export function quantizeGraph(
  model: ModelProto,
  params: ReadonlyMap<string, ActivationParams>,
): { model: ModelProto; weights: number } {
  const out = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = out.graph as onnxProto.onnx.GraphProto;
  const initializers = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
  const inputsOf = (node: NodeProto): string[] => (node.input ??= []);
  const uses = new Map<string, number>();
  for (const node of graph.node) for (const name of inputsOf(node)) uses.set(name, (uses.get(name) ?? 0) + 1);
  const added: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const dequantized = (name: string) => `${name}_dequantized`;
  let weights = 0;

  const pairFor = (name: string): NodeProto[] => {
    const p = params.get(name) as ActivationParams;
    added.push(
      scalarTensor(`${name}_scale`, onnx.TensorProto.DataType.FLOAT, p.scale),
      scalarTensor(`${name}_zero_point`, onnx.TensorProto.DataType.UINT8, p.zeroPoint),
    );
    return [
      onnx.NodeProto.create({
        name: `${name}_QuantizeLinear`,
        opType: 'QuantizeLinear',
        input: [name, `${name}_scale`, `${name}_zero_point`],
        output: [`${name}_quantized`],
      }),
      dequantizeNode(name, false),
    ];
  };

  for (const { name } of graph.input) if (name && params.has(name)) nodes.push(...pairFor(name));
  for (const node of graph.node) {
    const inputs = inputsOf(node);
    const op = node.opType ?? '';
    const inputScale = params.get(inputs[0] ?? '');
    const weightName = inputs[1] ?? '';
    const weight = initializers.get(weightName);
    if (WEIGHTED_OPS.has(op) && inputScale && weight && uses.get(weightName) === 1 && isFloat(weight)) {
      const perChannel = op === 'Conv';
      const { tensors, scales } = int8Weight(weight, perChannel);
      added.push(...tensors);
      nodes.push(dequantizeNode(weightName, perChannel));
      inputs[1] = dequantized(weightName);
      const biasName = inputs[2] ?? '';
      const bias = initializers.get(biasName);
      if (bias && uses.get(biasName) === 1 && isFloat(bias)) {
        const biasScales = scales.map((s) => Math.fround(s * inputScale.scale));
        added.push(...int32Bias(bias, perChannel ? biasScales : (biasScales[0] as number)));
        nodes.push(dequantizeNode(biasName, perChannel));
        inputs[2] = dequantized(biasName);
      }
      weights++;
    }
    node.input = inputs.map((name) => (params.has(name) ? dequantized(name) : name));
    nodes.push(node);
    for (const name of node.output ?? []) if (params.has(name)) nodes.push(...pairFor(name));
  }
  graph.node = nodes as onnxProto.onnx.NodeProto[];
  const referenced = new Set(graph.node.flatMap((n) => n.input ?? []));
  graph.initializer = [
    ...graph.initializer.filter((t) => referenced.has(t.name ?? '')),
    ...(added as onnxProto.onnx.TensorProto[]),
  ];
  return { model: out, weights };
}

function isFloat(t: TensorProto): boolean {
  return t.dataType === onnx.TensorProto.DataType.FLOAT;
}

function floatData(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  return Float32Array.from(t.floatData ?? []);
}

function scalarTensor(name: string, dataType: number, value: number): TensorProto {
  const raw =
    dataType === onnx.TensorProto.DataType.FLOAT ? new Float32Array([value]) : new Uint8Array([value]);
  return onnx.TensorProto.create({ name, dataType, dims: [], rawData: new Uint8Array(raw.buffer) });
}

function vectorTensor(name: string, dataType: number, data: ArrayBufferView, dims: number[]): TensorProto {
  return onnx.TensorProto.create({
    name,
    dataType,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function dequantizeNode(name: string, perChannel: boolean): NodeProto {
  return onnx.NodeProto.create({
    name: `${name}_DequantizeLinear`,
    opType: 'DequantizeLinear',
    input: [`${name}_quantized`, `${name}_scale`, `${name}_zero_point`],
    output: [`${name}_dequantized`],
    attribute: perChannel ? [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] : [],
  });
}

/** Symmetric int8 (-WEIGHT_MAX..WEIGHT_MAX, zero point 0), per output channel (axis 0) or per tensor. */
function int8Weight(weight: TensorProto, perChannel: boolean): { tensors: TensorProto[]; scales: number[] } {
  const name = weight.name ?? '';
  const dims = (weight.dims ?? []).map(num);
  const values = floatData(weight);
  const channels = perChannel ? (dims[0] as number) : 1;
  const perChannelSize = values.length / channels;
  const quantized = new Int8Array(values.length);
  const scales: number[] = [];
  for (let c = 0; c < channels; c++) {
    let absMax = 0;
    for (let i = c * perChannelSize; i < (c + 1) * perChannelSize; i++)
      absMax = Math.max(absMax, Math.abs(values[i] as number));
    const scale = absMax > 0 ? Math.fround(absMax / WEIGHT_MAX) : 1;
    scales.push(scale);
    for (let i = c * perChannelSize; i < (c + 1) * perChannelSize; i++) {
      quantized[i] = Math.max(-WEIGHT_MAX, Math.min(WEIGHT_MAX, Math.round((values[i] as number) / scale)));
    }
  }
  const shape = perChannel ? [channels] : [];
  return {
    tensors: [
      vectorTensor(`${name}_quantized`, onnx.TensorProto.DataType.INT8, quantized, dims),
      vectorTensor(`${name}_scale`, onnx.TensorProto.DataType.FLOAT, new Float32Array(scales), shape),
      vectorTensor(`${name}_zero_point`, onnx.TensorProto.DataType.INT8, new Int8Array(channels), shape),
    ],
    scales,
  };
}

/** int32 bias whose scale is the input's times the weight's, as the integer kernels need. */
function int32Bias(bias: TensorProto, scale: number[] | number): TensorProto[] {
  const name = bias.name ?? '';
  const values = floatData(bias);
  const scales = typeof scale === 'number' ? new Float32Array([scale]) : new Float32Array(scale);
  const quantized = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = (typeof scale === 'number' ? scale : scale[i]) as number;
    quantized[i] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round((values[i] as number) / s)));
  }
  const shape = typeof scale === 'number' ? [] : [values.length];
  return [
    vectorTensor(`${name}_quantized`, onnx.TensorProto.DataType.INT32, quantized, [values.length]),
    vectorTensor(`${name}_scale`, onnx.TensorProto.DataType.FLOAT, scales, shape),
    vectorTensor(`${name}_zero_point`, onnx.TensorProto.DataType.INT32, new Int32Array(scales.length), shape),
  ];
}
