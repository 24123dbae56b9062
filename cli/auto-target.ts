import { countObjects } from '../shared/aws/count-objects.ts';
import { modelProfileOf, resolveAutoTarget, type TargetChoice } from '../shared/labeling/cost-model.ts';
import type { Manifest } from '../shared/model/manifest.ts';
import { CLASSIFY } from '../shared/settings.ts';
import type { StackConnection } from './stack.ts';

/**
 * `jobs start --target auto` on this stack: a deployed stack with GPU workers names their
 * instance type in its `GpuInstanceType` output; the local stack's GPU worker runs on the
 * CPU, so locally (and on a stack without GPU workers) the cost model always says Lambda,
 * and says which of the two it is.
 */
export function autoTarget(
  stack: StackConnection,
  manifest: Manifest,
  bucket: string,
  prefix: string,
): Promise<TargetChoice> {
  let gpuInstanceType: string | undefined;
  try {
    gpuInstanceType = stack.kind === 'deployed' ? stack.outputs?.get('GpuInstanceType') : undefined;
  } catch {
    // a stack deployed with -c gpuWorkers=false has no such output
  }
  return resolveAutoTarget({
    model: modelProfileOf(manifest),
    gpuInstanceType,
    ...(stack.kind === 'local' && stack.localGpuWorker ? { gpuWorkerOnCpu: true } : {}),
    memoryMb: CLASSIFY.memoryMb,
    batchSize: CLASSIFY.batchSize,
    countImages: (atMost) => countObjects(stack.clients.s3, bucket, prefix, atMost),
  });
}
