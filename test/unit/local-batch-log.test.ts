import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { batchLogLine } from '../../cli/local-command.ts';
import type { BatchReport } from '../../shared/labeling/classify-records.ts';
import { s3EventBody } from '../helpers/events.ts';

const TEST_EVENT = JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' });

function eventOf(bodies: string[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({ messageId: `m${i}`, body }) as unknown as SQSRecord),
  };
}

function report(counts: Partial<BatchReport['counts']>): BatchReport {
  return {
    failedMessageIds: [],
    counts: {
      records: 0,
      images: 0,
      inferred: 0,
      labeled: 0,
      failed: 0,
      duplicates: 0,
      superseded: 0,
      cancelled: 0,
      retried: 0,
      deferred: 0,
      testEvents: 0,
      invalid: 0,
      ...counts,
    },
    stageMs: { s3Get: 0, decode: 0, inference: 0, writes: 0, export: 0 },
  };
}

describe('the local stack log line per classify invocation', () => {
  it('prints nothing for a batch without images (the s3:TestEvent)', () => {
    assert.equal(batchLogLine(report({ records: 1, testEvents: 1 }), eventOf([TEST_EVENT])), undefined);
  });

  it('names the object keys, decoded, the first three and "+N more"', () => {
    const keys = ['images/a b.png', 'images/b.png', 'images/c.png', 'images/d.png', 'images/e.png'];
    const bodies = keys.map((key) => s3EventBody({ bucket: 'b', key, eTag: 'e', size: 1 }));
    const line = batchLogLine(report({ records: 5, images: 5, labeled: 4, failed: 1 }), eventOf(bodies));
    assert.equal(
      line,
      'batch: 4 labeled, 1 failed, 0 duplicates, 0 retried: images/a b.png, images/b.png, images/c.png +2 more',
    );
  });
});
