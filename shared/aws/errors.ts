import { CODE } from '../error-codes.ts';
import { errorMessage, LabelerError, TransientError } from '../errors.ts';

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'SlowDown',
  'TransactionConflictException',
  'TransactionInProgressException',
]);

/**
 * Gives an AWS SDK failure a code. A ValidationException is permanent
 * (`aws/invalid-request`); everything else that is not known to be permanent is
 * retryable: a retry that cannot help ends in the dead-letter queue, where it is
 * visible, rather than in a dropped message.
 */
export function toLabelerError(error: unknown, operation: string): LabelerError {
  if (error instanceof LabelerError) return error;
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  if (THROTTLING.has(name)) {
    return new TransientError(CODE.aws.throttled, `${operation} was throttled (${name})`, error);
  }
  if (status !== undefined && status >= 500) {
    return new TransientError(
      CODE.aws.unavailable,
      `${operation} failed with HTTP ${status} (${name})`,
      error,
    );
  }
  if (
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    /^E(CONN|TIMEDOUT|PIPE|AI_AGAIN|HOSTUNREACH)/.test(e?.code ?? '')
  ) {
    return new TransientError(
      CODE.aws.timeout,
      `${operation} timed out or lost its connection: ${errorMessage(error)}`,
      error,
    );
  }
  if (name === 'ValidationException' || cancelledAsInvalid(error)) {
    // DynamoDB (and others) refusing the request's shape or sizes, alone or as a transaction's
    // cancellation reason: the same request is refused on every retry, so it is never
    // transient (decision 0026).
    return new LabelerError(CODE.aws.invalidRequest, `${operation} was refused: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  return new TransientError(
    CODE.aws.requestFailed,
    `${operation} failed: ${name}: ${errorMessage(error)}`,
    error,
  );
}

/** A transaction DynamoDB cancelled because one of its items is invalid (too large a key or item). */
function cancelledAsInvalid(error: unknown): boolean {
  const e = error as { name?: string; CancellationReasons?: Array<{ Code?: string }> };
  return (
    e?.name === 'TransactionCanceledException' &&
    (e.CancellationReasons ?? []).some((r) => r.Code === 'ValidationError')
  );
}
