// The GpuInstanceType output `jobs start --target auto` reads (cli/auto-target.ts): there
// with GPU workers, naming their instance type; absent without them.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { synthesizeLabeler } from './support.ts';

describe('stack output GpuInstanceType', () => {
  const withGpu = synthesizeLabeler({ gpuInstanceType: 'g6.2xlarge' });
  const without = synthesizeLabeler({ gpuWorkers: false });
  after(() => {
    withGpu.cleanup();
    without.cleanup();
  });

  it('names the GPU workers’ instance type', () => {
    const outputs = withGpu.template.findOutputs('GpuInstanceType');
    assert.equal(outputs.GpuInstanceType?.Value, 'g6.2xlarge');
  });

  it('is absent on a stack without GPU workers', () => {
    assert.deepEqual(without.template.findOutputs('GpuInstanceType'), {});
    assert.ok(Object.keys(without.template.findOutputs('BulkQueueUrl')).length === 1, 'other outputs stay');
  });
});
