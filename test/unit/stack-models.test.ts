import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CODE } from '../../shared/error-codes.ts';
import { LabelerError } from '../../shared/errors.ts';
import { planStep, startJob } from '../../shared/labeling/plan-job.ts';
import {
  modelNameOfDir,
  parseStackModels,
  queueOfJob,
  resolveHostedModel,
  type StackModels,
} from '../../shared/labeling/stack-models.ts';
import { MemoryJobs, MemoryS3, memoryPlanPorts } from '../helpers/memory-ports.ts';

const bucket = 'labeler-images';

/** Two hosted models of different sizes per message; "current" is the default. */
const twoModels: StackModels = {
  default: 'current',
  models: [
    {
      name: 'current',
      id: 'fashion-efficientnet',
      version: '1.0.0',
      jobsQueueUrl: 'q://jobs/current',
      bulkQueueUrl: 'q://bulk/current',
      objectsPerMessage: 10,
    },
    {
      name: 'candidate',
      id: 'fashion-int8',
      version: '2.0.0',
      jobsQueueUrl: 'q://jobs/candidate',
      objectsPerMessage: 4,
    },
  ],
};

const refusal = (fn: () => unknown, code: string) =>
  assert.throws(fn, (error: unknown) => error instanceof LabelerError && error.code === code);

describe('stack models: which hosted model a job or query means (decision 0037)', () => {
  it('resolves a name, an id or id@version; nothing is the default', () => {
    assert.equal(resolveHostedModel(twoModels).name, 'current');
    assert.equal(resolveHostedModel(twoModels, 'candidate').name, 'candidate');
    assert.equal(resolveHostedModel(twoModels, 'fashion-int8').name, 'candidate');
    assert.equal(resolveHostedModel(twoModels, 'fashion-int8@2.0.0').name, 'candidate');
  });

  it('refuses a model the stack does not host, naming the ones it does', () => {
    assert.throws(
      () => resolveHostedModel(twoModels, 'fashion-int8@9.9.9'),
      (error: unknown) =>
        error instanceof LabelerError &&
        error.code === CODE.job.unknownModel &&
        /current \(fashion-efficientnet@1\.0\.0, default\), candidate \(fashion-int8@2\.0\.0\)/.test(
          error.message,
        ),
    );
  });

  it('routes a job to its model queue for its target; a model without GPU workers refuses gpu', () => {
    assert.equal(
      queueOfJob(twoModels, { id: 'fashion-int8', version: '2.0.0', name: 'candidate' }, 'lambda'),
      'q://jobs/candidate',
    );
    assert.equal(
      queueOfJob(twoModels, { id: 'x', version: '1', name: 'current' }, 'gpu'),
      'q://bulk/current',
    );
    refusal(
      () => queueOfJob(twoModels, { id: 'fashion-int8', version: '2.0.0', name: 'candidate' }, 'gpu'),
      CODE.job.noGpuWorker,
    );
    // A job recorded before stacks hosted several models has no name: its id and version route it.
    assert.equal(
      queueOfJob(twoModels, { id: 'fashion-int8', version: '2.0.0' }, 'lambda'),
      'q://jobs/candidate',
    );
  });

  it('parses the stack output and the environment variable, refusing what cannot route', () => {
    assert.deepEqual(parseStackModels(JSON.stringify(twoModels)), twoModels);
    refusal(() => parseStackModels('not json'), CODE.config.invalid);
    refusal(() => parseStackModels(JSON.stringify({ ...twoModels, default: 'gone' })), CODE.config.invalid);
    refusal(
      () =>
        parseStackModels(
          JSON.stringify({ default: 'a', models: [twoModels.models[0], twoModels.models[0]] }),
        ),
      CODE.config.invalid,
    );
    refusal(
      () =>
        parseStackModels(
          JSON.stringify({ default: 'current', models: [{ ...twoModels.models[0], objectsPerMessage: 0 }] }),
        ),
      CODE.config.invalid,
    );
    refusal(
      () =>
        parseStackModels(
          JSON.stringify({ default: 'Bad Name', models: [{ ...twoModels.models[0], name: 'Bad Name' }] }),
        ),
      CODE.config.invalid,
    );
  });

  it('names a model after its folder', () => {
    assert.equal(modelNameOfDir('models/fashion-efficientnet'), 'fashion-efficientnet');
    assert.equal(modelNameOfDir('/tmp/Models/EfficientNet_B3/'), 'efficientnet-b3');
  });
});

describe('planning with several models: a job labels with the model it names', () => {
  const plan = async (request: Record<string, unknown>) => {
    const s3 = new MemoryS3();
    const jobs = new MemoryJobs();
    const ports = memoryPlanPorts(s3, jobs, twoModels);
    for (let i = 0; i < 9; i++) s3.put(bucket, `data/${i}.jpg`, Buffer.from(String(i)));
    const { jobId } = await startJob(
      { bucket, prefix: 'data/', target: 'lambda', mode: 'all', ...request },
      ports,
    );
    for (let m = ports.planQueue.shift(); m; m = ports.planQueue.shift()) {
      await planStep(m.body, ports, { pageSize: 100, stepBudgetMs: 60_000, predecessorWaitMs: 0 });
    }
    return { job: await jobs.get(jobId), messages: ports.queues.lambda };
  };
  const objectsIn = (body: string) => (JSON.parse(body) as { Records: unknown[] }).Records.length;

  it('records the named model and sends its images to its queue, sized by that model', async () => {
    const { job, messages } = await plan({ model: 'candidate' });
    assert.deepEqual(job?.model, { id: 'fashion-int8', version: '2.0.0', name: 'candidate' });
    assert.deepEqual(
      messages.map((m) => m.model),
      ['candidate', 'candidate', 'candidate'],
    );
    assert.deepEqual(
      messages.map((m) => objectsIn(m.body)),
      [4, 4, 1],
      "candidate's messages carry 4 objects each",
    );
  });

  it('without a model the job labels with the default, in its message size', async () => {
    const { job, messages } = await plan({});
    assert.deepEqual(job?.model, { id: 'fashion-efficientnet', version: '1.0.0', name: 'current' });
    assert.deepEqual(
      messages.map((m) => [m.model, objectsIn(m.body)]),
      [['current', 9]],
    );
  });

  it('refuses a model the stack does not host before creating anything', async () => {
    const s3 = new MemoryS3();
    const jobs = new MemoryJobs();
    const ports = memoryPlanPorts(s3, jobs, twoModels);
    s3.put(bucket, 'data/a.jpg', Buffer.from('a'));
    await assert.rejects(
      startJob({ bucket, prefix: 'data/', target: 'lambda', mode: 'all', model: 'nope' }, ports),
      (error: unknown) => error instanceof LabelerError && error.code === CODE.job.unknownModel,
    );
    assert.equal(ports.planQueue.length, 0);
    assert.deepEqual(await jobs.list(10), []);
  });
});
