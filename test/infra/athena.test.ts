import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { createClassifyDeps } from '../../shared/aws/classify-handler.ts';
import { type ClassifyDeps, classifyRecords } from '../../shared/labeling/classify-records.ts';
import { RESULT_ATHENA_COLUMNS, resultLine } from '../../shared/labeling/result-contract.ts';
import { RESULTS_LINES_TABLE } from '../../shared/labeling/results-table.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { RESULTS_PREFIX } from '../../shared/settings.ts';
import { s3EventBody } from '../helpers/events.ts';
import { resourcesOf, synthesizeLabeler } from './support.ts';

const synth = synthesizeLabeler({ gpuWorkers: false });
const { stack, template } = synth;
after(() => synth.cleanup());

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** The Hive type Athena needs to read a JSON value of this shape. */
function hiveType(value: unknown): string {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return 'double';
  if (typeof value === 'boolean') return 'boolean';
  if (Array.isArray(value)) {
    if (value.length === 0) throw new Error('an empty array says nothing of its element type');
    return `array<${hiveType(value[0])}>`;
  }
  if (value && typeof value === 'object') {
    return `struct<${Object.entries(value)
      .map(([k, v]) => `${k.toLowerCase()}:${hiveType(v)}`)
      .join(',')}>`;
  }
  throw new Error(`no Hive type for ${JSON.stringify(value)}`);
}

function glueTable() {
  const tables = Object.values(resourcesOf(template, 'AWS::Glue::Table'));
  assert.equal(tables.length, 1);
  const input = (tables[0]?.Properties.TableInput ?? {}) as {
    Name: string;
    Parameters: Record<string, unknown>;
    PartitionKeys: Array<{ Name: string; Type: string }>;
    StorageDescriptor: {
      Columns: Array<{ Name: string; Type: string }>;
      SerdeInfo: { SerializationLibrary: string; Parameters: Record<string, string> };
      InputFormat: string;
    };
  };
  return input;
}

describe('Athena table over the results JSON Lines: the columns the handler really writes', () => {
  let local: LocalStack;
  let deps: ClassifyDeps;
  /** Every JSON line the classify use case wrote to the results bucket, with the object key it went to. */
  const written: Array<{ objectKey: string; line: Record<string, unknown> }> = [];

  before(async () => {
    local = await startLocalStack({ worker: false });
    deps = {
      ...(await createClassifyDeps(
        {
          region: local.region,
          resultsTable: local.names.resultsTable,
          resultsBucket: local.names.resultsBucket,
          modelDir: DEFAULT_MODEL_DIR,
          executionProviders: ['cpu'],
          intraOpThreads: 1,
          topK: 3,
          batchSize: 8,
          concurrency: 1,
          maxBytes: 1 << 20,
          maxPixels: 1 << 20,
        },
        local.clients,
        quiet,
      )),
      // As a GPU worker labels a job's images: every line carries the job id.
      jobId: 'j-athena',
    };
    // One image that labels and one that fails: together every field a line can have.
    const objects: Array<[string, Buffer]> = [
      ['athena/shoe.png', await readFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png'))],
      ['athena/broken.png', Buffer.from('not an image')],
    ];
    const records = [];
    for (const [key, body] of objects) {
      const put = await local.clients.s3.send(
        new PutObjectCommand({ Bucket: local.names.imagesBucket, Key: key, Body: body }),
      );
      const eTag = (put.ETag ?? '').replace(/"/g, '');
      records.push({
        messageId: key,
        body: s3EventBody({ bucket: local.names.imagesBucket, key, eTag, size: body.length }),
      });
    }
    const report = await classifyRecords(records, deps);
    assert.equal(report.counts.labeled + report.counts.failed, 2);

    const listed = await local.clients.s3.send(
      new ListObjectsV2Command({ Bucket: local.names.resultsBucket, Prefix: `${RESULTS_PREFIX}/` }),
    );
    for (const object of listed.Contents ?? []) {
      const got = await local.clients.s3.send(
        new GetObjectCommand({ Bucket: local.names.resultsBucket, Key: object.Key }),
      );
      for (const text of (await got.Body?.transformToString())?.split('\n') ?? []) {
        if (text.trim()) written.push({ objectKey: String(object.Key), line: JSON.parse(text) });
      }
    }
    assert.equal(written.length, 2, 'one line per image');
  });

  after(async () => {
    await deps?.labeler.classifier.release();
    await local?.stop();
  });

  it('every field a line has is a column (or the model partition) of the type its value needs', () => {
    const table = glueTable();
    const columns = new Map(table.StorageDescriptor.Columns.map((c) => [c.Name, c.Type]));
    const fromLines = new Map<string, string>();
    for (const { line } of written) {
      for (const [field, value] of Object.entries(line)) {
        // A failed image's empty labels say nothing of the element type; the ok one's do.
        if (Array.isArray(value) && value.length === 0) continue;
        fromLines.set(field.toLowerCase(), hiveType(value));
      }
    }
    assert.equal(fromLines.get('model'), 'string');
    fromLines.delete('model'); // the partition, from the key path
    assert.deepEqual(Object.fromEntries(columns), Object.fromEntries(fromLines));
    assert.ok(!columns.has('model'), 'a partition key cannot also be a data column');
  });

  it("each line is the result contract's stored line of the result DynamoDB holds, and the columns are the contract's", async () => {
    for (const { line } of written) {
      const [result, ...more] = await deps.results.getByImage(String(line.bucket), String(line.key));
      assert.ok(result && more.length === 0, `one stored result for ${String(line.key)}`);
      assert.deepEqual(line, JSON.parse(JSON.stringify(resultLine(result, 'stored'))));
    }
    assert.deepEqual(
      glueTable().StorageDescriptor.Columns.map((c) => [c.Name, c.Type]),
      RESULT_ATHENA_COLUMNS.map((c) => [c.name, c.type]),
    );
  });

  it('partitions model and date are projected onto the key layout the handler writes', () => {
    const table = glueTable();
    assert.deepEqual(
      table.PartitionKeys.map((k) => [k.Name, k.Type]),
      [
        ['model', 'string'],
        ['date', 'string'],
      ],
    );
    const p = table.Parameters;
    assert.equal(p['projection.enabled'], 'true');
    assert.equal(p['projection.model.type'], 'injected');
    assert.equal(p['projection.date.type'], 'date');
    assert.equal(p['projection.date.format'], 'yyyy-MM-dd');
    assert.match(String(p['projection.date.range']), /^\d{4}-\d{2}-\d{2},NOW$/);
    // The template is s3://<bucket>/results/model=${model}/date=${date}/; fill it in from each line.
    const template = JSON.stringify(p['storage.location.template']);
    const path = /\/(results\/model=\$\{model\}\/date=\$\{date\}\/)/.exec(template)?.[1];
    assert.ok(path, `a location template under the results prefix: ${template}`);
    for (const { objectKey, line } of written) {
      const prefix: string = path
        .replace(/\$\{model\}/, String(line.model))
        .replace(/\$\{date\}/, String(line.labeledAt).slice(0, 10));
      assert.ok(objectKey.startsWith(prefix), `${objectKey} lies in the partition ${prefix}`);
      assert.equal(objectKey.slice(prefix.length).includes('/'), false, 'directly in the partition folder');
    }
  });

  it('reads JSON with the OpenX SerDe, case-insensitively (eTag fills etag), failing on malformed lines', () => {
    const { StorageDescriptor: sd } = glueTable();
    assert.equal(sd.SerdeInfo.SerializationLibrary, 'org.openx.data.jsonserde.JsonSerDe');
    assert.equal(sd.SerdeInfo.Parameters['case.insensitive'], 'true');
    assert.equal(sd.SerdeInfo.Parameters['ignore.malformed.json'], 'false');
    assert.equal(sd.InputFormat, 'org.apache.hadoop.mapred.TextInputFormat');
  });

  it('outputs GlueDatabase and GlueTable name the database and table', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    assert.equal(outputs.GlueDatabase?.Value, stack.athena.databaseName);
    assert.equal(outputs.GlueTable?.Value, RESULTS_LINES_TABLE.tableName);
    assert.match(stack.athena.databaseName, /^[a-z0-9_]+$/);
    const databases = Object.values(resourcesOf(template, 'AWS::Glue::Database'));
    assert.equal(databases.length, 1);
    assert.equal(
      (databases[0]?.Properties.DatabaseInput as { Name?: string } | undefined)?.Name,
      stack.athena.databaseName,
    );
  });
});
