import { CreateTableCommand, type DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, type DynamoDBDocumentClient, PutCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { type ScheduleSpec, type SchedulesPort, validateSchedule } from '../labeling/schedules.ts';
import { toLabelerError } from './errors.ts';

/** The local stack's schedules table: only the local stack has one (AWS keeps schedules in Scheduler). */
export const LOCAL_SCHEDULES_TABLE = 'labeler-local-schedules';

/** A schedule as stored locally: `createdAt` anchors its rate, as a schedule's creation does on AWS. */
export interface StoredSchedule extends ScheduleSpec {
  readonly createdAt: string;
}

/**
 * Schedules of the local stack, in a DynamoDB Local table, so that `labeler jobs
 * schedule add` in one process and the stack's scheduler in another see the same set.
 */
export class DynamoSchedules implements SchedulesPort {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #now: () => Date;

  constructor(db: DynamoDBDocumentClient, options: { table?: string; now?: () => Date } = {}) {
    this.#db = db;
    this.#table = options.table ?? LOCAL_SCHEDULES_TABLE;
    this.#now = options.now ?? (() => new Date());
  }

  static async createTable(dynamo: DynamoDBClient, table = LOCAL_SCHEDULES_TABLE): Promise<void> {
    await dynamo
      .send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'name', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'name', KeyType: 'HASH' }],
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ResourceInUseException)) throw error;
      });
  }

  async add(schedule: ScheduleSpec): Promise<void> {
    const spec = validateSchedule(schedule);
    const item: StoredSchedule = { ...spec, createdAt: this.#now().toISOString() };
    await this.#db
      .send(
        new PutCommand({
          TableName: this.#table,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#name)',
          ExpressionAttributeNames: { '#name': 'name' },
        }),
      )
      .catch((error: unknown) => {
        if ((error as { name?: string }).name === 'ConditionalCheckFailedException') {
          throw new LabelerError(CODE.schedule.exists, `a schedule named ${spec.name} already exists`);
        }
        throw toLabelerError(error, `DynamoDB PutItem ${this.#table}`);
      });
  }

  async list(): Promise<StoredSchedule[]> {
    const items: StoredSchedule[] = [];
    try {
      // A handful of items in a local-only table: a Scan is the whole read.
      for await (const page of paginateScan(
        { client: this.#db },
        { TableName: this.#table, ConsistentRead: true },
      )) {
        for (const item of page.Items ?? []) items.push(item as StoredSchedule);
      }
    } catch (error) {
      throw toLabelerError(error, `DynamoDB Scan ${this.#table}`);
    }
    return items.sort((a, b) => a.name.localeCompare(b.name));
  }

  async remove(name: string): Promise<void> {
    await this.#db
      .send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { name },
          ConditionExpression: 'attribute_exists(#name)',
          ExpressionAttributeNames: { '#name': 'name' },
        }),
      )
      .catch((error: unknown) => {
        if ((error as { name?: string }).name === 'ConditionalCheckFailedException') {
          throw new LabelerError(CODE.schedule.notFound, `no schedule named ${name}`);
        }
        throw toLabelerError(error, `DynamoDB DeleteItem ${this.#table}`);
      });
  }
}
