import { jobCountPorts } from '../shared/aws/count-objects.ts';
import { defaultStackCapacity, type StackCapacity } from '../shared/labeling/capacity-plan.ts';
import { modelProfileOf, resolveAutoTarget, type TargetChoice } from '../shared/labeling/cost-model.ts';
import { imageCostOf, sizeInvocation } from '../shared/labeling/invocation-budget.ts';
import { countJobImages, estimateJob, type JobEstimate } from '../shared/labeling/job-estimate.ts';
import type { JobMode } from '../shared/labeling/jobs.ts';
import type { SampleSpec } from '../shared/labeling/sample.ts';
import type { Manifest } from '../shared/model/manifest.ts';
import { CLASSIFY } from '../shared/settings.ts';
import type { StackConnection } from './stack.ts';

/**
 * `jobs start --target auto` on this stack: a deployed stack with GPU workers names their
 * instance type in its `GpuInstanceType` output; the local stack's GPU worker runs on the
 * CPU, so locally (and on a stack without GPU workers) the cost model always says Lambda,
 * and says which of the two it is. It counts the images as `--dry-run` does (the stale ones
 * in mode `stale`), stopping at the break-even count.
 */
export function autoTarget(
  stack: StackConnection,
  manifest: Manifest,
  bucket: string,
  prefix: string,
  mode: JobMode = 'all',
  sample?: SampleSpec,
): Promise<TargetChoice> {
  const ports = jobCountPorts(stack.clients, stack.resources.resultsTable, bucket, prefix, manifest);
  return resolveAutoTarget({
    model: modelProfileOf(manifest),
    gpuInstanceType: gpuInstanceTypeOf(stack),
    ...(stack.kind === 'local' && stack.localGpuWorker ? { gpuWorkerOnCpu: true } : {}),
    memoryMb: CLASSIFY.memoryMb,
    batchSize: CLASSIFY.batchSize,
    // At most `atMost` objects are listed, as before: in mode stale the images among them are
    // a lower bound when the listing stopped there, which can only favour Lambda (no start-up).
    countImages: async (atMost) =>
      (await countJobImages(ports, { mode, atMost, ...(sample ? { sample } : {}) })).images,
  });
}

/** `jobs start --dry-run`: the job's count and each target's all-in cost and wall time; starts nothing. */
export async function estimateOnStack(
  stack: StackConnection,
  manifest: Manifest,
  bucket: string,
  prefix: string,
  mode: JobMode,
  sample?: SampleSpec,
): Promise<JobEstimate> {
  const ports = jobCountPorts(stack.clients, stack.resources.resultsTable, bucket, prefix, manifest);
  const count = await countJobImages(ports, { mode, ...(sample ? { sample } : {}) });
  return estimateJob({
    bucket,
    prefix,
    model: modelProfileOf(manifest),
    count,
    capacity: capacityOf(stack, manifest),
    ...(stack.kind === 'local' && stack.localGpuWorker ? { gpuWorkerOnCpu: true } : {}),
  });
}

function gpuInstanceTypeOf(stack: StackConnection): string | undefined {
  try {
    return stack.kind === 'deployed' ? stack.outputs?.get('GpuInstanceType') : undefined;
  } catch {
    // a stack deployed with -c gpuWorkers=false has no such output
    return undefined;
  }
}

/**
 * What the stack was deployed with (its JobsCapacity output); the settings' defaults for
 * the local stack, whose times are then those of a default deploy, and for a stack
 * deployed before the output existed.
 */
function capacityOf(stack: StackConnection, manifest: Manifest): StackCapacity {
  const sizing = sizeInvocation(imageCostOf(manifest));
  const base = defaultStackCapacity(
    { objectsPerMessage: sizing.objectsPerMessage, jobBatchSize: sizing.jobBatchSize },
    gpuInstanceTypeOf(stack),
  );
  let deployed: Partial<
    Record<'jobsMaxConcurrency' | 'resultsWarmWriteUnits' | 'jobsWarmWriteUnits', number>
  > = {};
  try {
    if (stack.kind === 'deployed') deployed = JSON.parse(stack.outputs?.get('JobsCapacity') ?? '{}');
  } catch {
    // deployed before the output existed: the defaults
  }
  const n = (value: unknown, fallback: number) => (typeof value === 'number' && value > 0 ? value : fallback);
  return {
    ...base,
    jobsMaxConcurrency: n(deployed.jobsMaxConcurrency, base.jobsMaxConcurrency),
    resultsWarmWriteUnits: n(deployed.resultsWarmWriteUnits, base.resultsWarmWriteUnits),
    jobsWarmWriteUnits: n(deployed.jobsWarmWriteUnits, base.jobsWarmWriteUnits),
  };
}
