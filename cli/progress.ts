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
