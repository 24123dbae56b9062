import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import type { BatchReport } from '../../shared/labeling/classify-records.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { UPLOAD_FILTER } from '../../shared/settings.ts';
import { waitFor } from '../helpers/wait.ts';

/** Redelivery of the killed batch is the subject: results are counted, never deliveries. */
const VISIBILITY_SECONDS = 5;
const LOADED_MACHINE_WAIT_MS = 120_000;

describe('classify invocations in execution environments of their own (child processes)', () => {
  let stack: LocalStack;
  const reports: BatchReport[] = [];
  const failures: string[] = [];
  let killedPid = 0;

  before(async () => {
    stack = await startLocalStack({
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      maxReceiveCount: 10,
      log: {
        info: () => {},
        warn: (m, extra) => failures.push(`${m} ${JSON.stringify(extra)}`),
        error: () => {},
      },
      // The first invocation with an image has its environment killed while it is in flight.
      wrapHandler: (handler) => async (event) => {
        const busyBefore = stack.environments?.busyPids ?? [];
        const pending = handler(event);
        if (killedPid === 0 && event.Records.some((r) => r.body.includes('killed/'))) {
          // This invocation's environment (not another one about to answer) is handed the
          // invocation within the same turn of the event loop.
          const ours = () => stack.environments?.busyPids.find((pid) => !busyBefore.includes(pid));
          while (!ours()) await new Promise((resolve) => setImmediate(resolve));
          killedPid = ours() ?? 0;
          process.kill(killedPid, 'SIGKILL');
        }
        return pending;
      },
    });
    stack.onReport((r) => reports.push(r));
  });
  after(async () => {
    await stack?.stop();
  });

  it('runs the handler outside the stack process, with its reports coming back', async () => {
    const environments = stack.environments;
    assert.ok(environments);
    assert.equal(environments.pids.length, 2, 'one environment per concurrent invocation');
    assert.ok(!environments.pids.includes(process.pid));
  });

  it('survives a SIGKILLed environment: that batch alone fails, comes back, and each image gets one result', async () => {
    const sample = await readFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png'));
    const keys = ['a', 'b', 'c', 'd'].map((n) => `${UPLOAD_FILTER.prefix}killed/${n}.png`);
    await Promise.all(
      keys.map((key) =>
        stack.clients.s3.send(
          new PutObjectCommand({ Bucket: stack.names.imagesBucket, Key: key, Body: sample }),
        ),
      ),
    );
    const store = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    for (const key of keys) {
      const result = await waitFor(
        `a result for ${key}`,
        async () => (await store.getByImage(stack.names.imagesBucket, key))[0],
        LOADED_MACHINE_WAIT_MS,
      );
      assert.equal(result.status, 'ok');
    }
    await waitFor(
      'the queue to drain',
      async () => {
        const a = await stack.clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: stack.queues.incoming.url,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        );
        const depth =
          Number(a.Attributes?.ApproximateNumberOfMessages) +
          Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible);
        return depth === 0 ? true : undefined;
      },
      LOADED_MACHINE_WAIT_MS,
    );

    assert.ok(killedPid > 0);
    assert.ok(!stack.environments?.pids.includes(killedPid), 'the killed environment was replaced');
    assert.equal(stack.environments?.pids.length, 2);
    assert.equal(stack.environments?.deathsMidInvocation, 1);
    assert.ok(
      failures.some((f) => f.includes(`execution environment ${killedPid} exited (SIGKILL)`)),
      `the killed invocation failed as a whole: ${JSON.stringify(failures)}`,
    );
    for (const key of keys) assert.equal((await store.getByImage(stack.names.imagesBucket, key)).length, 1);
    const labeled = reports.reduce((n, r) => n + r.counts.labeled, 0);
    assert.equal(labeled, keys.length, 'one result written per image');
  });
});
