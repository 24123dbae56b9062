import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import {
  blockOf,
  normalizedBlock,
  renderTenMillionTable,
  TABLE_END,
  TABLE_START,
} from '../../bench/lib/jobs-scale-table.ts';
import { numberContext } from '../../infra/create-app.ts';
import {
  ACCOUNT_DEFAULT_QUOTAS,
  capacityPlan,
  defaultStackCapacity,
  estimateTarget,
  LATENCY_ESTIMATES,
  PLANNING_FOOTPRINT,
  plannerRate,
  SERVICE_PRICES,
} from '../../shared/labeling/capacity-plan.ts';
import {
  chooseTarget,
  efficientNet,
  lambdaCost,
  lambdaCpuMs,
  type MeasuredRates,
} from '../../shared/labeling/cost-model.ts';
import { estimateJob, printedEstimate } from '../../shared/labeling/job-estimate.ts';
import { CLASSIFY, JOB_IMAGES, JOBS, TABLE_WARM_THROUGHPUT } from '../../shared/settings.ts';

const RATES: MeasuredRates = {
  decodeCpuMs: { value: 10, source: 'test', estimate: false },
  b0InferCpuMs: { value: 10, source: 'test', estimate: false },
  gpuHostDecodePerVcpu: { value: 25, source: 'test', estimate: false },
  b0GpuImagesPerSecond: { value: 6700, gpu: 'NVIDIA H200', source: 'test', estimate: false },
};
const B0 = efficientNet('efficientnet_b0');
const SHAPE = { objectsPerMessage: 10, jobBatchSize: 8 };
const close = (actual: number, expected: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} != ${expected}`,
  );

describe('capacity plan arithmetic', () => {
  it('planner: a page listed, then its ten-message batches sendConcurrency at a time', () => {
    // 1,000 objects = 100 messages = 10 batches; 5 in flight: 2 rounds of sends after the listing.
    const pageMs = LATENCY_ESTIMATES.listPageMs + 2 * LATENCY_ESTIMATES.sendBatchMs;
    close(plannerRate(5, 10), (1000 / pageMs) * 1000, 'five in flight');
    const oneByOne = LATENCY_ESTIMATES.listPageMs + 10 * LATENCY_ESTIMATES.sendBatchMs;
    close(plannerRate(1, 10), (1000 / oneByOne) * 1000, 'one at a time');
    assert.ok(plannerRate(5, 10) > plannerRate(1, 10));
    assert.throws(() => plannerRate(0, 10), RangeError);
  });

  it('prices each service per image, and the total is their sum', () => {
    const images = 2_000_000;
    const e = estimateTarget({
      target: 'lambda',
      model: B0,
      images,
      capacity: defaultStackCapacity(SHAPE, undefined),
      rates: RATES,
    });
    const lambda = lambdaCost(lambdaCpuMs(B0, RATES).value, CLASSIFY.memoryMb, CLASSIFY.batchSize);
    close(e.dollars.compute, lambda.x86PerMillion * 2, 'compute as the cost model prices it');
    const f = PLANNING_FOOTPRINT;
    close(
      e.dollars.dynamodb,
      2 *
        ((f.resultsWriteUnits + f.jobsWriteUnits) * SERVICE_PRICES.dynamodb.perMillionWriteUnits +
          f.readUnits * SERVICE_PRICES.dynamodb.perMillionReadUnits),
      'DynamoDB',
    );
    // One GET per image, one export PUT per 80-image invocation, one LIST per 1,000.
    close(e.dollars.s3, 2000 * (0.0004 + 0.005 * (1 / 80 + 1 / JOBS.pageSize)), 'S3');
    // Sends of ten 10-object messages, a receive and a delete per 80-image invocation.
    close(e.dollars.sqs, (images * (1 / 100 + 2 / 80) * 0.4) / 1e6, 'SQS');
    const d = e.dollars;
    close(d.total, d.compute + d.dynamodb + d.s3 + d.sqs + d.logs, 'total');
    close(e.perThousand, (d.total / images) * 1000, 'per thousand');
    assert.ok(e.dollars.dynamodb > e.dollars.compute, 'at 3.5 write units DynamoDB outweighs B0 compute');
  });

  it('wall time: the slowest of workers, planner and warm throughput, plus the ramp', () => {
    const capacity = { ...defaultStackCapacity(SHAPE, undefined), jobsMaxConcurrency: 10 };
    const e = estimateTarget({ target: 'lambda', model: B0, images: 1e6, capacity, rates: RATES });
    assert.equal(e.configured.boundBy, 'workers');
    assert.equal(e.configured.workers, 10);
    close(
      e.configured.seconds,
      LATENCY_ESTIMATES.lambdaRampSeconds + 1e6 / e.configured.imagesPerSecond,
      'seconds',
    );
    // At the account's quota (less the uploads' share) the workers outrun the table's warm writes.
    assert.equal(
      e.defaultQuotas?.workers,
      ACCOUNT_DEFAULT_QUOTAS.lambdaConcurrentExecutions - CLASSIFY.maxConcurrency,
    );
    assert.equal(e.defaultQuotas?.boundBy, 'dynamodb');
    close(
      e.defaultQuotas?.imagesPerSecond ?? 0,
      Math.min(
        TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond / PLANNING_FOOTPRINT.resultsWriteUnits,
        TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond / PLANNING_FOOTPRINT.jobsWriteUnits,
      ),
      'warm writes / units per image',
    );
  });

  it('GPU: instances as configured and as the default vCPU quota allows, none when it allows none', () => {
    const capacity = defaultStackCapacity(SHAPE, 'g6.xlarge');
    const e = estimateTarget({ target: 'gpu', model: B0, images: 1e6, capacity, rates: RATES });
    assert.equal(e.instanceType, 'g6.xlarge');
    assert.equal(e.configured.workers, capacity.gpuMaxTasks);
    assert.equal(e.defaultQuotas?.workers, Math.floor(ACCOUNT_DEFAULT_QUOTAS.gpuOnDemandVcpus / 4));
    const big = estimateTarget({
      ...{ target: 'gpu', model: B0, images: 1e6, rates: RATES },
      capacity: defaultStackCapacity(SHAPE, 'g6e.4xlarge'),
    });
    assert.equal(big.defaultQuotas, null, '16 vCPUs exceed the assumed default quota');
    assert.throws(
      () =>
        estimateTarget({
          target: 'gpu',
          model: B0,
          images: 1,
          capacity: defaultStackCapacity(SHAPE, undefined),
        }),
      RangeError,
    );
  });
});

describe('ten million B0 images in an hour (issue 22, item 5)', () => {
  const plan = (capacity = defaultStackCapacity(SHAPE, undefined), footprint = PLANNING_FOOTPRINT) =>
    capacityPlan({ model: B0, images: 10_000_000, withinSeconds: 3600, capacity, footprint });

  it('the settings meet it: concurrency, warm writes and planner each above the needed rate', () => {
    const p = plan();
    close(p.imagesPerSecondNeeded, 10_000_000 / 3600, 'images/s needed');
    assert.ok(p.meetsDeadline, `the whole job takes ${p.estimate.configured.seconds} s`);
    assert.ok(p.concurrencyNeeded <= p.concurrencyConfigured);
    assert.ok(p.resultsWriteUnitsNeeded <= p.resultsWarmWriteUnits);
    assert.ok(p.jobsWriteUnitsNeeded <= p.jobsWarmWriteUnits);
    assert.ok(p.plannerObjectsPerSecond >= p.imagesPerSecondNeeded);
    assert.ok(p.concurrencyConfigured < ACCOUNT_DEFAULT_QUOTAS.lambdaConcurrentExecutions);
  });

  it('the earlier jobs concurrency of 20 does not, nor a heavier footprint at the same warm throughput', () => {
    assert.equal(
      plan({ ...defaultStackCapacity(SHAPE, undefined), jobsMaxConcurrency: 20 }).meetsDeadline,
      false,
    );
    const heavy = plan(undefined, { ...PLANNING_FOOTPRINT, resultsWriteUnits: 6, jobsWriteUnits: 4 });
    assert.equal(heavy.meetsDeadline, false);
    assert.equal(heavy.estimate.configured.boundBy, 'dynamodb');
  });

  it('cdk.json sets the settings the plan is computed from', () => {
    const context = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context;
    assert.equal(context.jobsMaxConcurrency, JOB_IMAGES.maxConcurrency);
    assert.equal(context.resultsTableWarmWrites, TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond);
    assert.equal(context.jobsTableWarmWrites, TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond);
  });

  it("bench/SCALING-JOBS.md's table is what the code renders now (re-run bench/jobs-scale.ts when it is not)", () => {
    const doc = readFileSync(new URL('../../bench/SCALING-JOBS.md', import.meta.url), 'utf8');
    assert.equal(
      normalizedBlock(blockOf(doc, TABLE_START, TABLE_END) ?? ''),
      normalizedBlock(renderTenMillionTable()),
    );
  });

  it('a context value out of range stops synthesis, naming it', () => {
    const app = (value: unknown) => new App({ context: { jobsMaxConcurrency: value } });
    assert.equal(numberContext(app('300'), 'jobsMaxConcurrency', 2, 1000), 300);
    assert.equal(numberContext(app(300), 'jobsMaxConcurrency', 2, 1000), 300);
    assert.equal(numberContext(new App(), 'jobsMaxConcurrency', 2, 1000), undefined);
    for (const bad of [1, 1001, 'many', 2.5]) {
      assert.throws(
        () => numberContext(app(bad), 'jobsMaxConcurrency', 2, 1000),
        /context "jobsMaxConcurrency" must be a whole number from 2 to 1000/,
      );
    }
  });
});

describe('estimateJob', () => {
  it("auto's choice is chooseTarget's on the same count, a lower bound said as such", () => {
    const B7 = efficientNet('efficientnet_b7');
    const capacity = defaultStackCapacity(SHAPE, 'g6.xlarge');
    const count = { objects: 100_000, images: 100_000, complete: false, mode: 'all' as const };
    const e = estimateJob({ bucket: 'b', prefix: 'p/', model: B7, count, capacity, rates: RATES });
    const direct = chooseTarget({
      model: B7,
      images: 100_000,
      atLeast: true,
      gpuInstanceType: 'g6.xlarge',
      memoryMb: CLASSIFY.memoryMb,
      batchSize: CLASSIFY.batchSize,
      rates: RATES,
    });
    assert.deepEqual(e.auto, direct);
    assert.match(e.auto.reason, /at least 100000 images/);
    assert.deepEqual(
      e.targets.map((t) => t.target),
      ['lambda', 'gpu'],
    );
    // The compute lines are the dollars auto compares.
    close(e.targets[0]?.dollars.compute ?? 0, direct.lambdaDollars, 'Lambda compute');
    close(e.targets[1]?.dollars.compute ?? 0, direct.gpuDollars ?? 0, 'GPU compute');
    const json = printedEstimate(e);
    assert.equal(json.complete, false);
    assert.equal(json.dryRun, true);
  });

  it('prices no GPU on a stack without GPU workers', () => {
    const count = { objects: 10, images: 4, complete: true, mode: 'stale' as const };
    const e = estimateJob({
      bucket: 'b',
      prefix: '',
      model: B0,
      count,
      capacity: defaultStackCapacity(SHAPE, undefined),
      rates: RATES,
    });
    assert.deepEqual(
      e.targets.map((t) => [t.target, t.images]),
      [['lambda', 4]],
    );
    assert.equal(e.auto.target, 'lambda');
  });
});
