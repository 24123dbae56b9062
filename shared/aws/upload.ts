import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CODE } from '../error-codes.ts';
import {
  ImageEmptyError,
  ImageTooLargeError,
  LabelerError,
  LocalFileError,
  UnsupportedFormatError,
} from '../errors.ts';
import { IMAGE_FORMATS, type ImageFormat, sniffFormat } from '../image/formats.ts';
import { mapLimit } from '../labeling/image-labeler.ts';
import { toLabelerError } from './errors.ts';

export interface Uploaded {
  readonly file: string;
  readonly bucket: string;
  readonly key: string;
  readonly eTag: string;
  readonly size: number;
}

/**
 * One file's upload: stored now (`uploaded`), already stored with the same content
 * (`present`, not sent again), refused or failed (an error for its row: permanent for
 * the file itself, transient for the transfer), or never started (`skipped`, after an abort).
 */
export type UploadOutcome =
  | ({ readonly status: 'uploaded' } & Uploaded)
  | ({ readonly status: 'present' } & Uploaded)
  | { readonly status: 'failed'; readonly file: string; readonly key: string; readonly error: LabelerError }
  | { readonly status: 'skipped'; readonly file: string; readonly key: string };

/**
 * Parts for multipart uploads. S3 needs at least 5 MiB per part but the last; the local
 * emulator takes at most 11 MiB per request, so one PUT cannot carry every image the
 * pipeline accepts (IMAGE_LIMITS.maxBytes).
 */
export const UPLOAD_PART_BYTES = 5 * 1024 * 1024;

/**
 * User metadata holding the SHA-256 of the object's content, written at upload. A later
 * upload compares it (one HEAD) to skip what is already there: an ETag cannot serve, as
 * a multipart upload's ETag is not the content's MD5 and depends on the part size.
 */
export const CONTENT_SHA256_METADATA = 'sha256';

/** Bytes read to name a file's format (SVG detection looks at the first kilobyte). */
const SNIFF_BYTES = 4096;

/** S3's limit on an object key, in UTF-8 bytes; an emulator may accept longer ones, S3 does not. */
export const MAX_KEY_BYTES = 1024;

/** `upload/key-too-long` when S3 would refuse `key`; undefined when it fits. */
export function keyTooLong(key: string, file: string): LabelerError | undefined {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes <= MAX_KEY_BYTES) return undefined;
  return new LabelerError(
    CODE.upload.keyTooLong,
    `${file} would be stored as a key of ${bytes} bytes; S3 keys hold at most ${MAX_KEY_BYTES}; not sent`,
  );
}

/** The S3 key for a file below `root`: `prefix` + its relative path with `/` separators. */
export function keyFor(prefix: string, root: string, file: string): string {
  const rel = relative(root, file).split(sep).join('/');
  return `${prefix}${rel === '' ? file.split(sep).pop() : rel}`;
}

export interface UploadOptions {
  readonly bucket: string;
  readonly prefix: string;
  /** Keys are `prefix` + the path below `root`, unless `keyOf` names them. */
  readonly root?: string;
  readonly keyOf?: (file: string, index: number) => string;
  readonly maxBytes: number;
  /** Files in flight at once. @default 16 */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /** Bytes sent so far grew by `delta` (multipart parts as they go, a small file when stored). */
  readonly onBytes?: (delta: number) => void;
  /** A file's outcome, as soon as it is known; `index` is its place in `files`. */
  readonly onOutcome?: (outcome: UploadOutcome, index: number) => void;
}

/**
 * Uploads image files concurrently, multipart above UPLOAD_PART_BYTES; one outcome per
 * file, in input order. A file is refused without being sent when it is over `maxBytes`,
 * empty, or not an image in an accepted format (sniffed from its first bytes, never its
 * name). A file already stored under its key with the same SHA-256 is not sent again,
 * so an interrupted upload resumes where it stopped. A file that cannot be read or
 * stored fails alone. Once `signal` aborts, files not started are skipped.
 */
export async function uploadFiles(
  s3: S3Client,
  options: UploadOptions,
  files: readonly string[],
): Promise<UploadOutcome[]> {
  const keyOf = options.keyOf ?? ((file: string) => keyFor(options.prefix, options.root ?? '.', file));
  return mapLimit(files, options.concurrency ?? 16, async (file, index): Promise<UploadOutcome> => {
    const outcome = await uploadOne(s3, options, file, keyOf(file, index));
    options.onOutcome?.(outcome, index);
    return outcome;
  });
}

async function uploadOne(
  s3: S3Client,
  options: UploadOptions,
  file: string,
  key: string,
): Promise<UploadOutcome> {
  if (options.signal?.aborted) return { status: 'skipped', file, key };
  const { bucket } = options;
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((cause: unknown) => {
      throw unreadable(file, cause);
    });
    const info = await handle.stat();
    if (!info.isFile()) throw new LocalFileError(CODE.file.notRegular, `${file} is not a regular file`);
    const size = info.size;
    if (size > options.maxBytes) throw new ImageTooLargeError(size, options.maxBytes);
    if (size === 0) throw new ImageEmptyError();
    const format = await sniff(handle, file);
    // A file that fits one part is read once, hashed and sent from memory; a larger one
    // is hashed in one pass and streamed in a second, never held whole.
    const whole = size <= UPLOAD_PART_BYTES ? await readAll(handle, file) : undefined;
    const sha256 = whole ? createHash('sha256').update(whole).digest('hex') : await hashOf(handle, file);
    const stored = await storedWith(s3, bucket, key, sha256, size);
    if (stored !== undefined) return { status: 'present', file, bucket, key, eTag: stored, size };
    const eTag = await put(s3, options, { key, format, sha256, size, body: whole ?? handle });
    return { status: 'uploaded', file, bucket, key, eTag, size };
  } catch (error) {
    return {
      status: 'failed',
      file,
      key,
      error: toLabelerError(error, `upload of ${file} to s3://${bucket}/${key}`),
    };
  } finally {
    await handle?.close();
  }
}

async function sniff(handle: FileHandle, file: string): Promise<ImageFormat> {
  const head = Buffer.alloc(SNIFF_BYTES);
  const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0).catch((cause: unknown) => {
    throw unreadable(file, cause);
  });
  const format = sniffFormat(head.subarray(0, bytesRead));
  if (!(IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new UnsupportedFormatError(format, IMAGE_FORMATS);
  }
  return format as ImageFormat;
}

async function readAll(handle: FileHandle, file: string): Promise<Buffer> {
  return handle.readFile().catch((cause: unknown) => {
    throw unreadable(file, cause);
  });
}

async function hashOf(handle: FileHandle, file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of handle.createReadStream({ start: 0, autoClose: false })) hash.update(chunk);
  } catch (cause) {
    throw unreadable(file, cause);
  }
  return hash.digest('hex');
}

/** The stored object's eTag when it holds exactly this content; undefined when absent or different. */
async function storedWith(
  s3: S3Client,
  bucket: string,
  key: string,
  sha256: string,
  size: number,
): Promise<string | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const same = head.Metadata?.[CONTENT_SHA256_METADATA] === sha256 && head.ContentLength === size;
    return same ? unquote(head.ETag) : undefined;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return undefined;
    throw error;
  }
}

async function put(
  s3: S3Client,
  options: UploadOptions,
  object: { key: string; format: ImageFormat; sha256: string; size: number; body: Buffer | FileHandle },
): Promise<string> {
  const body = Buffer.isBuffer(object.body)
    ? object.body
    : object.body.createReadStream({ start: 0, autoClose: false });
  const upload = new Upload({
    client: s3,
    params: {
      Bucket: options.bucket,
      Key: object.key,
      Body: body,
      // A stream from a file handle has no length lib-storage can read; it checks the parts against it.
      ContentLength: object.size,
      ContentType: `image/${object.format}`,
      Metadata: { [CONTENT_SHA256_METADATA]: object.sha256 },
    },
    partSize: UPLOAD_PART_BYTES,
    queueSize: 2,
    // A failed multipart upload is aborted, so no orphaned parts stay behind.
    leavePartsOnError: false,
  });
  let reported = 0;
  upload.on('httpUploadProgress', (progress) => {
    const loaded = Math.min(progress.loaded ?? 0, object.size);
    if (loaded > reported) {
      options.onBytes?.(loaded - reported);
      reported = loaded;
    }
  });
  const response = await upload.done();
  if (reported < object.size) options.onBytes?.(object.size - reported);
  return unquote(response.ETag);
}

function unquote(eTag: string | undefined): string {
  return (eTag ?? '').replace(/^"|"$/g, '');
}

function unreadable(file: string, cause: unknown): LabelerError {
  if (cause instanceof LabelerError) return cause;
  return new LocalFileError(
    CODE.file.unreadable,
    `${file} cannot be read: ${(cause as Error).message}`,
    cause,
  );
}
