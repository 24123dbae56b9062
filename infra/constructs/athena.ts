import { Stack } from 'aws-cdk-lib';
import * as glue from 'aws-cdk-lib/aws-glue';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { RESULTS_LINES_TABLE } from '../../shared/labeling/results-table.ts';

export interface AthenaProps {
  /** The bucket the handlers write the JSON Lines results to. */
  readonly resultsBucket: s3.IBucket;
  /**
   * Name of the Glue database (lower case, digits and underscores).
   * @default - the stack name in lower case, other characters than letters and digits as "_"
   */
  readonly databaseName?: string;
}

/**
 * A Glue database and one table over the results bucket's JSON Lines, queryable from
 * Athena with no crawler: partitions come from projection over the key layout
 * (RESULTS_LINES_TABLE). Only wiring: the columns and layout are defined in shared/.
 */
export class Athena extends Construct {
  readonly databaseName: string;
  readonly tableName: string;

  constructor(scope: Construct, id: string, props: AthenaProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.databaseName = props.databaseName ?? stack.stackName.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    this.tableName = RESULTS_LINES_TABLE.tableName;
    const database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: {
        name: this.databaseName,
        description: 'Labeler results (JSON Lines in the results bucket)',
      },
    });
    const location = `s3://${props.resultsBucket.bucketName}/${RESULTS_LINES_TABLE.prefix}/`;
    const [model, date] = RESULTS_LINES_TABLE.partitionKeys;
    const table = new glue.CfnTable(this, 'Results', {
      catalogId: stack.account,
      databaseName: this.databaseName,
      tableInput: {
        name: this.tableName,
        description:
          'One row per labeled image per batch write, as the classify handler and GPU workers write it',
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          classification: 'json',
          'projection.enabled': 'true',
          [`projection.${model.name}.type`]: 'injected',
          [`projection.${date.name}.type`]: 'date',
          [`projection.${date.name}.format`]: 'yyyy-MM-dd',
          [`projection.${date.name}.range`]: `${RESULTS_LINES_TABLE.firstDay},NOW`,
          [`projection.${date.name}.interval`]: '1',
          [`projection.${date.name}.interval.unit`]: 'DAYS',
          'storage.location.template': `${location}${model.name}=\${${model.name}}/${date.name}=\${${date.name}}/`,
        },
        partitionKeys: RESULTS_LINES_TABLE.partitionKeys.map((c) => ({ ...c })),
        storageDescriptor: {
          location,
          columns: RESULTS_LINES_TABLE.columns.map((c) => ({ ...c })),
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          serdeInfo: {
            serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
            // A line the SerDe cannot read fails the query rather than turning into a row of nulls.
            parameters: { 'ignore.malformed.json': 'false', 'case.insensitive': 'true' },
          },
        },
      },
    });
    table.addResourceDependency(database);
  }
}
