import { type ParseArgsConfig, parseArgs } from 'node:util';
import { LabelerError } from '../shared/errors.ts';

/** Wrong command-line use: printed with the command's help, exit code 2. */
export class UsageError extends LabelerError {
  constructor(message: string) {
    super('cli/usage', message);
  }
}

export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
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
