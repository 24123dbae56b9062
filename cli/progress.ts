/**
 * Every progress display of the CLI: one line redrawn in place with "\r" on the stream it
 * is given (stderr by default), only when that stream is a terminal, so piped and
 * redirected output never carries progress; `finish` ends the line once something was drawn.
 */
class StatusLine {
  readonly #stream: NodeJS.WriteStream;
  readonly #enabled: boolean;
  /** The least time between two draws; a forced draw (the last one) ignores it. */
  readonly #intervalMs: number;
  #lastDraw = 0;
  #drawn = false;

  constructor(stream: NodeJS.WriteStream, enabled: boolean, intervalMs: number) {
    this.#stream = stream;
    this.#enabled = Boolean(stream.isTTY) && enabled;
    this.#intervalMs = intervalMs;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Draws the line `text()` makes, unless one was drawn within the interval and `force` is false. */
  draw(text: (now: number) => string, force = false): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (!force && now - this.#lastDraw < this.#intervalMs) return;
    this.#lastDraw = now;
    this.#drawn = true;
    this.#stream.write(`\r${text(now)}`);
  }

  finish(): void {
    if (this.#drawn) this.#stream.write('\n');
    this.#drawn = false;
  }
}

const BAR_WIDTH = 30;

/** `[#####.....]` for a fraction from 0 to 1. */
function bar(fraction: number): string {
  const filled = Math.max(0, Math.min(BAR_WIDTH, Math.round(fraction * BAR_WIDTH)));
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

/** Images labeled of a known number, with failures and the rate: `label`, and `upload --wait`. */
export class Progress {
  readonly #total: number;
  readonly #line: StatusLine;
  readonly #started = Date.now();
  #done = 0;
  #failed = 0;

  constructor(total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#total = total;
    this.#line = new StatusLine(stream, total > 0, 100);
  }

  tick(count: number, failed: number): void {
    this.#done += count;
    this.#failed += failed;
    this.#line.draw((now) => {
      const seconds = (now - this.#started) / 1000;
      const rate = seconds > 0 ? this.#done / seconds : 0;
      return (
        `${bar(this.#done / this.#total)} ${this.#done}/${this.#total}` +
        ` failed ${this.#failed}  ${rate.toFixed(1)} img/s `
      );
    }, this.#done >= this.#total);
  }

  finish(): void {
    this.#line.finish();
  }
}

/** An upload's files done of all, bytes sent of those to send, the rate and the time left at that rate. */
export class TransferProgress {
  readonly #files: number;
  readonly #bytes: number;
  readonly #line: StatusLine;
  readonly #started = Date.now();
  #filesDone = 0;
  #bytesDone = 0;

  constructor(files: number, bytes: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#files = files;
    this.#bytes = bytes;
    this.#line = new StatusLine(stream, files > 0, 100);
  }

  bytes(delta: number): void {
    this.#bytesDone += delta;
    this.#line.draw((now) => this.line(now));
  }

  /** A file is done; `unsent` of its bytes will never go (already present, refused, failed). */
  file(unsent = 0): void {
    this.#filesDone++;
    this.#bytesDone += unsent;
    this.#line.draw((now) => this.line(now));
  }

  finish(): void {
    this.#line.draw((now) => this.line(now), true);
    this.#line.finish();
  }

  /** The line as drawn now; exported for tests. */
  line(now = Date.now()): string {
    const fraction = this.#bytes > 0 ? this.#bytesDone / this.#bytes : this.#filesDone / this.#files;
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? this.#bytesDone / seconds : 0;
    const left = this.#bytes - this.#bytesDone;
    // The first second's rate says little about the rest.
    const eta = rate > 0 && seconds >= 1 ? formatDuration(left / rate) : '--';
    return (
      `${bar(fraction)} ${this.#filesDone}/${this.#files} files` +
      `  ${formatBytes(this.#bytesDone)}/${formatBytes(this.#bytes)}  ${formatBytes(rate)}/s  ETA ${eta} `
    );
  }
}

/** A count with no known end, such as "exported 1200 results" (`export`). */
export class CountProgress {
  readonly #line: StatusLine;
  readonly #text: (count: number) => string;

  constructor(text: (count: number) => string, stream: NodeJS.WriteStream = process.stderr) {
    this.#text = text;
    this.#line = new StatusLine(stream, true, 200);
  }

  update(count: number): void {
    this.#line.draw(() => this.#text(count));
  }

  finish(): void {
    this.#line.finish();
  }
}

/**
 * A job's images accounted for, of a total known once planning is done, with failures,
 * the rate since the wait began and the time left (`jobs start --wait`, `jobs wait`).
 */
export class JobProgress {
  readonly #line: StatusLine;
  readonly #started = Date.now();
  #startDone: number | undefined;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#line = new StatusLine(stream, true, 0);
  }

  show(done: number, total: number | undefined, failed: number): void {
    if (!this.#line.enabled) return;
    this.#startDone ??= done;
    const startDone = this.#startDone;
    this.#line.draw((now) => {
      const seconds = (now - this.#started) / 1000;
      const rate = seconds > 0 ? (done - startDone) / seconds : 0;
      const eta = total && rate > 0 ? formatDuration((total - done) / rate) : '--';
      return (
        `${bar(total ? done / total : 0)} ${done}/${total ?? '?'}` +
        ` failed ${failed}  ${rate.toFixed(1)} img/s  ETA ${eta} `
      );
    }, true);
  }

  finish(): void {
    this.#line.finish();
  }
}

/** "40 %" in steps of ten (`model pull`, `model quantize`). */
export class PercentProgress {
  readonly #line: StatusLine;
  #last = -1;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#line = new StatusLine(stream, true, 0);
  }

  show(done: number, total: number): void {
    const percent = Math.floor((done / total) * 10) * 10;
    if (percent === this.#last) return;
    this.#last = percent;
    this.#line.draw(() => `${percent} %`, true);
  }

  finish(): void {
    this.#line.finish();
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** "3m07s", or "1h02m" from an hour on. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
