import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { readManifest } from '../../shared/model/manifest.ts';

const { onnx } = onnxProto;
const { FLOAT, BFLOAT16 } = onnx.TensorProto.DataType;

export interface Bf16Outcome {
  /** Whether onnxruntime-node's CPU provider made a session of the BF16 graph at all. */
  readonly loaded: boolean;
  /** What happened, in onnxruntime's words where it refused. */
  readonly outcome: string;
}

/** fp32 → bfloat16, round to nearest even (the upper 16 bits, rounded). */
function toBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] as number;
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * The model with every weight in BF16 and the graph computing in BF16 between a Cast of
 * the input and a Cast of the output, as a BF16 export would be; then asks onnxruntime's
 * CPU provider for a session.
 */
export async function bf16Probe(modelDir: string, outDir: string): Promise<Bf16Outcome> {
  const manifest = await readManifest(modelDir);
  const model = onnx.ModelProto.decode(await readFile(join(modelDir, manifest.file)));
  const graph = model.graph as onnxProto.onnx.GraphProto;
  for (const t of graph.initializer) {
    const raw = t.rawData;
    if (t.dataType !== FLOAT || !raw) continue;
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const bf16 = toBf16(values);
    t.dataType = BFLOAT16;
    t.rawData = new Uint8Array(bf16.buffer);
  }
  const input = manifest.input.name;
  const output = manifest.output.name;
  for (const node of graph.node) {
    node.input = (node.input ?? []).map((name) => (name === input ? `${input}_bf16` : name));
    node.output = (node.output ?? []).map((name) => (name === output ? `${output}_bf16` : name));
  }
  graph.node.unshift(
    onnx.NodeProto.create({
      opType: 'Cast',
      input: [input],
      output: [`${input}_bf16`],
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: BFLOAT16 }],
    }),
  );
  graph.node.push(
    onnx.NodeProto.create({
      opType: 'Cast',
      input: [`${output}_bf16`],
      output: [output],
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }],
    }),
  );
  graph.valueInfo = [];
  // Opset 22 is the first whose Conv, Gemm and pooling ops admit bfloat16 at all.
  for (const opset of model.opsetImport) if (!opset.domain) opset.version = 22;
  await mkdir(outDir, { recursive: true });
  const path = join(outDir, 'model.onnx');
  await writeFile(path, onnx.ModelProto.encode(model).finish());
  try {
    const session = await ort.InferenceSession.create(path, { logSeverityLevel: 4 });
    await session.release();
    return { loaded: true, outcome: 'the CPU provider made a session of the BF16 graph' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { loaded: false, outcome: message.replace(/\s+/g, ' ').trim().slice(0, 300) };
  }
}
