import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  billPerMillion,
  chooseTarget,
  costTable,
  EFFICIENTNETS,
  efficientNet,
  GPU_START_HOURS,
  gpuCost,
  gpuInferRate,
  lambdaCost,
  lambdaCpuMs,
  MEASURED_FOOTPRINT,
  type MeasuredRates,
  modelProfileOf,
  PRICES,
  resolveAutoTarget,
} from '../../shared/labeling/cost-model.ts';

/** Round numbers, so every expected value below can be checked by hand. */
const RATES: MeasuredRates = {
  decodeCpuMs: { value: 10, source: 'test', estimate: false },
  b0InferCpuMs: { value: 10, source: 'test', estimate: false },
  gpuHostDecodePerVcpu: { value: 25, source: 'test', estimate: false },
  b0GpuImagesPerSecond: { value: 6700, gpu: 'NVIDIA H200', source: 'test', estimate: false },
};
const close = (actual: number, expected: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} != ${expected}`,
  );

describe('cost model arithmetic', () => {
  it('Lambda: GB-seconds at the CPU share the memory buys, plus one request per batch', () => {
    // 1769 MB = 1 vCPU: 20 CPU-ms bill 20 ms of 1769/1024 GB.
    const c = lambdaCost(20, 1769, 8);
    close(c.msPerImage, 20, 'ms at 1 vCPU');
    close(c.x86PerMillion, (1769 / 1024) * 0.02 * PRICES.lambda.x86PerGbSecond * 1e6 + 0.2 / 8, 'x86 $/M');
    close(c.armPerMillion, (1769 / 1024) * 0.02 * PRICES.lambda.armPerGbSecond * 1e6 + 0.2 / 8, 'arm $/M');
    // Twice the memory, twice the CPU share: half the time, the same GB-seconds.
    const d = lambdaCost(20, 3538, 8);
    close(d.msPerImage, 10, 'ms at 2 vCPU');
    close(d.x86PerMillion, c.x86PerMillion, 'same $ for CPU-bound work');
    assert.throws(() => lambdaCost(0, 2048, 8), RangeError);
  });

  it('Lambda CPU time: decode plus B0 inference scaled by MACs', () => {
    const b0 = lambdaCpuMs(efficientNet('efficientnet_b0'), RATES);
    close(b0.value, 20, 'B0');
    assert.equal(b0.estimate, false);
    const b7 = lambdaCpuMs(efficientNet('efficientnet_b7'), RATES);
    close(b7.value, 10 + (10 * 37.75) / 0.39, 'B7');
    assert.equal(b7.estimate, true, 'a MAC-scaled time is an estimate');
  });

  it('GPU inference rate: measured B0 on the H200, scaled by MACs and FP32 peak, flagged', () => {
    const same = gpuInferRate(efficientNet('efficientnet_b0'), 'NVIDIA H200', RATES);
    assert.equal(same.value, 6700);
    assert.equal(same.estimate, false);
    const l4 = gpuInferRate(efficientNet('efficientnet_b3'), 'NVIDIA L4', RATES);
    close(l4.value, ((6700 * 0.39) / 1.83) * (30.3 / 67), 'B3 on L4');
    assert.equal(l4.estimate, true);
    assert.match(l4.source, /MACs.*FP32 peak, NVIDIA L4 \/ NVIDIA H200/);
  });

  it('GPU instance: images/s = min(decode on vCPUs less the host, inference); $ = hourly / rate', () => {
    // g6.4xlarge: 16 vCPUs, 15 decode at 25/s = 375/s; L4 B0 inference 6700 x 30.3/67 = 3030/s.
    const b0 = gpuCost(efficientNet('efficientnet_b0'), 'g6.4xlarge', RATES);
    close(b0.decodeImagesPerSecond, 375, 'decode');
    assert.equal(b0.boundBy, 'decode');
    close(b0.perMillion, (1.3232 / 3600 / 375) * 1e6, '$/M');
    // B7 on g5.xlarge: 3 x 25 = 75/s decode; A10G B7 6700 x 0.39/37.75 x 31.2/67 = 32.2/s.
    const b7 = gpuCost(efficientNet('efficientnet_b7'), 'g5.xlarge', RATES);
    assert.equal(b7.boundBy, 'inference');
    close(b7.imagesPerSecond, ((6700 * 0.39) / 37.75) * (31.2 / 67), 'B7 rate');
    close(b7.perMillion, (1.006 / 3600 / b7.imagesPerSecond) * 1e6, 'B7 $/M');
    assert.throws(() => gpuCost(efficientNet('efficientnet_b0'), 'p5.48xlarge', RATES), RangeError);
  });

  it('the table picks the cheapest GPU per model', () => {
    const rows = costTable([efficientNet('efficientnet_b0'), efficientNet('efficientnet_b7')], {
      memoryMb: 2048,
      batchSize: 8,
      rates: RATES,
    });
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.equal(row.gpus.length, 6);
      assert.equal(row.bestGpu.perMillion, Math.min(...row.gpus.map((g) => g.perMillion)));
    }
    // Decode-bound B0: the most vCPUs per dollar wins; inference-bound B7: the cheapest GPU-hour.
    assert.equal(rows[0]?.bestGpu.instanceType, 'g6.4xlarge');
    assert.equal(rows[1]?.bestGpu.instanceType, 'g6.xlarge');
  });

  it('reads the model from a manifest: EfficientNet names, else MACs scaled by input pixels', () => {
    assert.equal(
      modelProfileOf({ id: 'efficientnet_b3', input: { width: 300, height: 300 } }).name,
      'efficientnet_b3',
    );
    assert.equal(
      modelProfileOf({
        id: 'x',
        description: 'torchvision EfficientNet-B7, ImageNet',
        input: { width: 600, height: 600 },
      }).gmacs,
      EFFICIENTNETS.efficientnet_b7.gmacs,
    );
    const fashion = modelProfileOf({ id: 'fashion-efficientnet', input: { width: 28, height: 28 } });
    assert.equal(fashion.gmacsEstimated, true);
    close(fashion.gmacs, (0.39 * 28 * 28) / (224 * 224), 'scaled by pixels');
  });
});

describe('chooseTarget', () => {
  const base = { memoryMb: 2048, batchSize: 8, rates: RATES } as const;

  it('is Lambda when the stack has no GPU workers, whatever the size', () => {
    const c = chooseTarget({
      ...base,
      model: efficientNet('efficientnet_b7'),
      images: 1e9,
      gpuInstanceType: undefined,
    });
    assert.equal(c.target, 'lambda');
    assert.match(c.reason, /no GPU workers/);
    assert.equal(c.gpuDollars, null);
  });

  it('is Lambda on the local stack, saying its GPU worker runs on the CPU rather than that there is none', () => {
    const c = chooseTarget({
      ...base,
      model: efficientNet('efficientnet_b7'),
      images: 1e9,
      gpuInstanceType: undefined,
      gpuWorkerOnCpu: true,
    });
    assert.equal(c.target, 'lambda');
    assert.match(c.reason, /the local stack's GPU worker runs on the CPU/);
    assert.doesNotMatch(c.reason, /no GPU workers/);
  });

  it('is Lambda for B0 on a 4-vCPU instance: decode-bound, the GPU never pays', () => {
    const c = chooseTarget({
      ...base,
      model: efficientNet('efficientnet_b0'),
      images: 1e8,
      gpuInstanceType: 'g5.xlarge',
    });
    assert.equal(c.target, 'lambda');
    assert.equal(c.breakEvenImages, null);
    assert.match(c.reason, /never pays/);
  });

  it('is the GPU for B7 from the break-even count on, and Lambda below it', () => {
    const model = efficientNet('efficientnet_b7');
    const probe = chooseTarget({ ...base, model, images: 1, gpuInstanceType: 'g6.xlarge' });
    const breakEven = probe.breakEvenImages;
    assert.ok(breakEven !== null && breakEven > 1, 'B7 on an L4 pays from some count');
    assert.equal(probe.target, 'lambda', 'one image does not pay for starting an instance');
    const lambda = lambdaCost(lambdaCpuMs(model, RATES).value, 2048, 8).x86PerMillion;
    const gpu = gpuCost(model, 'g6.xlarge', RATES);
    // The break-even count is the first at which the GPU, start-up included, costs no more.
    const lambdaAt = (n: number) => (lambda * n) / 1e6;
    const gpuAt = (n: number) => gpu.hourly * GPU_START_HOURS + (gpu.perMillion * n) / 1e6;
    assert.ok(gpuAt(breakEven) <= lambdaAt(breakEven), 'GPU no dearer at the break-even count');
    assert.ok(gpuAt(breakEven - 1) > lambdaAt(breakEven - 1), 'GPU dearer one image earlier');
    const above = chooseTarget({
      ...base,
      model,
      images: breakEven + 1000,
      atLeast: true,
      gpuInstanceType: 'g6.xlarge',
    });
    assert.equal(above.target, 'gpu');
    assert.match(above.reason, /at least/);
    assert.match(above.reason, /GPU rate estimated/);
    assert.equal(
      chooseTarget({ ...base, model, images: breakEven - 1000, gpuInstanceType: 'g6.xlarge' }).target,
      'lambda',
    );
  });
});

describe('bench/cost-model.ts', () => {
  it('replaces its marked block in RESULTS.md, or appends it once', async () => {
    const { withBlock, START_MARKER, END_MARKER } = await import('../../bench/cost-model.ts');
    const first = withBlock('# R\n\nbody\n', 'table v1\n');
    assert.equal(first, `# R\n\nbody\n\n${START_MARKER}\n\ntable v1\n\n${END_MARKER}\n`);
    const second = withBlock(`${first}\n## After\n`, 'table v2\n');
    assert.equal(second.split(START_MARKER).length, 2, 'one block');
    assert.match(second, /table v2/);
    assert.doesNotMatch(second, /table v1/);
    assert.match(second, /## After/);
  });

  it("takes the GPU rate, with its machine, from a GPU run's results", async () => {
    const { ratesFrom } = await import('../../bench/cost-model.ts');
    const run = {
      date: '2026-12-01T00:00:00Z',
      provider: 'cuda',
      machine: { gpu: 'NVIDIA H100 80GB HBM3', cores: 16 },
      model: { id: 'b0', version: '1', input: '224x224 NCHW' },
      rows: [
        { phase: { kind: 'raw', batch: 32 }, imagesPerSecond: 4000 },
        { phase: { kind: 'raw', batch: 128 }, imagesPerSecond: 4500 },
        { phase: { kind: 'decode', pool: 16, inFlight: 16 }, imagesPerSecond: 800 },
      ],
    };
    const rates = ratesFrom(undefined, run as never);
    assert.equal(rates.b0GpuImagesPerSecond.value, 4500, 'the best raw batch');
    assert.equal(rates.b0GpuImagesPerSecond.gpu, 'NVIDIA H100 80GB HBM3');
    assert.match(rates.b0GpuImagesPerSecond.source, /2026-12-01.*batch 128/);
    assert.equal(rates.gpuHostDecodePerVcpu.value, 50);
    // A run of another model (not 224 px) says nothing about B0.
    const other = ratesFrom(undefined, { ...run, model: { ...run.model, input: '600x600 NCHW' } } as never);
    assert.equal(other.b0GpuImagesPerSecond.gpu, 'NVIDIA H200');
  });
});

describe('resolveAutoTarget', () => {
  const base = { memoryMb: 2048, batchSize: 8, rates: RATES } as const;

  it('never lists the bucket when the GPU cannot pay', async () => {
    let counted = 0;
    const countImages = async () => {
      counted++;
      return 1e9;
    };
    const none = await resolveAutoTarget({
      ...base,
      model: efficientNet('efficientnet_b7'),
      gpuInstanceType: undefined,
      countImages,
    });
    assert.equal(none.target, 'lambda');
    const b0 = await resolveAutoTarget({
      ...base,
      model: efficientNet('efficientnet_b0'),
      gpuInstanceType: 'g5.xlarge',
      countImages,
    });
    assert.equal(b0.target, 'lambda');
    assert.equal(counted, 0);
  });

  it('counts only up to the break-even count and chooses by it', async () => {
    const model = efficientNet('efficientnet_b7');
    const asked: number[] = [];
    const big = await resolveAutoTarget({
      ...base,
      model,
      gpuInstanceType: 'g6.xlarge',
      countImages: async (atMost) => {
        asked.push(atMost);
        return atMost;
      },
    });
    assert.equal(big.target, 'gpu');
    assert.equal(asked[0], big.breakEvenImages);
    assert.match(big.reason, /at least/);
    const small = await resolveAutoTarget({
      ...base,
      model,
      gpuInstanceType: 'g6.xlarge',
      countImages: async () => 10,
    });
    assert.equal(small.target, 'lambda');
    assert.match(small.reason, /10 images/);
  });
});

describe('the whole bill per million images (issue 22)', () => {
  it('prices each service from the measured footprint, on its own line', () => {
    const lines = billPerMillion(0.88, MEASURED_FOOTPRINT.upload);
    assert.deepEqual(
      lines.map((l) => l.service),
      ['compute', 'dynamodb writes', 'dynamodb reads', 's3', 'sqs', 'logs'],
    );
    const of = (s: string) => lines.find((l) => l.service === s)?.dollarsPerMillion ?? Number.NaN;
    assert.equal(of('dynamodb writes'), 3 * 0.625);
    assert.ok(Math.abs(of('s3') - (0.4 + 0.2 * 5)) < 1e-9);
    const total = lines.reduce((n, l) => n + l.dollarsPerMillion, 0);
    assert.ok(Math.abs(total - 4.445) < 0.01, `total ${total}`);
  });

  it('costs a job image more than an upload: its transaction with marker and counter', () => {
    const sum = (f: typeof MEASURED_FOOTPRINT.job) =>
      billPerMillion(0, f).reduce((n, l) => n + l.dollarsPerMillion, 0);
    assert.ok(sum(MEASURED_FOOTPRINT.job) > sum(MEASURED_FOOTPRINT.upload));
  });
});
