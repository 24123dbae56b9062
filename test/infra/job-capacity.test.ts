// The settings that size a 10,000,000-image job (issue 22, item 5) reach the template: the
// jobs queue's event source concurrency, the tables' and the by-label index's warm
// throughput, and the JobsCapacity output `jobs start --dry-run` reads; cdk.json's context
// (or -c) changes them.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { JOB_IMAGES, RESULTS_TABLE, TABLE_WARM_THROUGHPUT } from '../../shared/settings.ts';
import { resourcesOf, synthesizeLabeler } from './support.ts';

const idOf = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);

const defaults = synthesizeLabeler({ gpuWorkers: false });
const custom = synthesizeLabeler({
  gpuWorkers: false,
  jobsMaxConcurrency: '300',
  resultsTableWarmWrites: 25000,
  jobsTableWarmWrites: '8000',
});
after(() => {
  defaults.cleanup();
  custom.cleanup();
});

function capacityOf(synth: typeof defaults) {
  const { stack, template } = synth;
  const mappings = resourcesOf(template, 'AWS::Lambda::EventSourceMapping');
  const jobsQueueId = idOf(stack.queues.jobs.queue);
  const jobsMapping = Object.values(mappings).find(
    (m) =>
      JSON.stringify(m.Properties.EventSourceArn) === JSON.stringify({ 'Fn::GetAtt': [jobsQueueId, 'Arn'] }),
  );
  const tables = resourcesOf(template, 'AWS::DynamoDB::Table');
  const results = tables[idOf(stack.storage.resultsTable)]?.Properties;
  const jobs = tables[idOf(stack.storage.jobsTable)]?.Properties;
  const index = (
    (results?.GlobalSecondaryIndexes ?? []) as { IndexName: string; WarmThroughput?: unknown }[]
  ).find((i) => i.IndexName === RESULTS_TABLE.labelIndex.name);
  const output = template.toJSON().Outputs?.JobsCapacity?.Value;
  return {
    concurrency: (jobsMapping?.Properties.ScalingConfig as { MaximumConcurrency?: number })
      ?.MaximumConcurrency,
    results: results?.WarmThroughput,
    index: index?.WarmThroughput,
    jobs: jobs?.WarmThroughput,
    output: typeof output === 'string' ? JSON.parse(output) : output,
  };
}

const warm = (writes: number) => ({
  ReadUnitsPerSecond: TABLE_WARM_THROUGHPUT.readUnitsPerSecond,
  WriteUnitsPerSecond: writes,
});

describe('job capacity settings in the template', () => {
  it('defaults: the settings sized for ten million images an hour', () => {
    const c = capacityOf(defaults);
    assert.equal(c.concurrency, JOB_IMAGES.maxConcurrency);
    assert.deepEqual(c.results, warm(TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond));
    assert.deepEqual(c.index, warm(TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond));
    assert.deepEqual(c.jobs, warm(TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond));
    assert.deepEqual(c.output, {
      jobsMaxConcurrency: JOB_IMAGES.maxConcurrency,
      resultsWarmWriteUnits: TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond,
      jobsWarmWriteUnits: TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond,
    });
  });

  it('context values (numbers in cdk.json, strings from -c) replace them everywhere', () => {
    const c = capacityOf(custom);
    assert.equal(c.concurrency, 300);
    assert.deepEqual(c.results, warm(25000));
    assert.deepEqual(c.index, warm(25000));
    assert.deepEqual(c.jobs, warm(8000));
    assert.deepEqual(c.output, {
      jobsMaxConcurrency: 300,
      resultsWarmWriteUnits: 25000,
      jobsWarmWriteUnits: 8000,
    });
  });

  it('refuses a concurrency the event source cannot have', () => {
    assert.throws(
      () => synthesizeLabeler({ gpuWorkers: false, jobsMaxConcurrency: 5000 }),
      /context "jobsMaxConcurrency" must be a whole number from 2 to 1000, got 5000/,
    );
  });
});
