import type { FootprintResult } from '../workers/footprint.ts';
import type { B0Info } from './model.ts';
import type { MachineInfo } from './system.ts';

export interface FmaRun {
  readonly isa: string;
  readonly lanes: number;
  readonly chains: number;
  readonly threads: number;
  readonly gflops: number;
}
export interface FmaData {
  readonly compiler: string;
  readonly flags: string;
  readonly perCore: FmaRun;
  readonly allCores: FmaRun;
}

export interface InferenceSetting {
  readonly batchSize: number;
  readonly threads: number;
  readonly imagesPerSecond: number;
  readonly msPerImage: number;
  readonly cpuSecondsPerImage: number;
  readonly batchLatencyMs: { readonly p50: number; readonly p90: number };
  readonly loadMs: number;
  readonly rssAfterLoadMb: number;
  readonly peakRssMb: number;
  /** Throughput as a share of threads x the per-core FP32 FMA peak; null without the peak. */
  readonly fractionOfFlopLimit: number | null;
  readonly error?: string;
}
export interface InferenceData {
  readonly model: string;
  readonly gflopPerImage: number;
  readonly flopsSource: string;
  readonly seconds: number;
  /** Fresh processes per setting; the fastest is reported. */
  readonly rounds: number;
  readonly settings: readonly InferenceSetting[];
  readonly chosen: { readonly batchSize: number; readonly threads: number; readonly why: string };
}

export interface PreprocessRow {
  readonly set: string;
  readonly megapixels: number;
  readonly files: number;
  readonly mode: 'one core' | 'workers';
  readonly concurrency: number;
  readonly sharpConcurrency: number;
  readonly imagesPerSecond: number;
  readonly imagesPerCpuSecond: number;
  readonly msPerImageP50: number;
  readonly error?: string;
}
export interface PreprocessData {
  readonly sharpDefaultConcurrency: number;
  readonly rows: readonly PreprocessRow[];
  readonly photosNote: string;
}

export interface PipelineRow {
  readonly name: string;
  readonly set: string;
  readonly cpus: string;
  readonly batchSize: number;
  readonly threads: number;
  readonly concurrency: number;
  readonly images: number;
  readonly imagesPerSecond: number;
  readonly cpuSecondsPerImage: number;
  readonly msPerImage: { readonly read: number; readonly preprocess: number; readonly infer: number };
  readonly peakRssMb: number;
  readonly error?: string;
}
export interface PipelineData {
  readonly rows: readonly PipelineRow[];
  /** Threads for workers that decode and infer on the same cores, from the all-core rows. */
  readonly recommendation: string;
}

export interface LocalRunSummary {
  readonly files: number;
  readonly ok: number;
  readonly failed: number;
  readonly duplicates: number;
  readonly imagesPerSecond: number;
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  /** cpuSeconds by process: the handler's execution environments, this process's S3/SQS emulator and glue, DynamoDB Local. */
  readonly cpuSecondsBy?: {
    readonly handler: number;
    readonly s3SqsAndGlue: number;
    readonly dynamoDbLocal: number;
  };
  readonly stageSeconds?: Record<string, number>;
}
export interface E2eData {
  readonly available: boolean;
  readonly command: string;
  readonly images: number;
  readonly note?: string;
  readonly summary?: LocalRunSummary;
  readonly parentWallSeconds?: number;
  readonly handlerOverhead?: HandlerOverheadData;
}

/** bench/workers/handler-overhead.ts: CPU-ms per image of each path, medians of its rounds. */
export interface HandlerOverheadData {
  readonly command: string;
  readonly images: number;
  readonly rounds: number;
  readonly cpuMsPerImage?: Readonly<Record<string, number>>;
  /** CPU-ms per image of each path by thread group (bench/lib/thread-cpu.ts). */
  readonly cpuMsByThread?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly note?: string;
}

export interface PeerRow {
  readonly name: string;
  readonly imagesPerSecond: number;
  readonly cpuSecondsPerImage: number;
  readonly images: number;
  readonly note?: string;
}
export interface PeersData {
  readonly set: string;
  readonly files: number;
  readonly ours: PeerRow | null;
  readonly naive: PeerRow | null;
  readonly torch: readonly PeerRow[];
  readonly torchVersion?: string;
  readonly errors: readonly string[];
}

export interface ColdStartRow {
  readonly name: string;
  readonly runs: number;
  /** Medians over runs, ms from the parent's spawn. */
  readonly importsMs: number;
  readonly modelLoadedMs: number;
  readonly firstLabelMs: number;
  readonly allFirstLabelMs: readonly number[];
  readonly note?: string;
  readonly error?: string;
}
export interface ColdStartData {
  readonly rows: readonly ColdStartRow[];
  readonly handler: {
    readonly available: boolean;
    readonly path: string;
    readonly note?: string;
    readonly runs: readonly HandlerInitRow[];
  };
}
export interface HandlerInitRow {
  readonly model: string;
  readonly runs: number;
  /** Medians: the handler module's import() (its INIT, model load included) and spawn to ready. */
  readonly importMs: number;
  readonly spawnToImportedMs: number;
}

export interface CostRow {
  readonly input: string;
  /** Wall time per image on one core: what Lambda bills at 1 vCPU. */
  readonly msPerImage: number;
  readonly cpuMsPerImage: number;
  readonly source: string;
  readonly x86_1769: number;
  readonly arm_1769: number;
  readonly x86_3008: number;
  readonly arm_3008: number;
}
export interface CostData {
  readonly assumptions: readonly string[];
  readonly requestsPerMillion: number;
  readonly rows: readonly CostRow[];
  readonly rekognitionPerMillion: number;
}

export interface OverheadRow {
  /** 'B0' or 'null' (B0's input and output, almost no compute: the overhead alone). */
  readonly model: string;
  readonly batchSize: number;
  readonly threads: number;
  readonly runs: number;
  readonly rawImagesPerSecond: number;
  readonly classifierImagesPerSecond: number;
  /** Classifier over raw images/s. */
  readonly ratio: number;
  readonly rawMsP50: number;
  readonly classifierMsP50: number;
  readonly error?: string;
}
export interface OverheadData {
  readonly rows: readonly OverheadRow[];
}
export interface ScalingRow {
  readonly arch: string;
  /** Crop size (px): the model's input is resolution x resolution. */
  readonly resolution: number;
  readonly resizeSize: number;
  readonly params: number;
  readonly gflopPerImage: number;
  readonly batchSize: number;
  readonly threads: number;
  readonly imagesPerSecond: number;
  readonly cpuMsPerImage: number;
  readonly fractionOfFlopLimit: number | null;
  /** Inference only, x86 at 1769 MB (1 vCPU), requests included. */
  readonly lambdaX86PerMillion: number;
  readonly peakRssMb: number;
  readonly error?: string;
}
export interface ScalingData {
  readonly rows: readonly ScalingRow[];
  readonly requestsPerMillion: number;
}

export interface Int8Row {
  readonly model: string;
  readonly batchSize: number;
  readonly threads: number;
  readonly fp32ImagesPerSecond: number;
  readonly int8ImagesPerSecond: number;
  /** INT8 over FP32 images/s. */
  readonly speedup: number;
  readonly fp32CpuMsPerImage: number;
  readonly int8CpuMsPerImage: number;
  readonly calibrationImages: number;
  readonly calibrationSource: string;
  readonly quantizeSeconds: number;
  /** Top-1 of both over labeled images; null where the weights are random. */
  readonly comparison: {
    readonly images: number;
    readonly source: string;
    readonly agreement: number;
    readonly fp32Top1: number;
    readonly int8Top1: number;
  } | null;
  readonly error?: string;
}
export interface Int8Data {
  readonly rows: readonly Int8Row[];
  readonly bf16: { readonly loaded: boolean; readonly outcome: string };
  readonly targets: { readonly speedup: number; readonly agreement: number };
}

export interface FootprintData extends FootprintResult {
  readonly command: string;
}

/** One image set in the decode section: preprocessing against PIL's decode, same core, same run. */
export interface DecodeRow {
  readonly set: string;
  readonly files: number;
  readonly megapixels: number;
  /** preprocessInto now, CPU-ms per image. */
  readonly preprocessCpuMs: number;
  /** preprocessInto before decision 0031, same run. */
  readonly previousCpuMs: number;
  /** PIL Image.open(...).convert('RGB'), full decode; the mean of the runs before and after ours. */
  readonly pilCpuMs: number;
  /** The same with draft() at 1/2 scale. */
  readonly pilDraftCpuMs: number;
  /** preprocessCpuMs / pilCpuMs. */
  readonly ratio: number;
  /** The goal for ratio. */
  readonly goal: number;
  /** preprocessInto's parts, CPU-ms per image (bench/workers/decode-compare.ts). */
  readonly parts: Readonly<Record<string, number>>;
  readonly error?: string;
}
export interface DecodeData {
  readonly core: string;
  readonly pil: string;
  readonly rows: readonly DecodeRow[];
}

export interface SectionData {
  fma: FmaData;
  inference: InferenceData;
  preprocess: PreprocessData;
  decode: DecodeData;
  pipeline: PipelineData;
  e2e: E2eData;
  peers: PeersData;
  coldstart: ColdStartData;
  cost: CostData;
  classifier: OverheadData;
  scaling: ScalingData;
  int8: Int8Data;
  footprint: FootprintData;
}
export type SectionName = keyof SectionData;
export const SECTION_NAMES: readonly SectionName[] = [
  'fma',
  'inference',
  'preprocess',
  'decode',
  'pipeline',
  'e2e',
  'peers',
  'coldstart',
  'cost',
  'classifier',
  'scaling',
  'int8',
  'footprint',
];

export type SectionRecord<K extends SectionName = SectionName> =
  | {
      readonly status: 'ok';
      readonly date: string;
      readonly seconds: number;
      readonly quick: boolean;
      readonly data: SectionData[K];
    }
  | {
      readonly status: 'failed' | 'skipped';
      readonly date: string;
      readonly seconds: number;
      readonly quick: boolean;
      readonly error: string;
    };

export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  readonly verdict: 'met' | 'missed' | 'n/a';
  readonly bound?: string;
}

export interface Results {
  readonly command: string;
  readonly date: string;
  readonly quick: boolean;
  readonly wallSeconds: number;
  readonly machine: MachineInfo;
  readonly model?: B0Info;
  readonly modelError?: string;
  readonly sections: { [K in SectionName]?: SectionRecord<K> };
  readonly targets: readonly Target[];
}
