import { s3EventBody as writeS3EventBody } from '../../shared/labeling/s3-event.ts';

/** An S3 ObjectCreated notification body exactly as S3 sends it to SQS. */
export function s3EventBody(o: {
  bucket: string;
  key: string;
  eTag: string;
  size: number;
  sequencer?: string;
}): string {
  return writeS3EventBody([
    {
      region: 'us-east-1',
      eventTime: '2026-11-27T12:00:00.000Z',
      bucket: o.bucket,
      key: o.key,
      size: o.size,
      eTag: o.eTag,
      sequencer: o.sequencer ?? '0062E99A88DC407460',
      notification: {
        configurationId: 'test',
        principalId: 'AWS:TEST',
        ownerPrincipalId: 'TEST',
        sourceIp: '127.0.0.1',
        requestId: 'TEST',
        hostId: 'TEST',
      },
    },
  ]);
}
