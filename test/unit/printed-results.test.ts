import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printedLabels as cliPrintedLabels } from '../../cli/output.ts';
import { type ImageResult, printedHit, printedLabels, printedResult } from '../../shared/labeling/results.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';

const stored: ImageResult = {
  bucket: 'b',
  key: 'k.png',
  eTag: 'e',
  size: 1,
  sequencer: paddedSequencer('0A'),
  model: { id: 'm', version: '1' },
  status: 'ok',
  labels: [{ label: 'A', score: 0.123456789 }],
  timings: { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 },
  labeledAt: '2026-11-27T00:00:00.000Z',
  jobId: 'j',
};

describe('one printed shape for a result (label, local run, query)', () => {
  it('rounds scores to six decimals, with the one function the CLI uses', () => {
    assert.equal(cliPrintedLabels, printedLabels);
    assert.deepEqual(printedLabels([{ label: 'A', score: 0.1234565001 }]), [{ label: 'A', score: 0.123457 }]);
    assert.deepEqual(printedHit({ bucket: 'b', key: 'k', label: 'A', score: 1 / 3, rank: 2 }), {
      bucket: 'b',
      key: 'k',
      label: 'A',
      score: 0.333333,
      rank: 2,
    });
  });

  it('prints labels for an ok result and the error for a failed one, without storage details', () => {
    assert.deepEqual(printedResult(stored), {
      bucket: 'b',
      key: 'k.png',
      eTag: 'e',
      model: 'm',
      modelVersion: '1',
      status: 'ok',
      labels: [{ label: 'A', score: 0.123457 }],
      jobId: 'j',
      labeledAt: '2026-11-27T00:00:00.000Z',
    });
    const error = { code: 'image/empty', message: 'the image has zero bytes' };
    const failed = printedResult({ ...stored, status: 'failed', labels: [], error });
    assert.deepEqual(failed.error, error);
    assert.equal('labels' in failed, false);
  });
});
