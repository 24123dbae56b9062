/**
 * What a job costs all in and how long it takes (issue 22, items 3 and 5): the cost model's
 * compute (shared/labeling/cost-model.ts) plus DynamoDB, S3, SQS and logs per image, and the
 * rate a stack sustains, bounded by whichever of the workers, the planner and the tables'
 * warm throughput is slowest. Pure arithmetic over stated figures, each with its source, so
 * `jobs start --dry-run`, the page's estimate and bench/SCALING-JOBS.md print the same
 * numbers and move together when a figure is re-measured.
 */
import {
  CLASSIFY,
  GPU_INSTANCE_SIZES,
  GPU_WORKER,
  JOB_IMAGES,
  JOBS,
  TABLE_WARM_THROUGHPUT,
} from '../settings.ts';
import {
  GPU_START_HOURS,
  gpuCost,
  lambdaCost,
  lambdaCpuMs,
  MEASURED,
  type MeasuredRates,
  type ModelProfile,
} from './cost-model.ts';
import type { JobTarget } from './jobs.ts';

/**
 * List prices of the services besides compute, us-east-1, US $, as last seen on the AWS
 * pricing pages (DynamoDB on-demand after the November 2024 cut; S3 Standard; SQS
 * standard queues; CloudWatch Logs standard ingestion). Not re-checked from here.
 */
export const SERVICE_PRICES = {
  asOf: '2025-06 (AWS list prices as last seen; not re-checked here)',
  dynamodb: { perMillionWriteUnits: 0.625, perMillionReadUnits: 0.125 },
  s3: { perThousandGets: 0.0004, perThousandPutsOrLists: 0.005 },
  sqs: { perMillionRequests: 0.4 },
  logs: { perGbIngested: 0.5 },
} as const;

/** DynamoDB units one job image takes, by table: what the tables' warm throughput is sized on. */
export interface DynamoFootprint {
  /** Results table, its by-label index included. */
  readonly resultsWriteUnits: number;
  /** Jobs table: the image's outcome and its share of the counters. */
  readonly jobsWriteUnits: number;
  /** The worker's look-up of the image's existing result (strongly consistent). */
  readonly readUnits: number;
  readonly source: string;
  readonly estimate: boolean;
}

/**
 * The planning figure, from the footprint bench (decision 0027): the results table takes 1
 * write unit per image plus 1 per indexed label (at most 2): 1.0 with B0 on the bench's
 * images, 3.0 at the fashion model's worst case, 2.31 on the soak's; planned at 2.5, the
 * upload target. Job accounting: the (job, image) marker, an eighth of a run's counter ADD and
 * an 80th of an invocation's usage ADD (1.3 measured at 10 images in one invocation). Pass other
 * figures where a model indexes more labels.
 */
export const PLANNING_FOOTPRINT: DynamoFootprint = {
  resultsWriteUnits: 2.5,
  jobsWriteUnits: 1.15,
  readUnits: 1,
  source:
    'the footprint bench (decision 0027): job accounting 1 marker + 1/8 counter ADD + 1/80 usage ADD write units per image; results 1 + indexed labels (1.0 B0, 3.0 worst case), planned at 2.5',
  estimate: true,
};

/** Bytes of log lines per image: an estimate (a batch logs a few lines, not one per image). */
export const LOG_BYTES_PER_IMAGE = 200;

/**
 * The account's quotas as AWS sets them by default. Lambda's 1,000 concurrent executions is
 * the documented regional default. The On-Demand G and VT vCPU quota (Service Quotas code
 * L-DB2E81BA) is assumed: new accounts often start lower, some at 0.
 */
export const ACCOUNT_DEFAULT_QUOTAS = {
  lambdaConcurrentExecutions: 1000,
  gpuOnDemandVcpus: 8,
  gpuSource: 'assumed 8 vCPUs of On-Demand G and VT instances (quota L-DB2E81BA; check yours)',
} as const;

/**
 * Latencies the rates rest on: estimates for AWS within one region, not measured here (the
 * local stack's emulators say nothing about AWS's speed).
 */
export const LATENCY_ESTIMATES = {
  /** One ListObjectsV2 page of 1,000 keys. */
  listPageMs: 150,
  /** One SendMessageBatch of ten messages. */
  sendBatchMs: 30,
  /** What a job invocation spends besides its images: the existing-results read, the export PUT, the writes' round trips. */
  invocationOverheadMs: 300,
  /** The jobs queue's event source reaching its maximum concurrency. */
  lambdaRampSeconds: 60,
} as const;

/** How a job's images reach the workers: sizeInvocation's figures for the model. */
export interface JobShape {
  readonly objectsPerMessage: number;
  readonly jobBatchSize: number;
}

/** What a stack is configured to sustain. */
export interface StackCapacity {
  /** The jobs queue's event source maximum concurrency. */
  readonly jobsMaxConcurrency: number;
  /** Executions the uploads' event source may hold (left to uploads at the account's quota). */
  readonly uploadsMaxConcurrency: number;
  readonly memoryMb: number;
  /** The GPU workers' instance type; undefined without GPU workers. */
  readonly gpuInstanceType: string | undefined;
  readonly gpuMaxTasks: number;
  readonly resultsWarmWriteUnits: number;
  readonly jobsWarmWriteUnits: number;
  readonly plannerSendConcurrency: number;
  readonly shape: JobShape;
}

/**
 * The settings' capacity (what a deploy without cdk.json overrides gets), with the stack's
 * GPU instance type (GPU_WORKER.instanceTypes[0] by default; undefined without GPU workers).
 */
export function defaultStackCapacity(shape: JobShape, gpuInstanceType: string | undefined): StackCapacity {
  return {
    jobsMaxConcurrency: JOB_IMAGES.maxConcurrency,
    uploadsMaxConcurrency: CLASSIFY.maxConcurrency,
    memoryMb: CLASSIFY.memoryMb,
    gpuInstanceType,
    gpuMaxTasks: GPU_WORKER.maxTasks,
    resultsWarmWriteUnits: TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond,
    jobsWarmWriteUnits: TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond,
    plannerSendConcurrency: JOBS.sendConcurrency,
    shape,
  };
}

/**
 * Objects per second one planner lists and enqueues: a page's listing, then its messages
 * in SendMessageBatch requests of ten, `sendConcurrency` in flight (plan steps run one at a
 * time, so this is the job's rate of planning).
 */
export function plannerRate(
  sendConcurrency: number,
  objectsPerMessage: number,
  pageSize: number = JOBS.pageSize,
): number {
  if (!(sendConcurrency >= 1) || !(objectsPerMessage >= 1) || !(pageSize >= 1)) {
    throw new RangeError('sendConcurrency, objectsPerMessage and pageSize must be at least 1');
  }
  const batches = Math.ceil(pageSize / objectsPerMessage / 10);
  const pageMs =
    LATENCY_ESTIMATES.listPageMs + Math.ceil(batches / sendConcurrency) * LATENCY_ESTIMATES.sendBatchMs;
  return (pageSize / pageMs) * 1000;
}

/** Images per second one job invocation labels: compute per image plus its share of the fixed overhead. */
export function lambdaImagesPerExecution(msPerImage: number, shape: JobShape): number {
  const images = shape.objectsPerMessage * shape.jobBatchSize;
  return 1000 / (msPerImage + LATENCY_ESTIMATES.invocationOverheadMs / images);
}

export type Bound = 'workers' | 'planner' | 'dynamodb';

/** A rate and what bounds it. */
export interface Throughput {
  /** Lambda: concurrent executions; GPU: instances. */
  readonly workers: number;
  readonly imagesPerSecond: number;
  readonly boundBy: Bound;
  readonly rates: Readonly<Record<Bound, number>>;
  /** Seconds for the job's images, the workers' start-up included. */
  readonly seconds: number;
}

export interface ServiceDollars {
  /** Lambda GB-seconds and requests, or GPU instance-hours with one instance's start-up. */
  readonly compute: number;
  readonly dynamodb: number;
  readonly s3: number;
  readonly sqs: number;
  readonly logs: number;
  readonly total: number;
}

export interface TargetEstimate {
  readonly target: JobTarget;
  readonly images: number;
  readonly dollars: ServiceDollars;
  readonly perThousand: number;
  /** At the stack's configured concurrency (Lambda) or task count (GPU). */
  readonly configured: Throughput;
  /** At the account's default quotas; null when they allow no worker at all. */
  readonly defaultQuotas: Throughput | null;
  /** GPU only: the instance type. */
  readonly instanceType?: string;
  /** Which figures are estimates rather than measurements. */
  readonly estimates: readonly string[];
}

/** Dollars of the services besides compute for `images` job images on `target`. */
export function serviceDollars(
  target: JobTarget,
  images: number,
  shape: JobShape,
  footprint: DynamoFootprint = PLANNING_FOOTPRINT,
): Omit<ServiceDollars, 'compute' | 'total'> {
  const perMessage = shape.objectsPerMessage;
  // Objects in one export PUT and one receive/delete: an invocation's batch on Lambda, a
  // GPU batch (receives take at most ten messages) on the GPU workers.
  const perBatch = target === 'lambda' ? perMessage * shape.jobBatchSize : GPU_WORKER.batchSize;
  const perReceive = target === 'lambda' ? perBatch : Math.min(10, GPU_WORKER.batchSize) * perMessage;
  const m = images / 1e6;
  const dynamodb =
    m *
    ((footprint.resultsWriteUnits + footprint.jobsWriteUnits) * SERVICE_PRICES.dynamodb.perMillionWriteUnits +
      footprint.readUnits * SERVICE_PRICES.dynamodb.perMillionReadUnits);
  const s3 =
    (images / 1000) *
    (SERVICE_PRICES.s3.perThousandGets +
      SERVICE_PRICES.s3.perThousandPutsOrLists * (1 / perBatch + 1 / JOBS.pageSize));
  // Planner sends (ten messages a request), the workers' receives and deletes.
  const sqsRequests = images * (1 / (perMessage * 10) + 2 / perReceive);
  const sqs = (sqsRequests / 1e6) * SERVICE_PRICES.sqs.perMillionRequests;
  const logs = ((images * LOG_BYTES_PER_IMAGE) / 1e9) * SERVICE_PRICES.logs.perGbIngested;
  return { dynamodb, s3, sqs, logs };
}

function throughput(
  workers: number,
  perWorker: number,
  images: number,
  startSeconds: number,
  capacity: StackCapacity,
  footprint: DynamoFootprint,
): Throughput {
  const rates: Record<Bound, number> = {
    workers: workers * perWorker,
    planner: plannerRate(capacity.plannerSendConcurrency, capacity.shape.objectsPerMessage),
    dynamodb: Math.min(
      capacity.resultsWarmWriteUnits / footprint.resultsWriteUnits,
      capacity.jobsWarmWriteUnits / footprint.jobsWriteUnits,
    ),
  };
  const boundBy = (Object.keys(rates) as Bound[]).reduce((a, b) => (rates[b] < rates[a] ? b : a));
  const imagesPerSecond = rates[boundBy];
  return { workers, imagesPerSecond, boundBy, rates, seconds: startSeconds + images / imagesPerSecond };
}

/**
 * One target's all-in dollars and wall time for `images` job images. Compute is the cost
 * model's, as `chooseTarget` prices it (Lambda x86 at CLASSIFY.batchSize images a request;
 * the GPU with one instance's start-up), so the estimate and `--target auto` agree.
 */
export function estimateTarget(input: {
  readonly target: JobTarget;
  readonly model: ModelProfile;
  readonly images: number;
  readonly capacity: StackCapacity;
  readonly rates?: MeasuredRates;
  readonly footprint?: DynamoFootprint;
}): TargetEstimate {
  const { target, model, images, capacity } = input;
  const rates = input.rates ?? MEASURED;
  const footprint = input.footprint ?? PLANNING_FOOTPRINT;
  const estimates = [
    ...(footprint.estimate ? [`DynamoDB units: ${footprint.source}`] : []),
    'AWS latencies of listing, sending and invoking (LATENCY_ESTIMATES)',
  ];
  const services = serviceDollars(target, images, capacity.shape, footprint);
  const withCompute = (compute: number): ServiceDollars => ({
    compute,
    ...services,
    total: compute + services.dynamodb + services.s3 + services.sqs + services.logs,
  });
  if (target === 'lambda') {
    const cpu = lambdaCpuMs(model, rates);
    if (cpu.estimate) estimates.push(`Lambda CPU time: ${cpu.source}`);
    const cost = lambdaCost(cpu.value, capacity.memoryMb, CLASSIFY.batchSize);
    const perExecution = lambdaImagesPerExecution(cost.msPerImage, capacity.shape);
    const start = LATENCY_ESTIMATES.lambdaRampSeconds;
    const dollars = withCompute((cost.x86PerMillion * images) / 1e6);
    // The account's executions, less what the uploads' event source may hold.
    const quota = ACCOUNT_DEFAULT_QUOTAS.lambdaConcurrentExecutions - capacity.uploadsMaxConcurrency;
    return {
      target,
      images,
      dollars,
      perThousand: images > 0 ? (dollars.total / images) * 1000 : 0,
      configured: throughput(capacity.jobsMaxConcurrency, perExecution, images, start, capacity, footprint),
      defaultQuotas: throughput(quota, perExecution, images, start, capacity, footprint),
      estimates,
    };
  }
  const type = capacity.gpuInstanceType;
  if (!type) throw new RangeError('the stack has no GPU workers to estimate');
  const gpu = gpuCost(model, type, rates);
  if (gpu.inferImagesPerSecond.estimate) estimates.push(`GPU rate: ${gpu.inferImagesPerSecond.source}`);
  estimates.push(`GPU quota: ${ACCOUNT_DEFAULT_QUOTAS.gpuSource}`);
  const start = GPU_START_HOURS * 3600;
  const dollars = withCompute(gpu.hourly * GPU_START_HOURS + (gpu.perMillion * images) / 1e6);
  const vcpus = GPU_INSTANCE_SIZES[type]?.vcpus ?? Number.POSITIVE_INFINITY;
  const quotaInstances = Math.floor(ACCOUNT_DEFAULT_QUOTAS.gpuOnDemandVcpus / vcpus);
  return {
    target,
    images,
    instanceType: type,
    dollars,
    perThousand: images > 0 ? (dollars.total / images) * 1000 : 0,
    configured: throughput(capacity.gpuMaxTasks, gpu.imagesPerSecond, images, start, capacity, footprint),
    defaultQuotas:
      quotaInstances < 1
        ? null
        : throughput(
            Math.min(quotaInstances, capacity.gpuMaxTasks),
            gpu.imagesPerSecond,
            images,
            start,
            capacity,
            footprint,
          ),
    estimates,
  };
}

/** One row of the ten-million-in-an-hour table. */
export interface CapacityPlan {
  readonly images: number;
  readonly withinSeconds: number;
  /** Images per second the deadline asks for (labeling alone, start-up excluded). */
  readonly imagesPerSecondNeeded: number;
  /** Concurrent executions that rate needs, and what the stack is configured with. */
  readonly concurrencyNeeded: number;
  readonly concurrencyConfigured: number;
  readonly imagesPerExecution: number;
  /** Write units per second on each table at the needed rate, and their warm throughput. */
  readonly resultsWriteUnitsNeeded: number;
  readonly resultsWarmWriteUnits: number;
  readonly jobsWriteUnitsNeeded: number;
  readonly jobsWarmWriteUnits: number;
  readonly plannerObjectsPerSecond: number;
  /** The configured stack's whole job, start-up included. */
  readonly estimate: TargetEstimate;
  readonly meetsDeadline: boolean;
  readonly footprint: DynamoFootprint;
}

/**
 * What labeling `images` B0-sized images on the Lambda target within `withinSeconds` takes
 * of each part, against what `capacity` gives (bench/SCALING-JOBS.md's table).
 */
export function capacityPlan(input: {
  readonly model: ModelProfile;
  readonly images: number;
  readonly withinSeconds: number;
  readonly capacity: StackCapacity;
  readonly rates?: MeasuredRates;
  readonly footprint?: DynamoFootprint;
}): CapacityPlan {
  const { model, images, withinSeconds, capacity } = input;
  const rates = input.rates ?? MEASURED;
  const footprint = input.footprint ?? PLANNING_FOOTPRINT;
  const needed = images / withinSeconds;
  const cost = lambdaCost(lambdaCpuMs(model, rates).value, capacity.memoryMb, CLASSIFY.batchSize);
  const perExecution = lambdaImagesPerExecution(cost.msPerImage, capacity.shape);
  const estimate = estimateTarget({ target: 'lambda', model, images, capacity, rates, footprint });
  return {
    images,
    withinSeconds,
    imagesPerSecondNeeded: needed,
    concurrencyNeeded: Math.ceil(needed / perExecution),
    concurrencyConfigured: capacity.jobsMaxConcurrency,
    imagesPerExecution: perExecution,
    resultsWriteUnitsNeeded: needed * footprint.resultsWriteUnits,
    resultsWarmWriteUnits: capacity.resultsWarmWriteUnits,
    jobsWriteUnitsNeeded: needed * footprint.jobsWriteUnits,
    jobsWarmWriteUnits: capacity.jobsWarmWriteUnits,
    plannerObjectsPerSecond: estimate.configured.rates.planner,
    estimate,
    meetsDeadline: estimate.configured.seconds <= withinSeconds,
    footprint,
  };
}
