import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeS3Key,
  encodeS3Key,
  paddedSequencer,
  parseS3EventBody,
} from '../../shared/labeling/s3-event.ts';
import { s3EventBody } from '../helpers/events.ts';

describe('S3 event notifications', () => {
  it('decodes form-encoded keys: + is a space, then percent-decoding', () => {
    assert.equal(decodeS3Key('photos/a+b%2Bc.jpg'), 'photos/a b+c.jpg');
    assert.equal(decodeS3Key('%E6%97%A5%E6%9C%AC/%25.png'), '日本/%.png');
  });

  it('encodes keys the way S3 does, and round-trips', () => {
    const key = 'images/with space/1+1=2/ünï/%41.png';
    assert.equal(encodeS3Key('a b+c/d.png'), 'a+b%2Bc/d.png');
    assert.equal(decodeS3Key(encodeS3Key(key)), key);
  });

  it('parses an ObjectCreated event into object references with unquoted eTags', () => {
    const body = JSON.parse(s3EventBody({ bucket: 'b', key: 'images/a b.png', eTag: 'abc', size: 7 }));
    body.Records[0].s3.object.eTag = '"abc"';
    const parsed = parseS3EventBody(JSON.stringify(body));
    assert.deepEqual(parsed, {
      kind: 'objects',
      objects: [
        {
          bucket: 'b',
          key: 'images/a b.png',
          eTag: 'abc',
          size: 7,
          sequencer: '0062E99A88DC407460',
          eventName: 'ObjectCreated:Put',
        },
      ],
    });
  });

  it('keeps the job id plan-job adds, and ignores records that are not ObjectCreated', () => {
    const body = JSON.parse(s3EventBody({ bucket: 'b', key: 'k', eTag: 'e', size: 1 }));
    body.Records.push({ ...body.Records[0], eventName: 'ObjectRemoved:Delete' });
    body.labelerJobId = 'job-1';
    const parsed = parseS3EventBody(JSON.stringify(body));
    assert.equal(parsed.kind, 'objects');
    assert.equal(parsed.kind === 'objects' && parsed.objects.length, 1);
    assert.equal(parsed.kind === 'objects' && parsed.objects[0]?.jobId, 'job-1');
  });

  it("keeps the job's mode beside its id; without a mode (an older message) there is none", () => {
    const body = JSON.parse(s3EventBody({ bucket: 'b', key: 'k', eTag: 'e', size: 1 }));
    const refOf = (extra: Record<string, unknown>) => {
      const parsed = parseS3EventBody(JSON.stringify({ ...body, ...extra }));
      return parsed.kind === 'objects' ? parsed.objects[0] : undefined;
    };
    assert.equal(refOf({ labelerJobId: 'job-1', labelerJobMode: 'all' })?.jobMode, 'all');
    assert.equal(refOf({ labelerJobId: 'job-1', labelerJobMode: 'stale' })?.jobMode, 'stale');
    assert.equal(refOf({ labelerJobId: 'job-1' })?.jobMode, undefined);
    assert.equal(refOf({ labelerJobMode: 'all' })?.jobMode, undefined, 'a mode without a job means nothing');
    assert.equal(parseS3EventBody(JSON.stringify({ ...body, labelerJobMode: 'some' })).kind, 'invalid');
  });

  it('recognises the s3:TestEvent and refuses anything else with a reason', () => {
    assert.deepEqual(
      parseS3EventBody(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' })),
      { kind: 'test' },
    );
    assert.deepEqual(parseS3EventBody('not json'), {
      kind: 'invalid',
      reason: 'the message body is not JSON',
    });
    const wrong = parseS3EventBody('{"Records": [{"eventSource": "aws:sqs"}]}');
    assert.equal(wrong.kind, 'invalid');
    assert.match(wrong.kind === 'invalid' ? wrong.reason : '', /Records\.0\.eventSource/);
  });

  it('pads sequencers so that later events compare greater as strings', () => {
    assert.ok(paddedSequencer('0055AED6DCD90281E5') < paddedSequencer('0055AED6DCD90281E6'));
    assert.ok(paddedSequencer('FF') < paddedSequencer('100'));
  });
});
