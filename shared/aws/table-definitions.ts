import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { JOBS_TABLE, RESULTS_TABLE } from '../settings.ts';

/** CreateTable inputs for the local stack and tests, from the same key definitions the CDK stack uses. */
export function resultsTableDefinition(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey, labelIndex, rank2Index } = RESULTS_TABLE;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      partitionKey,
      sortKey,
      labelIndex.partitionKey,
      labelIndex.sortKey,
      rank2Index.partitionKey,
      rank2Index.sortKey,
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
        IndexName: rank2Index.name,
        KeySchema: [
          { AttributeName: rank2Index.partitionKey, KeyType: 'HASH' },
          { AttributeName: rank2Index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...rank2Index.projection] },
      },
    ],
  };
}

export function jobsTableDefinition(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey, listIndex } = JOBS_TABLE;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [partitionKey, sortKey, listIndex.partitionKey, listIndex.sortKey].map((name) => ({
      AttributeName: name,
      AttributeType: 'S',
    })),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: listIndex.name,
        KeySchema: [
          { AttributeName: listIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: listIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}
