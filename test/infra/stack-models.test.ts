// A stack hosting several models (issue 24, item 1; decision 0038): each model its own image,
// classify function, queues, batch sizes and GPU service; uploads go to the default only; a
// one-model stack keeps every resource it had, so an upgrade replaces nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import {
  checkStackModelsFit,
  modelsContext,
  resolveModels,
  stackModelsBytes,
} from '../../infra/hosted-models.ts';
import { DEFAULT_MODEL_DIR } from '../../infra/image.ts';
import { CODE } from '../../shared/error-codes.ts';
import { LabelerError } from '../../shared/errors.ts';
import { parseStackModels } from '../../shared/labeling/stack-models.ts';
import { ENV } from '../../shared/settings.ts';
import {
  makeSecondModel,
  referencedId,
  resourcesOf,
  type Synthesized,
  statementsOfRole,
  synthesizeLabeler,
} from './support.ts';

const idOf = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);

const SECOND_COST_MS = 4000;
const secondModel = makeSecondModel(SECOND_COST_MS);
const SECOND_DIR = secondModel.dir;

const FIRST = 'fashion-efficientnet';
const TWO_MODELS = {
  models: [DEFAULT_MODEL_DIR, { name: 'second', dir: SECOND_DIR }],
  jobsMaxConcurrency: 50,
};
const one = synthesizeLabeler();
const two = synthesizeLabeler(TWO_MODELS);
const switched = synthesizeLabeler({ ...TWO_MODELS, defaultModel: 'second' });
after(() => {
  for (const s of [one, two, switched]) s.cleanup();
  secondModel.cleanup();
});

/** The one-model stack as it was before stacks hosted several models (resources and queue names). */
const BEFORE = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures', 'one-model-stack.json'), 'utf8'),
) as {
  resources: Record<string, string>;
  queueNames: Record<string, string>;
};

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;
const resources = (s: Synthesized) => s.template.toJSON().Resources as Resources;

/** A Fn::Join of strings and references as one string, each reference written `<LogicalId>`. */
function joined(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  assert.ok(join, `a Fn::Join: ${JSON.stringify(value)}`);
  return join[1].map((part) => (typeof part === 'string' ? part : `<${referencedId(part)}>`)).join(join[0]);
}

function envOf(s: Synthesized, fn: IConstruct): Record<string, unknown> {
  const p = resourcesOf(s.template, 'AWS::Lambda::Function')[idOf(fn)]?.Properties ?? {};
  return (p.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** The Docker build of an image asset a template names by its tag (the asset hash). */
function buildOf(s: Synthesized, imageUri: unknown): { MODEL_DIR?: string; target?: string } {
  const tag = JSON.stringify(imageUri).match(/:([0-9a-f]{64})"/)?.[1];
  assert.ok(tag, `an asset image: ${JSON.stringify(imageUri)}`);
  const manifest = JSON.parse(
    readFileSync(join(s.assembly.directory, `${s.stack.artifactId}.assets.json`), 'utf8'),
  ) as {
    dockerImages: Record<
      string,
      { source: { dockerBuildArgs?: Record<string, string>; dockerBuildTarget?: string } }
    >;
  };
  const source = manifest.dockerImages[tag]?.source;
  assert.ok(source, `asset ${tag} is in the asset manifest`);
  return { MODEL_DIR: source.dockerBuildArgs?.MODEL_DIR, target: source.dockerBuildTarget };
}

function mappingsOf(s: Synthesized) {
  return Object.entries(resourcesOf(s.template, 'AWS::Lambda::EventSourceMapping')).map(([id, m]) => ({
    id,
    queue: referencedId(m.Properties.EventSourceArn),
    fn: referencedId(m.Properties.FunctionName),
    batchSize: m.Properties.BatchSize,
    maxConcurrency: (m.Properties.ScalingConfig as { MaximumConcurrency?: number } | undefined)
      ?.MaximumConcurrency,
  }));
}

function hosted(s: Synthesized, name: string) {
  const found = s.stack.hostedModels.find((h) => h.model.name === name);
  assert.ok(found, `the stack hosts ${name}`);
  return found;
}

describe('a one-model stack upgrades in place', () => {
  it('keeps every resource (logical id and type) and queue name it had before several models', () => {
    const now = resources(one);
    const lost = Object.entries(BEFORE.resources).filter(([id, type]) => now[id]?.Type !== type);
    assert.deepEqual(lost, []);
    for (const [id, name] of Object.entries(BEFORE.queueNames))
      assert.equal(now[id]?.Properties?.QueueName, name, id);
  });

  it('`models` with the one bundled model (a -c JSON list) synthesizes what `modelDir` does', () => {
    const listed = synthesizeLabeler({ models: `["${DEFAULT_MODEL_DIR}"]` });
    try {
      assert.deepEqual(listed.template.toJSON(), one.template.toJSON());
    } finally {
      listed.cleanup();
    }
  });

  it('adding a model keeps every resource and queue name of the one-model stack', () => {
    const now = resources(two);
    const lost = Object.entries(BEFORE.resources).filter(([id, type]) => now[id]?.Type !== type);
    assert.deepEqual(lost, []);
    for (const [id, name] of Object.entries(BEFORE.queueNames))
      assert.equal(now[id]?.Properties?.QueueName, name, id);
  });
});

describe('two models: each its own labeling workers', () => {
  const first = hosted(two, FIRST);
  const second = hosted(two, 'second');
  const functions = resourcesOf(two.template, 'AWS::Lambda::Function');

  it('two classify functions, each on its own image with its model folder baked in', () => {
    const images = [first, second].map(
      (h) =>
        (functions[idOf(h.classify.function)]?.Properties?.Code as { ImageUri: unknown } | undefined)
          ?.ImageUri,
    );
    assert.notDeepEqual(images[0], images[1]);
    assert.deepEqual(
      images.map((uri) => buildOf(two, uri)),
      [
        { MODEL_DIR: DEFAULT_MODEL_DIR, target: 'lambda' },
        { MODEL_DIR: SECOND_DIR, target: 'lambda' },
      ],
    );
    assert.equal(
      idOf(first.classify.function),
      idOf(two.stack.classify.function),
      'the first keeps Classify',
    );
    assert.match(second.classify.node.id, /^Classify-second$/);
  });

  it('each jobs queue feeds its own model, batch size from that model, the configured concurrency', () => {
    const mappings = mappingsOf(two);
    for (const h of [first, second]) {
      const jobs = mappings.filter((m) => m.queue === idOf(h.queues.jobs.queue));
      assert.equal(jobs.length, 1, `${h.model.name}: one event source on its jobs queue`);
      assert.equal(jobs[0]?.fn, idOf(h.classify.function));
      assert.equal(jobs[0]?.batchSize, h.model.sizing.jobBatchSize);
      assert.equal(jobs[0]?.maxConcurrency, 50);
    }
    // The second model costs 4 s an image: one message per invocation, fewer objects per message.
    assert.equal(second.model.sizing.jobBatchSize, 1);
    assert.notEqual(first.model.sizing.jobBatchSize, second.model.sizing.jobBatchSize);
    assert.notEqual(first.model.sizing.objectsPerMessage, second.model.sizing.objectsPerMessage);
  });

  it("the second model's queues carry its name; the first keeps a one-model stack's", () => {
    const names = (queue: IConstruct) => resources(two)[idOf(queue)]?.Properties?.QueueName;
    assert.ok(second.queues.bulk);
    assert.deepEqual(
      [
        second.queues.jobs.queue,
        second.queues.jobs.deadLetterQueue,
        second.queues.bulk.queue,
        second.queues.bulk.deadLetterQueue,
      ].map(names),
      [
        'Labeler-labeler-second-jobs',
        'Labeler-labeler-second-jobs-dlq',
        'Labeler-labeler-second-bulk',
        'Labeler-labeler-second-bulk-dlq',
      ],
    );
    assert.equal(names(first.queues.jobs.queue), 'Labeler-labeler-jobs-queue');
  });

  it('uploads go to the default model only (the first, unless defaultModel says otherwise)', () => {
    const incoming = idOf(two.stack.queues.incoming.queue);
    const uploads = mappingsOf(two).filter((m) => m.queue === incoming);
    assert.deepEqual(
      uploads.map((m) => m.fn),
      [idOf(first.classify.function)],
    );
    assert.equal(uploads[0]?.batchSize, first.model.sizing.uploadBatchSize);
    assert.equal(second.classify.eventSource, undefined);
  });

  it('plan-job and query are told both models, their queues and sizes (ENV.stackModels)', () => {
    for (const fn of [two.stack.jobScheduler.function, two.stack.queryApi.function]) {
      const models = parseStackModels(joined(envOf(two, fn)[ENV.stackModels]));
      assert.equal(models.default, FIRST);
      assert.deepEqual(
        models.models.map((m) => [
          m.name,
          m.id,
          m.version,
          m.jobsQueueUrl,
          m.bulkQueueUrl,
          m.objectsPerMessage,
        ]),
        [first, second].map((h) => [
          h.model.name,
          h.model.manifest.id,
          h.model.manifest.version,
          `<${idOf(h.queues.jobs.queue)}>`,
          `<${idOf(h.queues.bulk?.queue as IConstruct)}>`,
          h.model.sizing.objectsPerMessage,
        ]),
      );
      assert.deepEqual(models.models[1]?.objectsPerMessage, 7);
    }
    const planEnv = envOf(two, two.stack.jobScheduler.function);
    assert.equal(
      planEnv.JOBS_QUEUE_URL,
      undefined,
      'the queues are in the models, not variables of their own',
    );
    assert.equal(planEnv[ENV.bulkQueueUrl], undefined);
  });

  it("the estimate of the variable's size is what it takes deployed in the longest-named region", () => {
    const value = joined(envOf(two, two.stack.jobScheduler.function)[ENV.stackModels]);
    const deployed = value.replace(/<(\w+)>/g, (_, id: string) => {
      const name = resources(two)[id]?.Properties?.QueueName;
      return `https://sqs.ap-southeast-4.amazonaws.com/123456789012/${name}`;
    });
    assert.equal(
      stackModelsBytes(
        two.stack.hostedModels.map((h) => h.model),
        'Labeler',
        true,
      ),
      // The estimate names every model's queues as the second model's are named.
      deployed.length +
        ('labeler-fashion-efficientnet-jobs'.length - 'labeler-jobs-queue'.length) +
        ('labeler-fashion-efficientnet-bulk'.length - 'labeler-bulk'.length),
    );
  });

  it('plan-job may send to every model’s jobs and bulk queue and the plan queue, nothing else', () => {
    const role = referencedId(functions[idOf(two.stack.jobScheduler.function)]?.Properties.Role);
    assert.ok(role);
    const sent = statementsOfRole(two.template, role)
      .filter((s) => s.Action.includes('sqs:SendMessage'))
      .flatMap((s) => s.Resource.map(referencedId))
      .sort();
    const queues = [first, second].flatMap((h) => [h.queues.jobs.queue, h.queues.bulk?.queue as IConstruct]);
    assert.deepEqual(sent, [...queues, two.stack.queues.plan.queue].map(idOf).sort());
  });

  it('the Models output lists both with their dead-letter queues', () => {
    const output = two.template.toJSON().Outputs?.Models?.Value;
    const models = parseStackModels(joined(output), 'the Models output');
    assert.equal(models.default, FIRST);
    assert.deepEqual(
      models.models.map((m) => [m.name, m.jobsDlqUrl, m.bulkDlqUrl]),
      [first, second].map((h) => [
        h.model.name,
        `<${idOf(h.queues.jobs.deadLetterQueue)}>`,
        `<${idOf(h.queues.bulk?.deadLetterQueue as IConstruct)}>`,
      ]),
    );
    // Older CLIs read the first model's queues from the outputs they always had.
    assert.deepEqual(two.template.toJSON().Outputs?.JobsQueueUrl?.Value, {
      Ref: idOf(first.queues.jobs.queue),
    });
  });

  it('GPU workers: a task definition and service per model on one cluster, instance group and capacity provider', () => {
    const gpu = two.stack.gpuWorkers;
    assert.ok(gpu);
    assert.equal(gpu.services.length, 2);
    assert.equal(Object.keys(resourcesOf(two.template, 'AWS::ECS::Cluster')).length, 1);
    assert.equal(Object.keys(resourcesOf(two.template, 'AWS::AutoScaling::AutoScalingGroup')).length, 1);
    assert.equal(Object.keys(resourcesOf(two.template, 'AWS::ECS::CapacityProvider')).length, 1);
    const tasks = resourcesOf(two.template, 'AWS::ECS::TaskDefinition');
    const services = resourcesOf(two.template, 'AWS::ECS::Service');
    const builds = gpu.services.map((s, i) => {
      const [container] = (tasks[idOf(s.taskDefinition)]?.Properties?.ContainerDefinitions ?? []) as {
        Image: unknown;
        Environment: { Name: string; Value: unknown }[];
      }[];
      assert.ok(container);
      const env = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
      const queue = [first, second][i]?.queues.bulk?.queue as IConstruct;
      assert.deepEqual(env[ENV.bulkQueueUrl], { Ref: idOf(queue) }, `${s.name} drains its own queue`);
      const service = services[idOf(s.service)]?.Properties;
      assert.deepEqual(service?.Cluster, { Ref: idOf(gpu.cluster) });
      assert.deepEqual(service?.TaskDefinition, { Ref: idOf(s.taskDefinition) });
      return buildOf(two, container.Image).MODEL_DIR;
    });
    assert.deepEqual(builds, [DEFAULT_MODEL_DIR, SECOND_DIR]);
    assert.equal(
      idOf(gpu.services[0]?.service as IConstruct),
      idOf(one.stack.gpuWorkers?.service as IConstruct),
    );
  });

  it("each GPU service scales on its own queue's backlog", () => {
    const gpu = two.stack.gpuWorkers;
    assert.ok(gpu);
    const targets = resourcesOf(two.template, 'AWS::ApplicationAutoScaling::ScalableTarget');
    const policies = resourcesOf(two.template, 'AWS::ApplicationAutoScaling::ScalingPolicy');
    const alarms = resourcesOf(two.template, 'AWS::CloudWatch::Alarm');
    gpu.services.forEach((s, i) => {
      const serviceName = { 'Fn::GetAtt': [idOf(s.service), 'Name'] };
      const target = Object.keys(targets).find((id) =>
        JSON.stringify(targets[id]?.Properties.ResourceId).includes(JSON.stringify(serviceName)),
      );
      assert.ok(target, `${s.name} has a scalable target`);
      const scaling = Object.keys(policies).filter(
        (id) => referencedId(policies[id]?.Properties.ScalingTargetId) === target,
      );
      assert.ok(scaling.length > 0);
      const queue = idOf([first, second][i]?.queues.bulk?.queue as IConstruct);
      const triggers = Object.values(alarms).filter((a) =>
        (a.Properties.AlarmActions as unknown[] | undefined)?.some((x) =>
          scaling.includes(referencedId(x) ?? ''),
        ),
      );
      assert.ok(triggers.length > 0, `${s.name}'s scaling has alarms`);
      for (const alarm of triggers) {
        const text = JSON.stringify(alarm.Properties.Metrics);
        assert.ok(text.includes(`"${queue}"`), `${s.name} follows its own queue`);
        const other = idOf([first, second][1 - i]?.queues.bulk?.queue as IConstruct);
        assert.ok(!text.includes(`"${other}"`), `${s.name} ignores the other model's queue`);
      }
    });
  });

  it("every model's function and queues get the alarms the first model's get", () => {
    const names = Object.values(resourcesOf(two.template, 'AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties.AlarmName)
      .filter((n): n is string => typeof n === 'string');
    for (const alarm of [
      'JobsDlqNotEmpty',
      'JobsNoProgress',
      'BulkDlqNotEmpty',
      'BulkFallingBehind',
      'BulkNoProgress',
      'ClassifyErrors',
      'ClassifyThrottles',
      'GpuTasksBelowDesired',
    ]) {
      assert.ok(names.includes(`Labeler-${alarm}`), alarm);
      assert.ok(names.includes(`Labeler-second-${alarm}`), `second-${alarm}`);
    }
    const oneCount = Object.keys(resourcesOf(one.template, 'AWS::CloudWatch::Alarm')).length;
    const twoCount = Object.keys(resourcesOf(two.template, 'AWS::CloudWatch::Alarm')).length;
    // The 8 above, plus the second service's two step-scaling alarms (out and in).
    assert.equal(twoCount - oneCount, 8 + 2);
  });

  it('the failed-images share counts every labeling service', () => {
    const share = Object.values(resourcesOf(two.template, 'AWS::CloudWatch::Alarm')).find(
      (a) => a.Properties.AlarmName === 'Labeler-ImagesFailedShare',
    );
    const text = JSON.stringify(share?.Properties.Metrics);
    for (const service of [
      'labeler-classify',
      'labeler-classify-second',
      'labeler-gpu-worker',
      'labeler-gpu-worker-second',
    ])
      assert.ok(text.includes(`"${service}"`), service);
  });
});

describe('two models without GPU workers', () => {
  it('a further model gets a jobs queue only, and no model names a bulk queue', () => {
    const serverless = synthesizeLabeler({ ...TWO_MODELS, gpuWorkers: false });
    try {
      const second = hosted(serverless, 'second');
      assert.equal(second.queues.bulk, undefined);
      const names = Object.values(resourcesOf(serverless.template, 'AWS::SQS::Queue')).map(
        (q) => q.Properties.QueueName,
      );
      assert.ok(names.includes('Labeler-labeler-second-jobs'));
      assert.ok(!names.some((n) => String(n).includes('second-bulk')), names.join(', '));
      const models = parseStackModels(joined(serverless.template.toJSON().Outputs?.Models?.Value));
      assert.deepEqual(
        models.models.map((m) => [m.name, m.bulkQueueUrl, m.bulkDlqUrl]),
        [
          [FIRST, undefined, undefined],
          ['second', undefined, undefined],
        ],
      );
    } finally {
      serverless.cleanup();
    }
  });
});

describe('switching the default model', () => {
  const incoming = idOf(switched.stack.queues.incoming.queue);

  it('moves the upload event source to the new default', () => {
    const uploads = mappingsOf(switched).filter((m) => m.queue === incoming);
    assert.deepEqual(
      uploads.map((m) => m.fn),
      [idOf(hosted(switched, 'second').classify.function)],
    );
    assert.equal(uploads[0]?.batchSize, hosted(switched, 'second').model.sizing.uploadBatchSize);
    assert.equal(
      parseStackModels(joined(switched.template.toJSON().Outputs?.Models?.Value)).default,
      'second',
    );
  });

  it('changes nothing else but who may consume uploads and the default named to plan-job and query', () => {
    const uploadMapping = (r: Resources) =>
      Object.keys(r).filter(
        (id) =>
          r[id]?.Type === 'AWS::Lambda::EventSourceMapping' &&
          referencedId(r[id]?.Properties?.EventSourceArn) === incoming,
      );
    const told = [switched.stack.jobScheduler.function, switched.stack.queryApi.function].map(idOf);
    // The upload event source brings its grant on the incoming queue with it.
    const withoutUploads = (r: Resources): Resources =>
      Object.fromEntries(
        Object.entries(r)
          .filter(([id]) => !uploadMapping(r).includes(id) && !told.includes(id))
          .map(([id, resource]) => {
            if (resource.Type !== 'AWS::IAM::Policy') return [id, resource];
            // Policies are minimized (statements merged): compare what they allow, pair by pair.
            const { PolicyDocument, ...rest } = resource.Properties as {
              PolicyDocument: { Statement: { Effect: string; Action: unknown; Resource: unknown }[] };
            };
            const allowed = PolicyDocument.Statement.flatMap((st) =>
              [st.Action]
                .flat()
                .flatMap((action) =>
                  [st.Resource].flat().map((r) => `${st.Effect} ${action} ${JSON.stringify(r)}`),
                ),
            )
              .filter((pair) => !pair.includes(`"${incoming}"`))
              .sort();
            return [id, { Type: resource.Type, Properties: { ...rest, allowed } }];
          }),
      );
    const before = resources(two);
    const now = resources(switched);
    assert.deepEqual(withoutUploads(now), withoutUploads(before));
    assert.equal(uploadMapping(before).length, 1);
    assert.equal(uploadMapping(now).length, 1);
    assert.notEqual(uploadMapping(before)[0], uploadMapping(now)[0]);
  });
});

describe('bad model settings stop synthesis, naming the setting', () => {
  const refused = (context: Parameters<typeof modelsContext>[0], pattern: RegExp) =>
    assert.throws(
      () => modelsContext(context),
      (error: unknown) =>
        error instanceof LabelerError && error.code === CODE.config.invalid && pattern.test(error.message),
    );

  it('both models and modelDir', () =>
    refused({ models: [DEFAULT_MODEL_DIR], modelDir: DEFAULT_MODEL_DIR }, /"models" and "modelDir"/));
  it('a name twice', () =>
    refused({ models: [DEFAULT_MODEL_DIR, { name: FIRST, dir: SECOND_DIR }] }, /"models".*twice/));
  it('a defaultModel not among the models', () =>
    refused({ models: [DEFAULT_MODEL_DIR], defaultModel: 'other' }, /"defaultModel".*fashion-efficientnet/));
  it('a folder not directly under models/', () => {
    refused({ models: ['models/a/b'] }, /"models", entry 1.*directly under models\//);
    refused({ models: ['../elsewhere'] }, /directly under models\//);
    refused({ modelDir: 'elsewhere/x' }, /"modelDir".*directly under models\//);
  });
  it('a name that cannot be part of a queue name', () =>
    refused({ models: [{ name: 'Not_Ok', dir: DEFAULT_MODEL_DIR }] }, /"models", entry 1.*Not_Ok/));
  it('an entry that is neither a folder nor {name, dir}', () => {
    refused({ models: [42] }, /"models", entry 1/);
    refused({ models: [{ name: 'a', dir: DEFAULT_MODEL_DIR, extra: 1 }] }, /unknown field "extra"/);
    refused({ models: '[not json' }, /"models" is not JSON/);
    refused({ models: [] }, /"models" must be a list/);
  });
  it('an unreadable manifest, at synthesis', () =>
    assert.throws(
      () => synthesizeLabeler({ models: ['models/no-such-model'], gpuWorkers: false }),
      (error: unknown) =>
        error instanceof LabelerError &&
        /"models": model "no-such-model" \(models\/no-such-model\) has no readable manifest/.test(
          error.message,
        ),
    ));

  it("more models than the functions' 4 KB environment can name", () => {
    const named = (n: number, length: number) =>
      resolveModels({
        models: Array.from({ length: n }, (_, i) => ({
          name: `m${i}`.padEnd(length, 'x'),
          dir: DEFAULT_MODEL_DIR,
        })),
        defaultModel: 'm0'.padEnd(length, 'x'),
      });
    assert.doesNotThrow(() => checkStackModelsFit(named(8, 20), 'Labeler', true));
    assert.throws(
      () => checkStackModelsFit(named(10, 40), 'Labeler', true),
      (error: unknown) =>
        error instanceof LabelerError && /"models": 10 models take about \d+ bytes/.test(error.message),
    );
  });

  it('reads -c lists: folders separated by commas, or JSON with {name, dir}', () => {
    assert.deepEqual(modelsContext({ models: `${DEFAULT_MODEL_DIR}, ${SECOND_DIR}/` }), {
      models: [
        { name: FIRST, dir: DEFAULT_MODEL_DIR },
        { name: `infra-test-${process.pid}-${SECOND_COST_MS}`, dir: SECOND_DIR },
      ],
      defaultModel: FIRST,
    });
    assert.deepEqual(
      modelsContext({
        models: `["${DEFAULT_MODEL_DIR}", {"name": "b", "dir": "${SECOND_DIR}"}]`,
        defaultModel: 'b',
      }),
      {
        models: [
          { name: FIRST, dir: DEFAULT_MODEL_DIR },
          { name: 'b', dir: SECOND_DIR },
        ],
        defaultModel: 'b',
      },
    );
    assert.deepEqual(modelsContext({}), {
      models: [{ name: FIRST, dir: DEFAULT_MODEL_DIR }],
      defaultModel: FIRST,
    });
  });
});
