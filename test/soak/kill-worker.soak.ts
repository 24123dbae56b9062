import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { ScanCommand, type ScanCommandOutput } from '@aws-sdk/lib-dynamodb';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { imagePk } from '../../shared/aws/dynamo-results-store.ts';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { LABELING, UPLOAD_FILTER } from '../../shared/settings.ts';
import { waitFor } from '../helpers/wait.ts';

const IMAGES = 3_000;
const KILLS = 2;
/** Killed batches come back after this; exactly-once results are the claim, not single delivery. */
const VISIBILITY_SECONDS = 15;
/** High enough that no valid message reaches the DLQ however slow the machine is. */
const MAX_RECEIVE_COUNT = 10;
const PREFIX = `${UPLOAD_FILTER.prefix}soak/`;

interface Item {
  readonly pk: string;
  readonly sk: string;
  readonly type: string;
  readonly key: string;
  readonly status?: string;
  readonly labels?: Array<{ label: string; score: number }>;
  readonly label?: string;
  readonly score?: number;
  readonly rank?: number;
  readonly labelPk?: string;
  readonly labelPk2?: string;
}

describe(`soak: ${IMAGES} images while the classify worker is killed with SIGKILL ${KILLS} times`, () => {
  let stack: LocalStack;
  const warnings: string[] = [];

  before(async () => {
    stack = await startLocalStack({
      isolation: 'process',
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      maxReceiveCount: MAX_RECEIVE_COUNT,
      log: { info: () => {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  const queueDepth = async (url: string) => {
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

  const scanAll = async (): Promise<Item[]> => {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page: ScanCommandOutput = await stack.clients.db.send(
        new ScanCommand({
          TableName: stack.names.resultsTable,
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((page.Items ?? []) as Item[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  };

  it('gives every image exactly one result and a consistent label index, with an empty DLQ', async () => {
    const environments = stack.environments;
    assert.ok(environments, 'the stack runs the handler in execution environments');
    const samplesDir = join(DEFAULT_MODEL_DIR, 'samples');
    const samples = await Promise.all(
      (await readdir(samplesDir))
        .filter((f) => f.endsWith('.png'))
        .sort()
        .map((f) => readFile(join(samplesDir, f))),
    );
    assert.ok(samples.length > 0);
    // Results are per (bucket, key, model): distinct keys are distinct images.
    const keys = Array.from({ length: IMAGES }, (_, i) => `${PREFIX}${String(i).padStart(5, '0')}.png`);
    let settled = 0;
    stack.onReport((r) => {
      settled += r.counts.labeled + r.counts.failed + r.counts.duplicates;
    });
    const started = performance.now();

    const upload = mapLimit(keys, 16, async (key, i) => {
      await stack.clients.s3.send(
        new PutObjectCommand({
          Bucket: stack.names.imagesBucket,
          Key: key,
          Body: samples[i % samples.length],
        }),
      );
    });

    // Each kill lands on an environment with an invocation in flight, after some results exist.
    // One that answered in the instant before the signal does not count: kill again.
    const killed: number[] = [];
    for (let k = 1; k <= KILLS; k++) {
      const threshold = Math.floor((IMAGES * k) / (KILLS + 1));
      while (environments.deathsMidInvocation < k) {
        const pid = await waitFor(
          `${threshold} images settled and an invocation in flight`,
          () => (settled >= threshold ? environments.busyPids[0] : undefined),
          600_000,
        );
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
        await waitFor(`environment ${pid} to be gone`, () =>
          environments.pids.includes(pid) ? undefined : true,
        );
      }
    }
    await upload;
    await stack.notifier.flush();
    await waitFor(
      'the incoming queue to drain',
      async () => ((await queueDepth(stack.queues.incoming.url)) === 0 ? true : undefined),
      900_000,
    );
    const wallSeconds = (performance.now() - started) / 1000;
    const invocationsFailed = warnings.filter((w) => w.startsWith('classify invocation failed')).length;

    const items = await scanAll();
    const results = new Map<string, Item[]>();
    const index = new Map<string, Item[]>();
    for (const item of items) {
      if (!item.key.startsWith(PREFIX)) continue;
      const into = item.type === 'result' ? results : index;
      into.set(item.pk, [...(into.get(item.pk) ?? []), item]);
    }
    let ok = 0;
    let failed = 0;
    let indexItems = 0;
    let orphans = 0;
    let duplicates = 0;
    let missing = 0;
    for (const key of keys) {
      const pk = imagePk(stack.names.imagesBucket, key);
      const found = results.get(pk) ?? [];
      if (found.length === 0) missing++;
      if (found.length > 1) duplicates += found.length - 1;
      const result = found[0];
      const seenOnItem = new Set<string>();
      if (result?.status === 'ok') ok++;
      else if (result) failed++;
      // The result item carries the index keys of its first two indexed labels (decision 0027).
      const expected = (result?.labels ?? []).filter((l) => l.score >= LABELING.indexMinScore).slice(0, 2);
      const onItem = [result?.labelPk, result?.labelPk2];
      expected.forEach((l, i) => {
        if (onItem[i]?.includes(`#${l.label}#`)) {
          indexItems++;
          seenOnItem.add(l.label);
        }
      });
      // An index item without its result, or not matching it, is an orphan.
      const labelItems = index.get(pk) ?? [];
      indexItems += labelItems.length;
      const seen = new Set<string>(seenOnItem);
      for (const item of labelItems) {
        const rank = item.rank ?? 0;
        const matches = expected[rank - 1];
        if (!matches || matches.label !== item.label || matches.score !== item.score) orphans++;
        else if (seen.has(item.label ?? '')) duplicates++;
        seen.add(item.label ?? '');
      }
      // Every indexed label has its index item.
      missing += expected.filter((l) => !seen.has(l.label)).length;
    }
    const dlqDepth = await queueDepth(stack.queues.incomingDlq.url);
    const counts = {
      images: IMAGES,
      results: [...results.values()].reduce((n, r) => n + r.length, 0),
      ok,
      failed,
      indexItems,
      orphans,
      duplicates,
      missing,
      dlqDepth,
      kills: killed.length,
      killedMidBatch: environments.deathsMidInvocation,
      invocationsFailed,
      wallSeconds: Number(wallSeconds.toFixed(1)),
    };
    process.stdout.write(`soak ${JSON.stringify(counts)}\n`);

    assert.equal(environments.deathsMidInvocation, KILLS, 'killed mid-batch, and nothing else died');
    assert.equal(environments.deaths, killed.length);
    assert.ok(invocationsFailed >= KILLS, 'each kill failed the invocation it was running');
    assert.equal(counts.results, IMAGES, 'one result per image');
    assert.equal(missing, 0, 'no image without a result, no indexed label without its index item');
    assert.equal(ok, IMAGES);
    assert.equal(orphans, 0);
    assert.equal(duplicates, 0);
    assert.ok(indexItems > 0);
    assert.equal(dlqDepth, 0);
  });
});
