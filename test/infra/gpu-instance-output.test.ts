// The GpuInstanceType output `jobs start --target auto` reads (cli/auto-target.ts): there
// with GPU workers, naming their instance type; absent without them.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Template } from 'aws-cdk-lib/assertions';
import { gpuTaskSize, gpuTaskSizeForAll } from '../../infra/constructs/gpu-workers.ts';
import { instanceTypesContext } from '../../infra/create-app.ts';
import { resourcesOf, synthesizeLabeler } from './support.ts';

describe('stack output GpuInstanceType', () => {
  const withGpu = synthesizeLabeler({ gpuInstanceType: 'g6.2xlarge' });
  const without = synthesizeLabeler({ gpuWorkers: false });
  const mixed = synthesizeLabeler({ gpuInstanceTypes: 'g6.2xlarge, g5.xlarge', gpuSpot: 'true' });
  after(() => {
    withGpu.cleanup();
    without.cleanup();
    mixed.cleanup();
  });

  it('names the GPU workers’ instance type', () => {
    const outputs = withGpu.template.findOutputs('GpuInstanceType');
    assert.equal(outputs.GpuInstanceType?.Value, 'g6.2xlarge');
  });

  it('is absent on a stack without GPU workers', () => {
    assert.deepEqual(without.template.findOutputs('GpuInstanceType'), {});
    assert.ok(Object.keys(without.template.findOutputs('BulkQueueUrl')).length === 1, 'other outputs stay');
  });

  it('names the first (preferred) type when several are allowed', () => {
    assert.equal(mixed.template.findOutputs('GpuInstanceType').GpuInstanceType?.Value, 'g6.2xlarge');
  });
});

describe('GPU instance types and Spot', () => {
  const onDemand = synthesizeLabeler({ gpuInstanceType: 'g6.2xlarge' });
  const spot = synthesizeLabeler({ gpuInstanceTypes: '["g6.2xlarge","g5.xlarge"]', gpuSpot: true });
  after(() => {
    onDemand.cleanup();
    spot.cleanup();
  });
  const asg = (t: Template) =>
    Object.values(resourcesOf(t, 'AWS::AutoScaling::AutoScalingGroup'))[0]?.Properties ?? {};
  const task = (t: Template): Record<string, unknown> => {
    const [definition] = Object.values(resourcesOf(t, 'AWS::ECS::TaskDefinition'));
    assert.ok(definition);
    return (definition.Properties.ContainerDefinitions as Record<string, unknown>[])[0] ?? {};
  };

  it('keeps gpuInstanceType working as a one-type list, on demand', () => {
    const policy = asg(onDemand.template).MixedInstancesPolicy as Record<string, Record<string, unknown>>;
    assert.deepEqual((policy.LaunchTemplate as { Overrides: unknown }).Overrides, [
      { InstanceType: 'g6.2xlarge' },
    ]);
    assert.equal(policy.InstancesDistribution?.OnDemandPercentageAboveBaseCapacity, 100);
    assert.equal(policy.InstancesDistribution?.OnDemandAllocationStrategy, 'prioritized');
    assert.equal(task(onDemand.template).Cpu, gpuTaskSize('g6.2xlarge').cpu);
  });

  it('launches any listed type on Spot, price-capacity-optimized, with the task sized for the smallest', () => {
    const props = asg(spot.template);
    const policy = props.MixedInstancesPolicy as Record<string, Record<string, unknown>>;
    assert.deepEqual((policy.LaunchTemplate as { Overrides: unknown }).Overrides, [
      { InstanceType: 'g6.2xlarge' },
      { InstanceType: 'g5.xlarge' },
    ]);
    assert.deepEqual(policy.InstancesDistribution, {
      OnDemandBaseCapacity: 0,
      OnDemandPercentageAboveBaseCapacity: 0,
      SpotAllocationStrategy: 'price-capacity-optimized',
    });
    assert.equal(props.CapacityRebalance, true);
    // g5.xlarge (4 vCPUs, 16 GiB) is the smaller: the task must fit it.
    assert.equal(task(spot.template).Cpu, gpuTaskSize('g5.xlarge').cpu);
    assert.equal(task(spot.template).MemoryReservation, gpuTaskSize('g5.xlarge').memoryReservationMiB);
    const userData = JSON.stringify(
      Object.values(resourcesOf(spot.template, 'AWS::EC2::LaunchTemplate'))[0]?.Properties,
    );
    assert.match(userData, /ECS_ENABLE_SPOT_INSTANCE_DRAINING=true/);
    assert.doesNotMatch(
      JSON.stringify(
        Object.values(resourcesOf(onDemand.template, 'AWS::EC2::LaunchTemplate'))[0]?.Properties,
      ),
      /SPOT/,
    );
  });

  it('refuses a type it cannot size, and an empty list', () => {
    assert.throws(() => gpuTaskSizeForAll(['g5.xlarge', 'p5.48xlarge']), /no known size/);
    assert.throws(() => gpuTaskSizeForAll([]), /at least one/);
    assert.throws(() => instanceTypesContext(''), /must be a list of names/);
    assert.deepEqual(instanceTypesContext('g6.xlarge,g5.xlarge'), ['g6.xlarge', 'g5.xlarge']);
  });
});
