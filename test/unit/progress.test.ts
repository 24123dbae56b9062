import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CountProgress, JobProgress, PercentProgress, Progress } from '../../cli/progress.ts';

function stream(isTTY: boolean) {
  const written: string[] = [];
  const fake = {
    isTTY,
    write: (text: string) => {
      written.push(text);
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { fake, written };
}

/** Each display given a stream, used as its command uses it. */
const displays = {
  labeling: (s: NodeJS.WriteStream) => {
    const p = new Progress(2, s);
    p.tick(1, 0);
    p.tick(1, 1);
    p.finish();
  },
  export: (s: NodeJS.WriteStream) => {
    const p = new CountProgress((rows) => `exported ${rows} results `, s);
    p.update(1200);
    p.finish();
  },
  job: (s: NodeJS.WriteStream) => {
    const p = new JobProgress(s);
    p.show(3, undefined, 0);
    p.show(5, 10, 1);
    p.finish();
  },
  percent: (s: NodeJS.WriteStream) => {
    const p = new PercentProgress(s);
    p.show(4, 10);
    p.show(10, 10);
    p.finish();
  },
};

describe('the progress displays', () => {
  for (const [name, use] of Object.entries(displays)) {
    it(`${name}: draws on the stream it is given when that stream is a terminal, and ends the line`, () => {
      const { fake, written } = stream(true);
      const stderrWrite = process.stderr.write;
      const onStderr: unknown[] = [];
      process.stderr.write = ((chunk: unknown) => onStderr.push(chunk) > 0) as typeof process.stderr.write;
      try {
        use(fake);
      } finally {
        process.stderr.write = stderrWrite;
      }
      assert.deepEqual(onStderr, [], 'nothing goes to process.stderr when another stream is given');
      assert.ok(written.length >= 2, `drawn: ${JSON.stringify(written)}`);
      assert.ok(written.slice(0, -1).every((w) => w.startsWith('\r')));
      assert.equal(written.at(-1), '\n');
    });

    it(`${name}: writes nothing when the stream is not a terminal`, () => {
      const { fake, written } = stream(false);
      use(fake);
      assert.deepEqual(written, []);
    });
  }

  it('the labeling bar shows done of total, failures and the rate', () => {
    const { fake, written } = stream(true);
    const p = new Progress(4, fake);
    p.tick(4, 1);
    assert.match(written[0] ?? '', /^\r\[#{30}\] 4\/4 failed 1 {2}[\d.]+ img\/s $/);
  });

  it('a job bar shows "?" for the total until planning is done, and the ETA once known', () => {
    const { fake, written } = stream(true);
    const p = new JobProgress(fake);
    p.show(0, undefined, 0);
    p.show(5, 10, 2);
    assert.match(written[0] ?? '', /^\r\[\.{30}\] 0\/\? failed 0 {2}[\d.]+ img\/s {2}ETA -- $/);
    assert.match(
      written[1] ?? '',
      /^\r\[#{15}\.{15}\] 5\/10 failed 2 {2}[\d.]+ img\/s {2}ETA (--|\d+m\d\ds|\d+h\d\dm) $/,
    );
  });

  it('percent steps draw each step of ten once', () => {
    const { fake, written } = stream(true);
    const p = new PercentProgress(fake);
    for (let done = 0; done <= 20; done++) p.show(done, 20);
    assert.deepEqual(
      written,
      [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((n) => `\r${n} %`),
    );
  });
});
