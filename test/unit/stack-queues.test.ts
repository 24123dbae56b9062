import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../cli/args.ts';
import type { StackResources } from '../../cli/stack.ts';
import { chooseDlq, queueName, stackQueues } from '../../cli/stack-queues.ts';
import { renderStatus, type StackStatus } from '../../cli/status-command.ts';
import { LabelerError } from '../../shared/errors.ts';
import type { HostedModel } from '../../shared/labeling/stack-models.ts';

const url = (name: string) => `http://127.0.0.1:1/000000000000/${name}`;
const model = (name: string, id: string, suffix: string): HostedModel => ({
  name,
  id,
  version: '1',
  jobsQueueUrl: url(`jobs${suffix}`),
  jobsDlqUrl: url(`jobs-dlq${suffix}`),
  bulkQueueUrl: url(`bulk${suffix}`),
  bulkDlqUrl: url(`bulk-dlq${suffix}`),
  objectsPerMessage: 10,
});
const resources = (models: HostedModel[]): StackResources => ({
  imagesBucket: 'images',
  resultsBucket: 'results',
  resultsTable: 'results',
  jobsTable: 'jobs',
  queueUrls: {
    incoming: url('incoming'),
    incomingDlq: url('incoming-dlq'),
    jobs: url('jobs'),
    jobsDlq: url('jobs-dlq'),
    bulk: url('bulk'),
    bulkDlq: url('bulk-dlq'),
    plan: url('plan'),
    planDlq: url('plan-dlq'),
  },
  readableBuckets: ['images'],
  models: { default: models[0]?.name as string, models },
});
const one = resources([model('fashion', 'fashion-efficientnet', '')]);
const two = resources([
  model('fashion', 'fashion-efficientnet', ''),
  model('candidate', 'cand', '-candidate'),
]);

const statusOf = (r: StackResources): StackStatus => ({
  stack: 'local',
  kind: 'local',
  at: '2026-12-06T08:00:00.000Z',
  queues: Object.fromEntries(
    stackQueues(r).map((q) => [
      q.role,
      { ok: true, value: { visible: 1, inFlight: 2, delayed: 0, oldestMessageAgeSeconds: null } },
    ]),
  ),
  results: { ok: false, error: { code: 'x/y', message: 'not read' } },
  jobs: { ok: true, value: [] },
});

describe('the queues status and dlq show: every hosted model’s, by name where there are several', () => {
  it('a one-model stack keeps its roles, names and table as before', () => {
    assert.deepEqual(
      stackQueues(one).map((q) => [q.role, q.name]),
      [
        ['incoming', 'incoming'],
        ['incomingDlq', 'incoming DLQ'],
        ['jobs', 'jobs'],
        ['jobsDlq', 'jobs DLQ'],
        ['bulk', 'bulk'],
        ['bulkDlq', 'bulk DLQ'],
        ['plan', 'plan'],
        ['planDlq', 'plan DLQ'],
      ],
    );
    const lines = renderStatus(statusOf(one)).split('\n');
    assert.equal(lines[2], 'queue            waiting  in flight  delayed');
    assert.equal(lines[7], 'bulk                   1          2        0');
  });

  it('several models: each one’s jobs and bulk queues and DLQs carry its name, in a wider column', () => {
    const shown = stackQueues(two);
    assert.deepEqual(
      shown.filter((q) => q.model?.name === 'candidate').map((q) => [q.role, q.name, q.url]),
      [
        ['jobs:candidate', 'jobs:candidate', url('jobs-candidate')],
        ['jobsDlq:candidate', 'jobs:candidate DLQ', url('jobs-dlq-candidate')],
        ['bulk:candidate', 'bulk:candidate', url('bulk-candidate')],
        ['bulkDlq:candidate', 'bulk:candidate DLQ', url('bulk-dlq-candidate')],
      ],
    );
    assert.equal(shown.length, 4 + 2 * 4);
    const lines = renderStatus(statusOf(two)).split('\n');
    assert.equal(lines[2], 'queue               waiting  in flight  delayed');
    assert.ok(lines.includes('jobs:candidate DLQ        1          2        0'), lines.join('\n'));
    assert.equal(queueName('bulkDlq:x'), 'bulk:x DLQ');
  });

  it('dlq --queue: jobs:<model> by name or id, a bare jobs only where the stack hosts one model', () => {
    assert.deepEqual(chooseDlq(one, 'jobs'), {
      role: 'jobs',
      dlqUrl: url('jobs-dlq'),
      sourceUrl: url('jobs'),
      model: one.models.models[0],
    });
    assert.deepEqual(chooseDlq(one, 'incoming'), {
      role: 'incoming',
      dlqUrl: url('incoming-dlq'),
      sourceUrl: url('incoming'),
    });
    const byId = chooseDlq(two, 'bulk:cand@1');
    assert.deepEqual(
      [byId.role, byId.dlqUrl, byId.sourceUrl],
      ['bulk:candidate', url('bulk-dlq-candidate'), url('bulk-candidate')],
    );
    assert.throws(
      () => chooseDlq(two, 'jobs'),
      (e: unknown) => e instanceof UsageError && /jobs:<model>, one of fashion .*candidate/.test(e.message),
    );
    assert.throws(
      () => chooseDlq(two, 'jobs:nope'),
      (e: unknown) => e instanceof LabelerError && e.code === 'job/unknown-model',
    );
    for (const bad of ['outgoing', 'plan:x', 'jobs:', 'jobs:a:b'])
      assert.throws(() => chooseDlq(two, bad), UsageError, bad);
  });

  it('a first model whose stack output lists no DLQs still has them by role', () => {
    const { jobsDlqUrl: _j, bulkDlqUrl: _b, ...bare } = model('fashion', 'fashion-efficientnet', '');
    const shown = stackQueues(resources([bare]));
    assert.equal(shown.find((q) => q.role === 'jobsDlq')?.url, url('jobs-dlq'));
  });
});
