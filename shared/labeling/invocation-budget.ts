import { ConfigError } from '../errors.ts';
import type { Manifest } from '../model/manifest.ts';
import { CLASSIFY, JOBS, LABELING } from '../settings.ts';
import { lambdaCpuMs, modelProfileOf } from './cost-model.ts';

/** How long one image takes a classify invocation, and where the figure comes from. */
export interface ImageCost {
  readonly cpuMsPerImage: number;
  /** The manifest's measured `cpuMsPerImage`, or the cost model's estimate from MACs. */
  readonly source: string;
}

/** The manifest's measured figure, else decode plus B0's inference scaled by the model's MACs. */
export function imageCostOf(manifest: Manifest): ImageCost {
  if (manifest.cpuMsPerImage !== undefined) {
    return { cpuMsPerImage: manifest.cpuMsPerImage, source: 'manifest cpuMsPerImage (measured)' };
  }
  const estimate = lambdaCpuMs(modelProfileOf(manifest));
  return { cpuMsPerImage: estimate.value, source: `estimated: ${estimate.source}` };
}

/** What one classify invocation takes on, sized from the model (decision 0025). */
export interface InvocationSizing {
  /** Upload messages (one image each) per invocation: the uploads' event source batch size. */
  readonly uploadBatchSize: number;
  /** Objects in one job message (plan-job writes them). */
  readonly objectsPerMessage: number;
  /** Job messages per invocation: the jobs queue's event source batch size. */
  readonly jobBatchSize: number;
  /**
   * An invocation stops starting images when less than this is left of its timeout: the
   * images already started finish (their inference run and the one ahead of it, then the
   * writes), and the unstarted ones go back to the queue as batch item failures.
   */
  readonly deadlineReserveMs: number;
  /** The expected work of a full invocation, for the record: at most half the timeout. */
  readonly expectedSeconds: { readonly uploads: number; readonly jobs: number };
}

/**
 * Sizes an invocation so its expected work (images × seconds per image on one vCPU) stays
 * under CLASSIFY.workShareOfTimeout of the timeout, within the fixed ceilings (an inference
 * run of CLASSIFY.batchSize images, JOBS.objectsPerMessage objects per message). B0 at
 * ~28 ms per image keeps every ceiling; B7 at ~1.15 s gets job batches of two 10-object
 * messages (23 s). A model that cannot label even one image in that share is refused.
 */
export function sizeInvocation(
  cost: ImageCost,
  timeoutSeconds: number = CLASSIFY.timeoutSeconds,
): InvocationSizing {
  const secondsPerImage = cost.cpuMsPerImage / 1000;
  const budgetSeconds = timeoutSeconds * CLASSIFY.workShareOfTimeout;
  const images = Math.floor(budgetSeconds / secondsPerImage);
  if (images < 1) {
    throw new ConfigError(
      `one image takes about ${secondsPerImage.toFixed(1)} s on one vCPU (${cost.source}), more than ` +
        `${Math.round(CLASSIFY.workShareOfTimeout * 100)} % of the classify function's ${timeoutSeconds} s timeout: ` +
        'raise CLASSIFY.timeoutSeconds (and the memory, for more vCPUs) or label this model on the GPU target',
    );
  }
  const uploadBatchSize = Math.min(CLASSIFY.batchSize, images);
  const objectsPerMessage = Math.min(JOBS.objectsPerMessage, images);
  const jobBatchSize = Math.max(1, Math.min(CLASSIFY.batchSize, Math.floor(images / objectsPerMessage)));
  return {
    uploadBatchSize,
    objectsPerMessage,
    jobBatchSize,
    deadlineReserveMs: Math.ceil(
      2 * LABELING.batchSize * cost.cpuMsPerImage + CLASSIFY.deadlineWriteReserveMs,
    ),
    expectedSeconds: {
      uploads: uploadBatchSize * secondsPerImage,
      jobs: jobBatchSize * objectsPerMessage * secondsPerImage,
    },
  };
}
