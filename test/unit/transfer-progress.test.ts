import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransferProgress } from '../../cli/progress.ts';

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

describe('the upload progress line', () => {
  it('shows files, bytes, rate and time left on a terminal', () => {
    const { fake, written } = stream(true);
    const progress = new TransferProgress(4, 4 * 1024 * 1024, fake);
    progress.bytes(2 * 1024 * 1024);
    progress.file();
    progress.file(1024 * 1024);

    const line = progress.line(Date.now() + 2000);
    assert.match(line, /\[#{23}\.{7}\] 2\/4 files {2}3\.0 MiB\/4\.0 MiB {2}1\.5 MiB\/s {2}ETA 0m01s/);
    progress.finish();
    assert.ok(written.length > 0 && written.every((w) => w.startsWith('\r') || w === '\n'));
  });

  it('writes nothing when stderr is not a terminal', () => {
    const { fake, written } = stream(false);
    const progress = new TransferProgress(2, 100, fake);
    progress.bytes(50);
    progress.file();
    progress.finish();
    assert.deepEqual(written, []);
  });
});
