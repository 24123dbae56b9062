import { type UploadReport, type UploadRequest, uploadDataset } from '../shared/aws/upload-dataset.ts';
import { reportAccuracy } from './output.ts';
import { Progress, TransferProgress } from './progress.ts';
import { resultsStoreOf, type StackConnection } from './stack.ts';

/**
 * A dataset's upload on a stack as `labeler upload` and `labeler local run` show it: its
 * rows as JSON lines on stdout, progress bars and the accuracy on stderr.
 */
export async function runUpload(
  stack: StackConnection,
  request: Omit<UploadRequest, 'onRows' | 'transferProgress' | 'resultsProgress'>,
): Promise<UploadReport> {
  const report = await uploadDataset(
    { s3: stack.clients.s3, imagesBucket: stack.resources.imagesBucket, results: resultsStoreOf(stack) },
    {
      ...request,
      onRows: (rows) => process.stdout.write(`${rows.map((row) => JSON.stringify(row)).join('\n')}\n`),
      transferProgress: (files, bytes) => new TransferProgress(files, bytes),
      resultsProgress: (objects) => new Progress(objects),
    },
  );
  reportAccuracy(report.results?.accuracy);
  return report;
}
