// Where a job reads, from --bucket and --prefix as typed (issue 20, item 6): one folder rule
// for upload and jobs, and an s3:// URL where a key prefix belongs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizePrefix } from '../../cli/upload-command.ts';
import type { LabelerError } from '../../shared/errors.ts';
import { folderPrefix, jobLocation } from '../../shared/labeling/job-location.ts';
import { parseJobRequest } from '../../shared/labeling/plan-job.ts';

describe('job location', () => {
  it('a prefix names a folder: a "/" is added, as upload adds it', () => {
    for (const [typed, folder] of [
      ['datasets/h1', 'datasets/h1/'],
      ['datasets/h1/', 'datasets/h1/'],
      ['', ''],
    ] as const) {
      assert.equal(folderPrefix(typed), folder);
      assert.equal(normalizePrefix(typed), folder, 'upload: the same rule');
      assert.equal(
        parseJobRequest({ bucket: 'labeler-images', prefix: typed }).prefix,
        folder,
        'the service too',
      );
    }
    assert.throws(() => folderPrefix('/datasets'), /must not start with "\/"/);
    assert.throws(() => normalizePrefix('/datasets'), /must not start with "\/"/);
  });

  it('an s3:// URL as the prefix is the bucket and the key prefix', () => {
    assert.deepEqual(jobLocation({ prefix: 's3://labeler-images/datasets/h1/' }, 'default-bucket'), {
      bucket: 'labeler-images',
      prefix: 'datasets/h1/',
    });
    assert.deepEqual(jobLocation({ prefix: 's3://other-bucket' }, 'default-bucket'), {
      bucket: 'other-bucket',
      prefix: '',
    });
    assert.deepEqual(
      jobLocation({ bucket: 'labeler-images', prefix: 'S3://labeler-images/x' }, 'default-bucket'),
      { bucket: 'labeler-images', prefix: 'x' },
      'with the same --bucket',
    );
    assert.deepEqual(jobLocation({ prefix: 'datasets/h1/' }, 'default-bucket'), {
      bucket: 'default-bucket',
      prefix: 'datasets/h1/',
    });
  });

  it('refuses an s3:// URL naming another bucket than --bucket, or none, saying what to give', () => {
    assert.throws(
      () => jobLocation({ bucket: 'mine', prefix: 's3://labeler-images/datasets/' }, 'default-bucket'),
      (e: LabelerError) =>
        e.code === 'job/invalid-request' &&
        /names bucket labeler-images but --bucket is mine/.test(e.message) &&
        /--bucket mine --prefix <key prefix>, or the s3:\/\/ URL alone/.test(e.message),
    );
    assert.throws(
      () => jobLocation({ prefix: 's3:///datasets/' }, 'default-bucket'),
      (e: LabelerError) => e.code === 'job/invalid-request' && /without a bucket/.test(e.message),
    );
    // The service never takes a URL for a key prefix (a scheduled or hand-made request).
    assert.throws(
      () => parseJobRequest({ bucket: 'labeler-images', prefix: 's3://labeler-images/datasets/h1/' }),
      (e: LabelerError) => e.code === 'job/invalid-request' && /not an s3:\/\/ URL/.test(e.message),
    );
  });
});
