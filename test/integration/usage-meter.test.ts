import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { resultsTableDefinition } from '../../shared/aws/table-definitions.ts';
import { meterCalls, UsageMeter } from '../../shared/aws/usage-meter.ts';
import { RESULTS_TABLE } from '../../shared/settings.ts';

const TABLE = 'metered';
const INDEX = RESULTS_TABLE.labelIndex;

describe('usage meter: DynamoDB units and requests as the calls are made (issue 22)', () => {
  let local: DynamoDbLocal;
  let clients: AwsClients;
  const meter = new UsageMeter({ [TABLE]: { [INDEX.name]: INDEX.partitionKey } });

  before(async () => {
    local = await startDynamoDbLocal();
    clients = createAwsClients({ region: 'us-east-1', endpoints: { dynamodb: local.endpoint }, local: true });
    await clients.dynamo.send(new CreateTableCommand(resultsTableDefinition(TABLE)));
    meterCalls(clients.dynamo as never, meter);
  });
  after(async () => {
    await local?.stop();
  });

  it('counts a Put by the units DynamoDB reports, the index apart', async () => {
    meter.reset();
    await clients.db.send(
      new PutCommand({
        TableName: TABLE,
        Item: { pk: 'a', sk: 'b', [INDEX.partitionKey]: 'l', [INDEX.sortKey]: 's', pad: 'x'.repeat(1500) },
      }),
    );
    const usage = meter.snapshot();
    assert.equal(usage.requests['dynamodb:PutItem'], 1);
    assert.equal(usage.units[TABLE]?.write, 2);
    assert.equal(usage.units[`${TABLE}/${INDEX.name}`]?.write, 2);
  });

  it('charges a transaction twice per item and per index entry, by the documented rule', async () => {
    meter.reset();
    await clients.db.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: TABLE,
              Item: { pk: 't1', sk: 'b', [INDEX.partitionKey]: 'l', [INDEX.sortKey]: 's1' },
            },
          },
          { Put: { TableName: TABLE, Item: { pk: 't2', sk: 'b' } } },
        ],
      }),
    );
    const usage = meter.snapshot();
    assert.equal(usage.units[TABLE]?.write, 4);
    assert.equal(usage.units[`${TABLE}/${INDEX.name}`]?.write, 2);
  });

  it('charges a write its condition refused, and the call still fails as it would unmetered', async () => {
    meter.reset();
    await assert.rejects(
      clients.db.send(
        new PutCommand({
          TableName: TABLE,
          Item: { pk: 'a', sk: 'b' },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
      { name: 'ConditionalCheckFailedException' },
    );
    const usage = meter.snapshot();
    assert.equal(usage.refusedWrites, 1);
    assert.equal(usage.units[TABLE]?.write, 1);
  });
});
