import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { AwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { UNSTORABLE } from '../../shared/labeling/classify-records.ts';
import type { ImageResult } from '../../shared/labeling/results.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

const bucket = 'labeler-images';
const refusedKey = 'images/refused-by-the-table.png';

/**
 * A result the table refuses for good (a ValidationException: DynamoDB's item limits) becomes
 * a failed result saying so on the same receive, never five receives and the DLQ. The refusal
 * is injected through the handler's SDK middleware (test-only: what DynamoDB Local refuses is
 * covered by the long-key tests in results-store), for the `ok` result of one image only.
 */
describe('a result the store refuses for good (injected ValidationException)', () => {
  let stack: LocalStack;
  let refusals = 0;

  before(async () => {
    stack = await startLocalStack({
      isolation: 'in-process',
      visibilityTimeoutSeconds: 2,
      log: { info: () => {}, warn: () => {}, error: () => {} },
      configureHandlerClients: (clients: AwsClients) => {
        clients.db.middlewareStack.add(
          (next) => async (args) => {
            const input = args.input as { TransactItems?: unknown; Item?: unknown };
            // The ok result of that image, in whatever form the client holds it at this step:
            // a Put of its own on the upload path (decision 0027), a transaction's item on a job's.
            const text = JSON.stringify(input.TransactItems ?? input.Item ?? null);
            const refused = text.includes(refusedKey) && /"status":(\{"S":)?"ok"/.test(text);
            if (refused) {
              refusals++;
              throw Object.assign(new Error('Item size has exceeded the maximum allowed size'), {
                name: 'ValidationException',
                $metadata: { httpStatusCode: 400 },
              });
            }
            return next(args);
          },
          { step: 'initialize', name: 'injectValidationException' },
        );
      },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  it('stores a failed result result/not-storable on the first receive; the neighbour is labeled', async () => {
    for (const [key, shade] of [
      [refusedKey, 1],
      ['images/stored-normally.png', 2],
    ] as const) {
      const body = await solidImage(30, 30 + shade, `#${shade}0${shade}0c0`)
        .png()
        .toBuffer();
      await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
    const results = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    const resultOf = (key: string) =>
      waitFor(
        `a result for ${key}`,
        async (): Promise<ImageResult | undefined> => (await results.getByImage(bucket, key))[0],
        120_000,
      );
    const refused = await resultOf(refusedKey);
    assert.equal(refused.status, 'failed');
    assert.equal(refused.error?.code, UNSTORABLE);
    assert.match(refused.error?.message ?? '', /could not be stored/);
    assert.equal((await resultOf('images/stored-normally.png')).status, 'ok');
    assert.ok(refusals >= 1, 'the ok result was refused');
    const attrs = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: stack.queues.incomingDlq.url,
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    );
    assert.equal(Number(attrs.Attributes?.ApproximateNumberOfMessages), 0, 'nothing dead-lettered');
  });
});
