import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { BatchReport } from '../../shared/labeling/classify-records.ts';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import { type Job, jobTotalDone } from '../../shared/labeling/jobs.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

/** Redelivery is the subject, not speed: a short visibility timeout brings failed batches back soon. */
const VISIBILITY_SECONDS = 5;
const JOB_DEADLINE_MS = 300_000;

/**
 * Jobs through the whole local stack: plan queue → incoming queue → classify invocations
 * in execution environments of their own. Counts are asserted exact under injected
 * redelivery, a SIGKILLed environment, and cancel.
 */
describe('labeling jobs: exact counts under at-least-once delivery (decision 0014)', () => {
  let stack: LocalStack;
  const bucket = 'labeler-images';
  const reports: BatchReport[] = [];
  let redeliveredOnce = false;
  /** Set by a test: the next job batch under relabel/ is labeled, then its acknowledgement lost. */
  let redeliverRelabel = false;
  let relabelRedelivered = false;
  let killedPid = 0;
  let openGate: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    openGate = resolve;
  });
  let gateReached = false;

  before(async () => {
    stack = await startLocalStack({
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      maxReceiveCount: 10,
      planOptions: { pageSize: 10, maxPagesPerStep: 1 },
      log: { info: () => {}, warn: () => {}, error: () => {} },
      wrapHandler: (handler) => async (event) => {
        const has = (part: string) => event.Records.some((r) => r.body.includes(part));
        if (has('cancelme/')) {
          gateReached = true;
          await gate;
        }
        const busyBefore = stack.environments?.busyPids ?? [];
        const pending = handler(event);
        if (killedPid === 0 && has('killed/')) {
          const ours = () => stack.environments?.busyPids.find((pid) => !busyBefore.includes(pid));
          while (!ours()) await new Promise((resolve) => setImmediate(resolve));
          killedPid = ours() ?? 0;
          process.kill(killedPid, 'SIGKILL');
        }
        const response = await pending;
        if (redeliverRelabel && has('relabel/')) {
          redeliverRelabel = false;
          relabelRedelivered = true;
          return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
        }
        if (!redeliveredOnce && has('redeliver/')) {
          // (injected) The batch was labeled and counted, but its acknowledgement is lost: every message comes back.
          redeliveredOnce = true;
          return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
        }
        return response;
      },
    });
    stack.onReport((r) => reports.push(r));
  });
  after(async () => {
    openGate();
    await stack?.stop();
  });

  const upload = async (prefix: string, good: number, bad = 0) => {
    const keys: string[] = [];
    await mapLimit(
      Array.from({ length: good + bad }, (_, i) => i),
      8,
      async (i) => {
        const key = `${prefix}${String(i).padStart(3, '0')}.${i < good ? 'png' : 'jpg'}`;
        const body =
          i < good
            ? await solidImage(
                32 + (i % 7),
                24,
                `#${(i * 2654435761).toString(16).slice(-6).padStart(6, '0')}`,
              )
                .png()
                .toBuffer()
            : Buffer.from('not an image at all');
        await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        keys.push(key);
      },
    );
    return keys.sort();
  };
  const settled = (jobId: string, status: Job['status']) =>
    waitFor(
      `job ${jobId} ${status}`,
      async () => {
        const job = await stack.jobs.get(jobId);
        return job?.status === status ? job : undefined;
      },
      JOB_DEADLINE_MS,
    );
  const counts = (job: Job) => ({
    total: job.total,
    labeled: job.labeled,
    failed: job.failed,
    skipped: job.skipped,
    cancelled: job.cancelled,
  });

  it('a job whose batch is redelivered (injected) counts each image once, then succeeds', async () => {
    const keys = await upload('redeliver/', 20, 2);
    const started = await stack.jobs.start({ bucket, prefix: 'redeliver/', target: 'lambda', mode: 'all' });
    const job = await settled(started.jobId, 'succeeded');
    assert.deepEqual(counts(job), { total: 22, labeled: 20, failed: 2, skipped: 0, cancelled: 0 });
    assert.ok(job.planningDone && job.finishedAt);
    // The environment writes the counts before its reply reaches this process: the job can
    // be seen succeeded a moment before the wrapper records the lost acknowledgement.
    await waitFor('the injected lost acknowledgement', () => (redeliveredOnce ? true : undefined));
    await waitFor('the redelivered batch handled', () =>
      reports.some((r) => r.counts.duplicates > 0) ? true : undefined,
    );
    assert.equal((await stack.jobs.get(job.jobId))?.labeled, 20, 'the redelivery counted nothing');

    const failures = [];
    for await (const f of stack.jobs.failures(job.jobId)) failures.push(f);
    assert.deepEqual(
      failures.map((f) => f.key).sort(),
      keys.filter((k) => k.endsWith('.jpg')),
    );
    assert.ok(failures.every((f) => f.error.code.startsWith('image/')));
    const results = [];
    for await (const r of stack.jobs.results(job.jobId)) results.push(r);
    assert.deepEqual(results.map((r) => r.key).sort(), keys);
    assert.ok(results.every((r) => r.jobId === job.jobId));
  });

  it('--mode stale after a full run skips every object', async () => {
    const started = await stack.jobs.start({ bucket, prefix: 'redeliver/', target: 'lambda', mode: 'stale' });
    const job = await settled(started.jobId, 'succeeded');
    assert.deepEqual(counts(job), { total: 22, labeled: 0, failed: 0, skipped: 22, cancelled: 0 });
  });

  it('--mode all labels every object again, once per job under redelivery; --mode stale then skips', async () => {
    const keys = await upload('relabel/', 10, 1);
    const first = await settled(
      (await stack.jobs.start({ bucket, prefix: 'relabel/', target: 'lambda', mode: 'all' })).jobId,
      'succeeded',
    );
    assert.deepEqual(counts(first), { total: 11, labeled: 10, failed: 1, skipped: 0, cancelled: 0 });

    // Same content, same model version: mode all labels it again (issue 20 item 5), and an
    // injected redelivery of a batch it labeled counts nothing twice.
    redeliverRelabel = true;
    const again = await settled(
      (await stack.jobs.start({ bucket, prefix: 'relabel/', target: 'lambda', mode: 'all' })).jobId,
      'succeeded',
    );
    // The job can read succeeded before the invocation's answer (the injected loss) reaches the
    // mapping: the worker counts, then replies over IPC.
    await waitFor('a batch of the second job redelivered', () => (relabelRedelivered ? true : undefined));
    assert.deepEqual(counts(again), { total: 11, labeled: 10, failed: 1, skipped: 0, cancelled: 0 });
    // Each result is overwritten in place by the second job: one result per image, now its.
    const results = [];
    for await (const r of stack.jobs.results(again.jobId)) results.push(r);
    assert.deepEqual(results.map((r) => r.key).sort(), keys);
    assert.ok(results.every((r) => r.jobId === again.jobId));
    const firstResults = [];
    for await (const r of stack.jobs.results(first.jobId)) firstResults.push(r);
    assert.equal(firstResults.length, 0, 'the first job no longer owns any result');
    await waitFor('the redelivered batch handled', async () => {
      const a = await stack.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: stack.queues.jobs.url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      const depth =
        Number(a.Attributes?.ApproximateNumberOfMessages) +
        Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible);
      return depth === 0 ? true : undefined;
    });
    assert.deepEqual(counts((await stack.jobs.get(again.jobId)) as Job), counts(again), 'counted once');

    const stale = await settled(
      (await stack.jobs.start({ bucket, prefix: 'relabel/', target: 'lambda', mode: 'stale' })).jobId,
      'succeeded',
    );
    assert.deepEqual(counts(stale), { total: 11, labeled: 0, failed: 0, skipped: 11, cancelled: 0 });
  });

  it('a SIGKILLed worker mid-batch leaves the counts exact', async () => {
    await upload('killed/', 12);
    const started = await stack.jobs.start({ bucket, prefix: 'killed/', target: 'lambda', mode: 'all' });
    const job = await settled(started.jobId, 'succeeded');
    assert.ok(killedPid > 0, 'an environment was killed during the job');
    assert.deepEqual(counts(job), { total: 12, labeled: 12, failed: 0, skipped: 0, cancelled: 0 });
  });

  it('cancel mid-job: the workers drop the remaining images as cancelled', async () => {
    await upload('cancelme/', 30);
    const started = await stack.jobs.start({ bucket, prefix: 'cancelme/', target: 'lambda', mode: 'all' });
    await waitFor('a job batch held at the gate', () => (gateReached ? true : undefined), JOB_DEADLINE_MS);
    const cancelling = await stack.jobs.cancel(started.jobId);
    // Images are still unaccounted for (one batch is held at the gate): not terminal yet.
    assert.equal(cancelling.status, 'cancelling');
    assert.equal(cancelling.finishedAt, undefined);
    assert.ok(jobTotalDone(cancelling) < cancelling.total || !cancelling.planningDone);
    // Whenever the job is seen cancelled, its counts add up: it is never terminal before.
    const sightings: Job[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const j = await stack.jobs.get(started.jobId);
        if (j) sightings.push(j);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    openGate();
    const depth = async (url: string) => {
      const a = await stack.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return (
        Number(a.Attributes?.ApproximateNumberOfMessages) +
        Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible)
      );
    };
    const job = await waitFor(
      'every planned image accounted for',
      async () => {
        const j = await stack.jobs.get(started.jobId);
        const idle = (await depth(stack.queues.plan.url)) === 0 && (await depth(stack.queues.jobs.url)) === 0;
        return j && idle && j.cancelled + j.labeled + j.failed + j.skipped === j.total ? j : undefined;
      },
      JOB_DEADLINE_MS,
    );
    const final = await settled(started.jobId, 'cancelled');
    watching = false;
    await watcher;
    assert.deepEqual(counts(final), counts(job));
    assert.ok(final.finishedAt && final.planningDone);
    assert.ok(job.total > 0 && job.total <= 30);
    assert.equal(job.labeled, 0, 'nothing was labeled after the cancel');
    assert.equal(job.cancelled, job.total);
    for (const seen of sightings.filter((j) => j.status === 'cancelled')) {
      assert.ok(
        seen.planningDone && jobTotalDone(seen) === seen.total,
        `cancelled at ${jobTotalDone(seen)}/${seen.total}`,
      );
    }
  });
});
