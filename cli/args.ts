import { type ParseArgsConfig, parseArgs } from 'node:util';
import { LabelerError } from '../shared/errors.ts';

/** Wrong command-line use: printed with the command's help, exit code 2. */
export class UsageError extends LabelerError {
  /** Whether the command's help follows the message: not for a request refused as a whole. */
  readonly showHelp: boolean;

  constructor(message: string, options: { showHelp?: boolean } = {}) {
    super('cli/usage', message);
    this.showHelp = options.showHelp ?? true;
  }
}

export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(parseErrorMessage(error));
  }
}

/**
 * node:util's message for an unknown option ends with an unbalanced quote
 * (`as in '-- "--foo"`); say the same thing in balanced quotes.
 */
function parseErrorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /^Unknown option '(.*?)'\. /.exec(message);
  if ((error as { code?: string }).code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || !unknown) return message;
  const option = unknown[1] as string;
  return `unknown option "${option}" (a file whose name starts with "-" goes after "--", as in: -- ${option})`;
}

export function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`${name} must be a positive integer, got "${value}"`);
  return n;
}

export function unitInterval(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new UsageError(`${name} must be between 0 and 1, got "${value}"`);
  return n;
}

export function oneOf<const T extends string>(
  value: string | undefined,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}
