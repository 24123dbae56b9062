import { constants } from 'node:os';
import type { AccuracyCounter } from '../shared/labeling/accuracy.ts';

/** Labels as the JSON Lines contract prints them: one shape for `label`, `local run` and `query`. */
export { printedLabels } from '../shared/labeling/results.ts';

export function reportAccuracy(accuracy: AccuracyCounter | undefined): void {
  if (!accuracy) return;
  const r = accuracy.report();
  process.stderr.write(`top-1 accuracy: ${(r.accuracy * 100).toFixed(1)} % (${r.correct}/${r.compared})\n`);
}

/**
 * A word of a suggested command line as a POSIX shell reads it back: as it is when it is
 * plain, otherwise in single quotes (an empty prefix is `''`, not a missing argument).
 */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** "1 file", "2 files": a count with its noun in the right number. */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

/**
 * The status a shell reports for a process ended by `signal` (128 + its number): 130 for
 * SIGINT (Ctrl-C), 143 for SIGTERM. A command that stops early on a signal exits with it.
 */
export function signalStatus(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** The status a shell reports for a process ended by SIGPIPE (128 + 13), as `cat` is in `cat f | head -1`. */
export const CLOSED_PIPE_STATUS = 141;

/**
 * Resolves once what was written to stdout has gone out; never, when its reader has gone
 * away (the EPIPE then ends the process with CLOSED_PIPE_STATUS). A note on stderr that
 * follows the rows (`next: --cursor ...`) waits for this, so `| head -1` does not get it.
 */
export function stdoutWritten(): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.write('', (error) => {
      if (!error) resolve();
    });
  });
}

/**
 * When the reader of stdout or stderr goes away (`labeler label dir | head -1`), ends
 * the process at once and quietly, as `cat` does: no stack trace, no further output,
 * status CLOSED_PIPE_STATUS so a script can tell the rows were cut short. Node ignores
 * SIGPIPE, so without this the failed write surfaces as an unhandled EPIPE error.
 */
export function endQuietlyOnClosedPipe(
  streams: readonly NodeJS.WriteStream[] = [process.stdout, process.stderr],
) {
  for (const stream of streams) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(CLOSED_PIPE_STATUS);
      throw error;
    });
  }
}
