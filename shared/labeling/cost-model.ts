/**
 * When does a GPU pay? Dollars per million images for the Lambda path and for GPU
 * instance types, per EfficientNet variant, from measured rates (issue 14, item 3).
 * Pure arithmetic: the rates and prices come in as data with their sources, so every
 * figure in bench/RESULTS.md and docs/DEPLOY.md says where it came from, and
 * `jobs start --target auto` (chooseTarget) uses the same numbers.
 */
import { CLASSIFY, GPU_INSTANCE_SIZES, GPU_WORKER } from '../settings.ts';
import type { Job, JobReceipt, JobTarget } from './jobs.ts';

/**
 * List prices, us-east-1, on-demand, Linux, US $. Written down from the AWS pricing pages
 * (aws.amazon.com/lambda/pricing, aws.amazon.com/ec2/pricing/on-demand) as last seen; this
 * machine has no web access, so check them before a purchase decision.
 */
export const PRICES = {
  asOf: '2025-06 (AWS list prices as last seen; not re-checked here)',
  lambda: { x86PerGbSecond: 0.0000166667, armPerGbSecond: 0.0000133334, perMillionRequests: 0.2 },
  /** $ per instance-hour. */
  ec2OnDemand: {
    'g4dn.xlarge': 0.526,
    'g4dn.2xlarge': 0.752,
    'g4dn.4xlarge': 1.204,
    'g5.xlarge': 1.006,
    'g5.2xlarge': 1.212,
    'g5.4xlarge': 1.624,
    'g6.xlarge': 0.8048,
    'g6.2xlarge': 0.9776,
    'g6.4xlarge': 1.3232,
    'g6e.xlarge': 1.861,
    'g6e.2xlarge': 2.242,
    'g6e.4xlarge': 3.004,
  } as Readonly<Record<string, number>>,
} as const;

/**
 * Dense FP32 peak (TFLOP/s, vendor data sheets) of the GPUs involved: the scale from a GPU
 * where a rate was measured to one where it was not. An estimate: small models like B0
 * use a few percent of the peak, so memory and launch overheads matter as much.
 */
export const GPU_FP32_TFLOPS: Readonly<Record<string, number>> = {
  'NVIDIA H200': 67,
  'NVIDIA H100 80GB HBM3': 67,
  'NVIDIA A10G': 31.2,
  'NVIDIA L4': 30.3,
  'NVIDIA L40S': 91.6,
  'NVIDIA T4': 8.1,
};

/** The GPU in each instance family. */
export function gpuOf(instanceType: string): string {
  const family = instanceType.split('.')[0];
  const gpu = { g4dn: 'NVIDIA T4', g5: 'NVIDIA A10G', g6: 'NVIDIA L4', g6e: 'NVIDIA L40S' }[family ?? ''];
  if (!gpu) throw new RangeError(`no GPU known for instance type ${instanceType}`);
  return gpu;
}

/**
 * torchvision's EfficientNets: native crop and resize (torchvision's ImageNet weights'
 * transforms) and multiply-accumulates per image (torchvision's model table, "GFLOPS",
 * which counts MACs).
 */
export const EFFICIENTNETS = {
  efficientnet_b0: { crop: 224, resize: 256, gmacs: 0.39 },
  efficientnet_b1: { crop: 240, resize: 255, gmacs: 0.69 },
  efficientnet_b2: { crop: 288, resize: 288, gmacs: 1.09 },
  efficientnet_b3: { crop: 300, resize: 320, gmacs: 1.83 },
  efficientnet_b4: { crop: 380, resize: 384, gmacs: 4.39 },
  efficientnet_b5: { crop: 456, resize: 456, gmacs: 10.27 },
  efficientnet_b6: { crop: 528, resize: 528, gmacs: 19.07 },
  efficientnet_b7: { crop: 600, resize: 600, gmacs: 37.75 },
} as const;
export type EfficientNetArch = keyof typeof EFFICIENTNETS;

/** A rate with where it came from; `estimate` until measured on that hardware. */
export interface Rate {
  readonly value: number;
  readonly source: string;
  readonly estimate: boolean;
}

/** The measured inputs of the model; bench/cost-model.ts fills them from results files. */
export interface MeasuredRates {
  /** Decode (preprocessInto) CPU-ms per image on one vCPU, at B0's input. */
  readonly decodeCpuMs: Rate;
  /** B0 inference CPU-ms per image at one intra-op thread. */
  readonly b0InferCpuMs: Rate;
  /** Decode images/s per vCPU of a GPU instance (all vCPUs decoding). */
  readonly gpuHostDecodePerVcpu: Rate;
  /** B0 inference images/s on one GPU (raw session.run, best batch), with the GPU named. */
  readonly b0GpuImagesPerSecond: Rate & { readonly gpu: string };
}

/**
 * What this repository has measured (each figure with its machine). Used when no fresher
 * results file is given; bench/cost-model.ts replaces the CPU figures with bench/results.json's.
 */
export const MEASURED: MeasuredRates = {
  decodeCpuMs: {
    value: 1000 / 62.6,
    source: 'bench/RESULTS.md section 2: 62.6 images/s on one core of the 2-core Xeon dev box, 2 MP JPEGs',
    estimate: false,
  },
  b0InferCpuMs: {
    value: 11.7,
    source: 'bench/RESULTS.md section 1: B0 batch 1, 1 thread, 85.2 images/s on the 2-core Xeon dev box',
    estimate: false,
  },
  gpuHostDecodePerVcpu: {
    value: 399 / 16,
    source:
      'issue 14: decode only, 2 MP JPEGs, 399 images/s on the 16 cores of the H200 host (UV_THREADPOOL_SIZE=16)',
    estimate: false,
  },
  b0GpuImagesPerSecond: {
    value: 5000,
    gpu: 'NVIDIA H200',
    source: 'issue 14: raw session.run, B0 fp32, batch 32, onnxruntime-node 1.29.0 CUDA 13, one H200',
    estimate: false,
  },
};

/** Vcpus the ECS host keeps (infra/constructs/gpu-workers.ts HOST_RESERVE). */
const HOST_VCPUS = 1;
const MB_PER_VCPU = 1769;

export interface LambdaCost {
  readonly memoryMb: number;
  /** Billed ms per image. */
  readonly msPerImage: number;
  readonly x86PerMillion: number;
  readonly armPerMillion: number;
}

/**
 * Lambda bills GB-seconds; a function gets memoryMb / 1769 vCPUs of CPU time, so CPU-bound
 * work takes cpuMs / that many ms (assumed to spread over the vCPUs; the bench measured
 * 1.77x on 2 cores). Requests: one invocation per `batchSize` images.
 */
export function lambdaCost(cpuMsPerImage: number, memoryMb: number, batchSize: number): LambdaCost {
  if (!(cpuMsPerImage > 0) || !(memoryMb > 0) || !(batchSize > 0)) {
    throw new RangeError('cpuMsPerImage, memoryMb and batchSize must be positive');
  }
  const vcpus = Math.min(6, memoryMb / MB_PER_VCPU);
  const msPerImage = cpuMsPerImage / vcpus;
  const gbSeconds = (memoryMb / 1024) * (msPerImage / 1000);
  const requests = PRICES.lambda.perMillionRequests / batchSize;
  return {
    memoryMb,
    msPerImage,
    x86PerMillion: gbSeconds * PRICES.lambda.x86PerGbSecond * 1e6 + requests,
    armPerMillion: gbSeconds * PRICES.lambda.armPerGbSecond * 1e6 + requests,
  };
}

export interface GpuCost {
  readonly instanceType: string;
  readonly gpu: string;
  readonly hourly: number;
  readonly decodeImagesPerSecond: number;
  readonly inferImagesPerSecond: Rate;
  /** min(decode, inference): the two overlap (issue 14 item 2's target). */
  readonly imagesPerSecond: number;
  readonly boundBy: 'decode' | 'inference';
  readonly perMillion: number;
}

export interface ModelProfile {
  /** An EfficientNet arch, or a label for another model. */
  readonly name: string;
  readonly gmacs: number;
  /** Whether gmacs is torchvision's figure or scaled from the input size. */
  readonly gmacsEstimated: boolean;
}

export function efficientNet(arch: EfficientNetArch): ModelProfile {
  return { name: arch, gmacs: EFFICIENTNETS[arch].gmacs, gmacsEstimated: false };
}

/** Inference images/s of `model` on `gpu`: the measured B0 rate scaled by MACs and by FP32 peak. */
export function gpuInferRate(model: ModelProfile, gpu: string, rates: MeasuredRates = MEASURED): Rate {
  const measured = rates.b0GpuImagesPerSecond;
  const from = GPU_FP32_TFLOPS[measured.gpu];
  const to = GPU_FP32_TFLOPS[gpu];
  if (!from || !to) throw new RangeError(`no FP32 peak known for ${from ? gpu : measured.gpu}`);
  const macScale = EFFICIENTNETS.efficientnet_b0.gmacs / model.gmacs;
  const sameModel = model.gmacs === EFFICIENTNETS.efficientnet_b0.gmacs && !model.gmacsEstimated;
  const sameGpu = gpu === measured.gpu;
  const value = measured.value * macScale * (to / from);
  const steps = [
    ...(sameModel ? [] : [`x ${macScale.toPrecision(3)} (MACs, B0 / ${model.name})`]),
    ...(sameGpu ? [] : [`x ${(to / from).toFixed(2)} (FP32 peak, ${gpu} / ${measured.gpu})`]),
  ];
  return {
    value,
    source: steps.length === 0 ? measured.source : `${measured.source}, ${steps.join(', ')}`,
    estimate: measured.estimate || steps.length > 0,
  };
}

export function gpuCost(model: ModelProfile, instanceType: string, rates: MeasuredRates = MEASURED): GpuCost {
  const hourly = PRICES.ec2OnDemand[instanceType];
  const size = GPU_INSTANCE_SIZES[instanceType];
  if (hourly === undefined || !size) throw new RangeError(`no price or size known for ${instanceType}`);
  const gpu = gpuOf(instanceType);
  const decodeImagesPerSecond = Math.max(1, size.vcpus - HOST_VCPUS) * rates.gpuHostDecodePerVcpu.value;
  const infer = gpuInferRate(model, gpu, rates);
  const imagesPerSecond = Math.min(decodeImagesPerSecond, infer.value);
  return {
    instanceType,
    gpu,
    hourly,
    decodeImagesPerSecond,
    inferImagesPerSecond: infer,
    imagesPerSecond,
    boundBy: decodeImagesPerSecond <= infer.value ? 'decode' : 'inference',
    perMillion: (hourly / 3600 / imagesPerSecond) * 1e6,
  };
}

/** CPU-ms per image on one vCPU for the Lambda path: decode plus inference scaled by MACs. */
export function lambdaCpuMs(model: ModelProfile, rates: MeasuredRates = MEASURED): Rate {
  const scale = model.gmacs / EFFICIENTNETS.efficientnet_b0.gmacs;
  const infer = rates.b0InferCpuMs.value * scale;
  const scaled = scale !== 1 || model.gmacsEstimated;
  return {
    value: rates.decodeCpuMs.value + infer,
    source: `decode ${rates.decodeCpuMs.value.toFixed(1)} ms + inference ${infer.toFixed(1)} ms${scaled ? ` (B0's ${rates.b0InferCpuMs.value.toFixed(1)} ms x ${scale.toPrecision(3)}, MACs)` : ''}`,
    estimate: rates.decodeCpuMs.estimate || rates.b0InferCpuMs.estimate || scaled,
  };
}

/** The instance types the cost table compares. */
export const COMPARED_INSTANCES = [
  'g5.xlarge',
  'g5.2xlarge',
  'g5.4xlarge',
  'g6.xlarge',
  'g6.2xlarge',
  'g6.4xlarge',
] as const;

export interface CostTableRow {
  readonly model: ModelProfile;
  readonly lambdaCpuMs: Rate;
  readonly lambda: LambdaCost;
  readonly gpus: readonly GpuCost[];
  /** The cheapest GPU instance type for this model. */
  readonly bestGpu: GpuCost;
}

export function costTable(
  models: readonly ModelProfile[],
  options: { memoryMb: number; batchSize: number; instances?: readonly string[]; rates?: MeasuredRates },
): CostTableRow[] {
  const rates = options.rates ?? MEASURED;
  return models.map((model) => {
    const cpu = lambdaCpuMs(model, rates);
    const gpus = (options.instances ?? COMPARED_INSTANCES).map((t) => gpuCost(model, t, rates));
    const bestGpu = gpus.reduce((a, b) => (b.perMillion < a.perMillion ? b : a));
    return {
      model,
      lambdaCpuMs: cpu,
      lambda: lambdaCost(cpu.value, options.memoryMb, options.batchSize),
      gpus,
      bestGpu,
    };
  });
}

/**
 * The model a manifest describes: an EfficientNet when its id or description names one
 * (efficientnet_b3, efficientnet-b3, EfficientNet-B3), else B0's MACs scaled by input
 * pixels (flagged as an estimate).
 */
export function modelProfileOf(manifest: {
  id: string;
  description?: string | undefined;
  input: { width: number; height: number };
}): ModelProfile {
  const text = `${manifest.id} ${manifest.description ?? ''}`.toLowerCase();
  const match = /efficientnet[-_ ]?(b[0-7])\b/.exec(text);
  if (match) return efficientNet(`efficientnet_${match[1]}` as EfficientNetArch);
  const b0 = EFFICIENTNETS.efficientnet_b0;
  return {
    name: manifest.id,
    gmacs: (b0.gmacs * manifest.input.width * manifest.input.height) / (b0.crop * b0.crop),
    gmacsEstimated: true,
  };
}

/**
 * What starting a GPU task costs beyond its images: an instance scaled out from zero boots,
 * pulls the image and loads the model, and is kept until the scale-in cool-down ends.
 * Assumed 15 instance-minutes; not measured.
 */
export const GPU_START_HOURS = 0.25;

export interface TargetChoice {
  readonly target: JobTarget;
  readonly reason: string;
  readonly lambdaDollars: number;
  readonly gpuDollars: number | null;
  /** Images from which the GPU is cheaper; null when it never is (or there is none). */
  readonly breakEvenImages: number | null;
}

/**
 * The cheaper target for a job of `images` images (a lower bound when `atLeast`): Lambda
 * (x86, `memoryMb`) against the stack's GPU instance type including GPU_START_HOURS, or
 * Lambda when the stack has no GPU workers.
 */
export function chooseTarget(input: {
  readonly model: ModelProfile;
  readonly images: number;
  readonly atLeast?: boolean;
  /** The stack's GPU instance type; undefined when it has no GPU workers. */
  readonly gpuInstanceType: string | undefined;
  /** The stack's GPU worker runs on the CPU (the local stack's): there is no GPU to price. */
  readonly gpuWorkerOnCpu?: boolean;
  readonly memoryMb: number;
  readonly batchSize: number;
  readonly rates?: MeasuredRates;
}): TargetChoice {
  const rates = input.rates ?? MEASURED;
  const lambda = lambdaCost(lambdaCpuMs(input.model, rates).value, input.memoryMb, input.batchSize);
  const lambdaDollars = (lambda.x86PerMillion * input.images) / 1e6;
  const count = `${input.atLeast ? 'at least ' : ''}${input.images} images`;
  if (!input.gpuInstanceType) {
    return {
      target: 'lambda',
      reason: input.gpuWorkerOnCpu
        ? `${input.model.name}: the local stack's GPU worker runs on the CPU, with no GPU to gain from (--target gpu still uses it)`
        : `${input.model.name}: the stack has no GPU workers`,
      lambdaDollars,
      gpuDollars: null,
      breakEvenImages: null,
    };
  }
  const gpu = gpuCost(input.model, input.gpuInstanceType, rates);
  const startDollars = gpu.hourly * GPU_START_HOURS;
  const gpuDollars = startDollars + (gpu.perMillion * input.images) / 1e6;
  const saving = lambda.x86PerMillion - gpu.perMillion;
  const breakEvenImages = saving > 0 ? Math.ceil((startDollars / saving) * 1e6) : null;
  const target: JobTarget = gpuDollars < lambdaDollars ? 'gpu' : 'lambda';
  const money = (d: number) => `$${d < 10 ? d.toFixed(3) : d.toFixed(0)}`;
  const why =
    breakEvenImages === null
      ? `${gpu.instanceType} costs $${gpu.perMillion.toFixed(2)} per million against Lambda's $${lambda.x86PerMillion.toFixed(2)}, so it never pays`
      : `Lambda ${money(lambdaDollars)} against ${gpu.instanceType} ${money(gpuDollars)} (GPU pays from ${breakEvenImages} images)`;
  return {
    target,
    reason: `${input.model.name}, ${count}: ${why}${gpu.inferImagesPerSecond.estimate ? '; GPU rate estimated' : ''}`,
    lambdaDollars,
    gpuDollars,
    breakEvenImages,
  };
}

/**
 * `jobs start --target auto`: Lambda without GPU workers or when the GPU never pays for
 * this model; otherwise counts the job's images (`countImages` stops once it reaches the
 * break-even count, so a large prefix costs a few listings) and chooses by the total.
 */
export async function resolveAutoTarget(input: {
  readonly model: ModelProfile;
  readonly gpuInstanceType: string | undefined;
  readonly gpuWorkerOnCpu?: boolean;
  readonly memoryMb: number;
  readonly batchSize: number;
  readonly rates?: MeasuredRates;
  /** The number of images, or any number >= atMost once that many are seen. */
  readonly countImages: (atMost: number) => Promise<number>;
}): Promise<TargetChoice> {
  const { countImages, ...rest } = input;
  const probe = chooseTarget({ ...rest, images: 0 });
  if (probe.breakEvenImages === null) return probe;
  const images = await countImages(probe.breakEvenImages);
  return chooseTarget({
    ...rest,
    images: Math.min(images, probe.breakEvenImages),
    atLeast: images >= probe.breakEvenImages,
  });
}

/** $ per million requests or units besides compute (us-east-1 list prices, same `asOf` as PRICES). */
export const SERVICE_PRICES = {
  dynamoWriteUnit: 0.625,
  dynamoReadUnit: 0.125,
  s3Get: 0.4,
  s3Put: 5,
  s3List: 5,
  sqsRequest: 0.4,
  /** $ per GB of log lines ingested (CloudWatch Logs). */
  logIngestPerGb: 0.5,
} as const;

/** What one image uses besides compute, per image: measured by `npm run bench -- --only footprint`. */
export interface Footprint {
  readonly dynamoWriteUnits: number;
  readonly dynamoReadUnits: number;
  readonly s3Gets: number;
  readonly s3Puts: number;
  readonly s3Lists: number;
  readonly sqsRequests: number;
  readonly logBytes: number;
}

/**
 * The measured footprint per image (bench/RESULTS.md, "Footprint per image", decision 0027),
 * fashion model (the label index's worst case: 2 labels indexed per image). Upload: a
 * conditional Put with its two index entries, the existing-result BatchGet, the image's GET,
 * a share of the batch's JSON Lines PUT, receive and delete. Job: the same Put, its (job,
 * image) marker, shares of the counter and usage ADDs (about 1.14; the job item's own few
 * writes do not grow with its images), the planner's listing and sends, the job's reads.
 */
export const MEASURED_FOOTPRINT: Readonly<Record<'upload' | 'job', Footprint>> = {
  upload: {
    dynamoWriteUnits: 3,
    dynamoReadUnits: 1,
    s3Gets: 1,
    s3Puts: 0.2,
    s3Lists: 0,
    sqsRequests: 0.4,
    logBytes: 0,
  },
  job: {
    dynamoWriteUnits: 4.1,
    dynamoReadUnits: 4.1,
    s3Gets: 1,
    s3Puts: 0.1,
    s3Lists: 0.1,
    sqsRequests: 0.4,
    logBytes: 0,
  },
};

export interface BillLine {
  readonly service: string;
  readonly dollarsPerMillion: number;
}

/** The whole bill per million images, each service on its own line, compute included. */
export function billPerMillion(computeDollarsPerMillion: number, footprint: Footprint): BillLine[] {
  const p = SERVICE_PRICES;
  return [
    { service: 'compute', dollarsPerMillion: computeDollarsPerMillion },
    { service: 'dynamodb writes', dollarsPerMillion: footprint.dynamoWriteUnits * p.dynamoWriteUnit },
    { service: 'dynamodb reads', dollarsPerMillion: footprint.dynamoReadUnits * p.dynamoReadUnit },
    {
      service: 's3',
      dollarsPerMillion:
        footprint.s3Gets * p.s3Get + footprint.s3Puts * p.s3Put + footprint.s3Lists * p.s3List,
    },
    { service: 'sqs', dollarsPerMillion: footprint.sqsRequests * p.sqsRequest },
    { service: 'logs', dollarsPerMillion: (footprint.logBytes * 1e6 * p.logIngestPerGb) / 1e9 },
  ];
}

/** Rekognition DetectLabels' list price per 1,000 images (first tier), the comparison a receipt shows. */
export const REKOGNITION_PER_THOUSAND = 1;

/**
 * A finished job's receipt (decision 0035): what its workers counted as they went, priced at
 * list prices. Lambda compute is its GB-seconds (the measured durations at the function's
 * memory) plus its requests; a GPU worker's batches overlap `batchesInFlight` at a time, so
 * their time over that is instance time, priced at the first instance type's on-demand rate.
 * Undefined for a job not finished or without usage (one that ran before receipts).
 */
export function jobReceipt(
  job: Job,
  options: { lambdaMemoryMb?: number; gpuInstanceType?: string } = {},
): JobReceipt | undefined {
  const usage = job.usage;
  if (!usage || !job.finishedAt) return undefined;
  const wallSeconds = Math.max(0, (Date.parse(job.finishedAt) - Date.parse(job.createdAt)) / 1000);
  const computeSeconds = usage.computeMs / 1000;
  const memoryMb = options.lambdaMemoryMb ?? CLASSIFY.memoryMb;
  const lambdaGbSeconds = job.target === 'lambda' ? computeSeconds * (memoryMb / 1024) : undefined;
  const instance = options.gpuInstanceType ?? GPU_WORKER.instanceTypes[0] ?? '';
  const compute =
    lambdaGbSeconds !== undefined
      ? lambdaGbSeconds * PRICES.lambda.x86PerGbSecond +
        (usage.invocations * PRICES.lambda.perMillionRequests) / 1e6
      : ((computeSeconds / GPU_WORKER.batchesInFlight) * (PRICES.ec2OnDemand[instance] ?? 0)) / 3600;
  const p = SERVICE_PRICES;
  const dynamodb =
    (usage.dynamoWriteUnits * p.dynamoWriteUnit + usage.dynamoReadUnits * p.dynamoReadUnit) / 1e6;
  const s3 = (usage.s3Gets * p.s3Get + usage.s3Puts * p.s3Put) / 1e6;
  const sqs = (usage.sqsRequests * p.sqsRequest) / 1e6;
  const total = compute + dynamodb + s3 + sqs;
  const throughModel = job.labeled + job.failed;
  return {
    images: {
      total: job.total,
      labeled: job.labeled,
      failed: job.failed,
      skipped: job.skipped,
      cancelled: job.cancelled,
    },
    wallSeconds,
    imagesPerSecond: wallSeconds > 0 ? throughModel / wallSeconds : 0,
    computeSeconds,
    ...(lambdaGbSeconds !== undefined ? { lambdaGbSeconds } : {}),
    dynamoWriteUnits: usage.dynamoWriteUnits,
    dynamoReadUnits: usage.dynamoReadUnits,
    s3Requests: { get: usage.s3Gets, put: usage.s3Puts },
    sqsRequests: usage.sqsRequests,
    dollars: { compute, dynamodb, s3, sqs, total },
    dollarsPerThousand: throughModel > 0 ? (total / throughModel) * 1000 : 0,
    rekognitionPerThousand: REKOGNITION_PER_THOUSAND,
  };
}
