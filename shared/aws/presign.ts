import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/**
 * A presigned GET URL of one object, signed by the stack's own S3 client: the emulator's
 * endpoint locally, AWS with the person's credentials on a deployed stack. The results
 * page (`labeler ui`) and the review export (`labeler review export`) both sign with it.
 */
export function presignedGetUrl(
  s3: S3Client,
  bucket: string,
  key: string,
  expiresIn: number,
): Promise<string> {
  return getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });
}
