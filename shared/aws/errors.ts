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
 * Gives an AWS SDK failure a code. Everything that is not known to be permanent is
 * retryable: a retry that cannot help ends in the dead-letter queue, where it is
 * visible, rather than in a dropped message.
 */
export function toLabelerError(error: unknown, operation: string): LabelerError {
  if (error instanceof LabelerError) return error;
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  if (THROTTLING.has(name)) {
    return new TransientError('aws/throttled', `${operation} was throttled (${name})`, error);
  }
  if (status !== undefined && status >= 500) {
    return new TransientError('aws/unavailable', `${operation} failed with HTTP ${status} (${name})`, error);
  }
  if (
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    /^E(CONN|TIMEDOUT|PIPE|AI_AGAIN|HOSTUNREACH)/.test(e?.code ?? '')
  ) {
    return new TransientError(
      'aws/timeout',
      `${operation} timed out or lost its connection: ${errorMessage(error)}`,
      error,
    );
  }
  return new TransientError(
    'aws/request-failed',
    `${operation} failed: ${name}: ${errorMessage(error)}`,
    error,
  );
}
