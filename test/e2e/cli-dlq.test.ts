import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { s3EventBody } from '../helpers/events.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');
// Outside the upload prefix, so no S3 notification labels them: only the redriven messages do.
const KEYS = ['parked/a b+c,1.png', 'parked/ünïcødé.png'];

describe('labeler dlq on the local stack: listed without being consumed, redriven, then processed', () => {
  let dataDir: string;
  let up: LabelerProcess;
  let clients: AwsClients;
  let dlqUrl: string;
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-dlq-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const { region, endpoints } = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region, endpoints, local: true });
    dlqUrl =
      (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: RESOURCE_NAMES.incomingDlq }))).QueueUrl ??
      '';
    for (const [i, key] of KEYS.entries()) {
      const body = await readFile(join(SAMPLES, `test-0000${i}.png`));
      const put = await clients.s3.send(
        new PutObjectCommand({ Bucket: RESOURCE_NAMES.imagesBucket, Key: key, Body: body }),
      );
      const event = s3EventBody({
        bucket: RESOURCE_NAMES.imagesBucket,
        key,
        eTag: put.ETag ?? '',
        size: body.length,
      });
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: event }));
    }
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: 'not an event' }));
  });
  after(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    if (up) {
      up.kill('SIGINT');
      await up.exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('lists every message with its keys, receive count and why, twice: listing consumes nothing', async () => {
    const first = await cli('dlq', 'list');
    assert.equal(first.code, 0, first.stderr);
    const letters = jsonLines(first.stdout) as Array<{
      objects: Array<{ key: string }>;
      receiveCount: number;
      error: { code: string; message: string };
      queue: string;
    }>;
    assert.equal(letters.length, 3, first.stdout);
    const byKey = new Map(letters.map((l) => [l.objects[0]?.key ?? '(none)', l]));
    for (const key of KEYS) {
      const letter = byKey.get(key);
      assert.ok(letter, `${key} in ${first.stdout}`);
      assert.equal(letter.queue, 'incoming');
      assert.equal(letter.error.code, 'dlq/retries-exhausted');
      assert.match(letter.error.message, /1 of 1 objects have no result/);
      assert.ok(letter.receiveCount >= 1);
    }
    assert.equal(byKey.get('(none)')?.error.code, 'dlq/invalid-message');
    assert.match(byKey.get('(none)')?.error.message ?? '', /not JSON/);
    assert.match(first.stderr, /3 messages in the incoming dead-letter queue/);

    const table = await cli('dlq', 'list', '--format', 'table');
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^messageId\s+receives\s+sentAt\s+objects\s+error\s+why$/);
    assert.equal(lines.length, 4, table.stdout);
    assert.ok(lines.some((l) => l.includes('parked/a b+c,1.png') && l.includes('dlq/retries-exhausted')));
  });

  it('redrives to the source queue, leaving the DLQ empty, and the messages are then processed', async () => {
    const redrive = await cli('dlq', 'redrive', '--queue', 'incoming');
    assert.equal(redrive.code, 0, redrive.stderr);
    assert.deepEqual(jsonLines(redrive.stdout), [{ queue: 'incoming', how: 'moved-here', moved: 3 }]);

    const after = await cli('dlq', 'list');
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, '');
    assert.match(after.stderr, /0 messages in the incoming dead-letter queue/);

    const store = new DynamoResultsStore(clients.db, RESOURCE_NAMES.resultsTable);
    for (const key of KEYS) {
      await waitFor(
        `a result for ${key} (local up said: ${up.output})`,
        async () => {
          const [result] = await store.getByImage(RESOURCE_NAMES.imagesBucket, key);
          return result?.status === 'ok' ? result : undefined;
        },
        300_000,
      );
    }

    // The results, through the signed query API, in the formats for people.
    const csv = await cli('query', 'image', KEYS[0] as string, '--format', 'csv');
    assert.equal(csv.code, 0, csv.stderr);
    const [header, row, ...more] = csv.stdout.trimEnd().split('\r\n');
    assert.equal(
      header,
      'bucket,key,eTag,model,modelVersion,status,label,score,labels,errorCode,errorMessage,jobId,labeledAt',
    );
    assert.ok(row?.startsWith(`${RESOURCE_NAMES.imagesBucket},"parked/a b+c,1.png",`), row);
    assert.match(row ?? '', /,ok,[^,]+,[01]\.\d{6},/);
    assert.deepEqual(more, []);

    const table = await cli('query', 'image', KEYS[1] as string, '--format', 'table');
    assert.equal(table.code, 0, table.stderr);
    const [tableHeader, tableRow] = table.stdout.trimEnd().split('\n');
    assert.match(tableHeader ?? '', /^key\s+model\s+status\s+label\s+score\s+errorCode\s+jobId\s+labeledAt$/);
    assert.match(tableRow ?? '', /^parked\/ünïcødé\.png\s+\S+\s+ok\s+/);
  });

  it('refuses options that do not go together, with exit 2', async () => {
    for (const args of [
      ['dlq', 'list', '--queue', 'outgoing'],
      ['dlq', 'redrive', '--max', '3'],
      ['dlq', 'list', '--format', 'csv'],
      ['query', 'label', 'Bag', '--format', 'xml'],
    ]) {
      const run = await cli(...args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    }
  });
});
