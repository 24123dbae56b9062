/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
export class Progress {
  readonly #total: number;
  readonly #enabled: boolean;
  readonly #started = Date.now();
  #done = 0;
  #failed = 0;
  #lastDraw = 0;

  constructor(total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#total = total;
    this.#enabled = Boolean(stream.isTTY) && total > 0;
  }

  tick(count: number, failed: number): void {
    this.#done += count;
    this.#failed += failed;
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#lastDraw < 100 && this.#done < this.#total) return;
    this.#lastDraw = now;
    const width = 30;
    const filled = Math.round((this.#done / this.#total) * width);
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? this.#done / seconds : 0;
    process.stderr.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.#done}/${this.#total}` +
        ` failed ${this.#failed}  ${rate.toFixed(1)} img/s `,
    );
  }

  finish(): void {
    if (this.#enabled) process.stderr.write('\n');
  }
}

/**
 * An upload's progress line on stderr, drawn only on a terminal: files done of all,
 * bytes sent of those to send, the rate and the time left at that rate.
 */
export class TransferProgress {
  readonly #files: number;
  readonly #bytes: number;
  readonly #stream: NodeJS.WriteStream;
  readonly #enabled: boolean;
  readonly #started = Date.now();
  #filesDone = 0;
  #bytesDone = 0;
  #lastDraw = 0;

  constructor(files: number, bytes: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#files = files;
    this.#bytes = bytes;
    this.#stream = stream;
    this.#enabled = Boolean(stream.isTTY) && files > 0;
  }

  bytes(delta: number): void {
    this.#bytesDone += delta;
    this.#draw();
  }

  /** A file is done; `unsent` of its bytes will never go (already present, refused, failed). */
  file(unsent = 0): void {
    this.#filesDone++;
    this.#bytesDone += unsent;
    this.#draw();
  }

  finish(): void {
    if (!this.#enabled) return;
    this.#lastDraw = 0;
    this.#draw();
    this.#stream.write('\n');
  }

  /** The line as drawn now; exported for tests. */
  line(now = Date.now()): string {
    const width = 30;
    const fraction = this.#bytes > 0 ? this.#bytesDone / this.#bytes : this.#filesDone / this.#files;
    const filled = Math.min(width, Math.round(fraction * width));
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? this.#bytesDone / seconds : 0;
    const left = this.#bytes - this.#bytesDone;
    // The first second's rate says little about the rest.
    const eta = rate > 0 && seconds >= 1 ? formatSeconds(left / rate) : '--';
    return (
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.#filesDone}/${this.#files} files` +
      `  ${formatBytes(this.#bytesDone)}/${formatBytes(this.#bytes)}  ${formatBytes(rate)}/s  ETA ${eta} `
    );
  }

  #draw(): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#lastDraw < 100) return;
    this.#lastDraw = now;
    this.#stream.write(`\r${this.line(now)}`);
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
