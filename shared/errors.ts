import { CODE, type ErrorCode } from './error-codes.ts';

/**
 * Every condition a caller must tell apart is a subclass of LabelerError with a stable
 * `code` users can search for, declared in error-codes.ts (its kind, exit and HTTP status). `permanent` says whether retrying the same input can help:
 * a permanent failure becomes a failed result; a transient one is retried.
 */
export class LabelerError extends Error {
  readonly code: ErrorCode;
  readonly permanent: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; permanent?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.permanent = options.permanent ?? true;
  }
}

/** The image itself is unusable: never retried, recorded as a failed result. */
export class ImageError extends LabelerError {}

export class ImageEmptyError extends ImageError {
  constructor() {
    super(CODE.image.empty, 'the image has zero bytes');
  }
}

export class ImageTooLargeError extends ImageError {
  constructor(bytes: number, maxBytes: number) {
    super(CODE.image.tooLarge, `the image has ${bytes} bytes; the limit is ${maxBytes}`);
  }
}

export class UnsupportedFormatError extends ImageError {
  constructor(format: string, allowed: readonly string[]) {
    super(CODE.image.unsupportedFormat, `format ${format} is not accepted; accepted: ${allowed.join(', ')}`);
  }
}

export class TooManyPixelsError extends ImageError {
  constructor(width: number, height: number, maxPixels: number) {
    super(
      CODE.image.tooManyPixels,
      `the image is ${width}x${height} = ${width * height} pixels; the limit is ${maxPixels}`,
    );
  }
}

export class ImageDecodeError extends ImageError {
  constructor(detail: string, cause?: unknown) {
    super(CODE.image.decodeFailed, `the image could not be decoded: ${detail}`, { cause });
  }
}

/** The source object disappeared between the event and the read: permanent, nothing to label. */
export class ObjectNotFoundError extends LabelerError {
  constructor(location: string, cause?: unknown) {
    super(CODE.object.notFound, `${location} does not exist (deleted or overwritten since the event)`, {
      cause,
    });
  }
}

/**
 * Reading the object was refused in a way that retrying cannot change: the role lacks
 * s3:GetObject on it, a bucket policy or KMS key denies it (`object/access-denied`), or
 * it sits in an archive storage class and must be restored first (`object/archived`), or S3
 * calls the request itself invalid (`object/bad-request`).
 * Permanent: a failed result on the first receive, never five receives and the DLQ.
 */
export class ObjectUnreadableError extends LabelerError {
  constructor(
    code: typeof CODE.object.accessDenied | typeof CODE.object.archived | typeof CODE.object.badRequest,
    message: string,
    cause?: unknown,
  ) {
    super(code, message, { cause });
  }
}

/** Codes of LocalFileError, one per way a local path fails to be a readable image file. */
export const LOCAL_FILE_ERROR_CODES = [
  CODE.file.notFound,
  CODE.file.unreadable,
  CODE.file.notRegular,
  CODE.file.symlinkLoop,
] as const;
export type LocalFileErrorCode = (typeof LOCAL_FILE_ERROR_CODES)[number];

/**
 * A path named or found for labeling is missing, unreadable, a loop, or not a regular
 * file (a FIFO, device, socket): permanent, recorded as that path's failed row.
 */
export class LocalFileError extends LabelerError {
  constructor(code: LocalFileErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** The model folder is unusable. Raised at start-up; the process must not serve. */
export class ModelError extends LabelerError {}

/** A setting is missing or malformed. Raised at start-up. */
export class ConfigError extends LabelerError {
  constructor(message: string, cause?: unknown) {
    super(CODE.config.invalid, message, { cause });
  }
}

/** Wraps anything unexpected so the outcome still carries a code; retried. */
export class TransientError extends LabelerError {
  constructor(code: ErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause, permanent: false });
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
