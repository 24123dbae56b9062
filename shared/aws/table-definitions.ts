import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { JOBS_TABLE, RESULTS_TABLE } from '../settings.ts';

/** CreateTable inputs for the local stack and tests, from the same key definitions the CDK stack uses. */
export function resultsTableDefinition(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey, labelIndex, jobIndex } = RESULTS_TABLE;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      partitionKey,
      sortKey,
      labelIndex.partitionKey,
      labelIndex.sortKey,
      jobIndex.partitionKey,
    ].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: labelIndex.name,
        KeySchema: [
          { AttributeName: labelIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: labelIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: jobIndex.name,
        KeySchema: [
          { AttributeName: jobIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: jobIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

export function jobsTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: JOBS_TABLE.partitionKey, AttributeType: 'S' }],
    KeySchema: [{ AttributeName: JOBS_TABLE.partitionKey, KeyType: 'HASH' }],
  };
}
