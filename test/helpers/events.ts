import { encodeS3Key } from '../../shared/aws/s3-event.ts';

/** An S3 ObjectCreated notification body exactly as S3 sends it to SQS. */
export function s3EventBody(o: {
  bucket: string;
  key: string;
  eTag: string;
  size: number;
  sequencer?: string;
}): string {
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: '2026-11-27T12:00:00.000Z',
        eventName: 'ObjectCreated:Put',
        userIdentity: { principalId: 'AWS:TEST' },
        requestParameters: { sourceIPAddress: '127.0.0.1' },
        responseElements: { 'x-amz-request-id': 'TEST', 'x-amz-id-2': 'TEST' },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'test',
          bucket: { name: o.bucket, ownerIdentity: { principalId: 'TEST' }, arn: `arn:aws:s3:::${o.bucket}` },
          object: {
            key: encodeS3Key(o.key),
            size: o.size,
            eTag: o.eTag,
            sequencer: o.sequencer ?? '0062E99A88DC407460',
          },
        },
      },
    ],
  });
}
