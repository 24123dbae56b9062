import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../shared/errors.ts';
import { efficientNet, lambdaCpuMs } from '../../shared/labeling/cost-model.ts';
import { imageCostOf, sizeInvocation } from '../../shared/labeling/invocation-budget.ts';
import { readManifest } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { CLASSIFY, JOBS, LABELING } from '../../shared/settings.ts';

const cost = (cpuMsPerImage: number) => ({ cpuMsPerImage, source: 'test' });

describe('work per classify invocation, sized from the model (decision 0025)', () => {
  it('keeps every ceiling for a fast model', () => {
    const b0 = sizeInvocation(cost(lambdaCpuMs(efficientNet('efficientnet_b0')).value));
    assert.deepEqual(
      [b0.uploadBatchSize, b0.objectsPerMessage, b0.jobBatchSize],
      [CLASSIFY.batchSize, JOBS.objectsPerMessage, CLASSIFY.batchSize],
    );
  });

  it('gives B7 fewer job messages per invocation, so the work stays under half the timeout', () => {
    const b7 = sizeInvocation(cost(lambdaCpuMs(efficientNet('efficientnet_b7')).value));
    assert.equal(b7.objectsPerMessage, JOBS.objectsPerMessage);
    assert.equal(b7.jobBatchSize, 2);
    // 8 messages of 10 would be 80 images, about 92 s on one vCPU: a timeout.
    for (const seconds of Object.values(b7.expectedSeconds)) {
      assert.ok(seconds <= CLASSIFY.timeoutSeconds * CLASSIFY.workShareOfTimeout, `${seconds} s`);
    }
  });

  it('shrinks messages and batches together for a model of several seconds per image', () => {
    const slow = sizeInvocation(cost(7_000));
    assert.deepEqual([slow.uploadBatchSize, slow.objectsPerMessage, slow.jobBatchSize], [4, 4, 1]);
    assert.ok(slow.expectedSeconds.jobs <= 30);
    // Two inference runs of the worker's batch at that speed, plus the writes.
    assert.equal(slow.deadlineReserveMs, 2 * LABELING.batchSize * 7_000 + CLASSIFY.deadlineWriteReserveMs);
  });

  it('refuses a model that cannot label one image in the share of the timeout, saying what to do', () => {
    assert.throws(
      () => sizeInvocation(cost(31_000)),
      (e: unknown) =>
        e instanceof ConfigError && /raise CLASSIFY\.timeoutSeconds.*GPU target/.test(e.message),
    );
  });

  it("takes the manifest's measured figure over the estimate", async () => {
    const manifest = await readManifest(DEFAULT_MODEL_DIR);
    assert.match(imageCostOf(manifest).source, /^estimated/);
    const measured = imageCostOf({ ...manifest, cpuMsPerImage: 2_500 });
    assert.deepEqual(measured, { cpuMsPerImage: 2_500, source: 'manifest cpuMsPerImage (measured)' });
    assert.equal(sizeInvocation(measured).jobBatchSize, 1);
  });
});
