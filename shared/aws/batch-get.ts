import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { toLabelerError } from './errors.ts';

/** DynamoDB's limit on the keys of one BatchGetItem. */
export const BATCH_GET_KEYS = 100;
/** Tries of one batch before its unprocessed keys are given up on. */
const ATTEMPTS = 7;

/**
 * The items of up to 100 keys of one table, read consistently: BatchGetItem answers some
 * keys later (UnprocessedKeys, under throttling), so those are asked for again with
 * backoff. After the last try, `exhausted` is thrown: each caller keeps its own error.
 */
export async function batchGetAll(
  db: DynamoDBDocumentClient,
  table: string,
  keys: ReadonlyArray<Record<string, unknown>>,
  what: string,
  exhausted: () => Error,
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let pending: Array<Record<string, unknown>> | undefined = [...keys];
  for (let attempt = 0; pending && pending.length > 0; attempt++) {
    if (attempt >= ATTEMPTS) throw exhausted();
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    const response: BatchGetCommandOutput = await db
      .send(new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }))
      .catch((error: unknown) => {
        throw toLabelerError(error, `DynamoDB ${what}`);
      });
    items.push(...(response.Responses?.[table] ?? []));
    pending = response.UnprocessedKeys?.[table]?.Keys;
  }
  return items;
}
