import { type ParseArgsConfig, parseArgs } from 'node:util';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';

/**
 * Wrong command-line use, exit code 2: one line, then where the command's help is
 * ("see labeler <command> --help"); the whole help only where `showHelp` asks for it.
 */
export class UsageError extends LabelerError {
  /** Whether the command's whole help follows the message. @default false */
  readonly showHelp: boolean;

  constructor(message: string, options: { showHelp?: boolean } = {}) {
    super(CODE.cli.usage, message);
    this.showHelp = options.showHelp ?? false;
  }
}

export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({
      args: joinNegativeValues(argv, options),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(parseErrorMessage(error));
  }
}

/**
 * `--timeout -1`: node:util reads "-1" as an option and calls the value "ambiguous".
 * A value that looks like a negative number after an option that takes one is that
 * option's value (`--timeout=-1`), so the option's own check can say what is wrong with it.
 */
function joinNegativeValues(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig['options']>,
): string[] {
  const takesValue = new Set<string>();
  for (const [name, option] of Object.entries(options)) {
    if (option.type !== 'string') continue;
    takesValue.add(`--${name}`);
    if (option.short) takesValue.add(`-${option.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
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
