import { once } from 'node:events';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';

/**
 * Where an export goes. Nothing appears under the final name until `commit`: a failed or
 * interrupted export leaves no half file (a temporary file renamed into place; an S3
 * multipart upload completed only at the end, aborted otherwise).
 */
export interface Destination {
  /** What the user named, for messages. */
  readonly name: string;
  /** Resolves when the destination can take more. */
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  /** Discards what was written; safe to call at any time, more than once, and after commit (then it does nothing). */
  abort(): Promise<void>;
}

/**
 * A local file, written as `.<name>.<pid>.tmp` beside it and renamed over it at the end,
 * so a reader of the name sees the old file or the whole new one, never part of one.
 */
export async function fileDestination(path: string): Promise<Destination> {
  const target = resolve(path);
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx');
  } catch (error) {
    throw new LabelerError(
      CODE.export.writeFailed,
      `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} creating a file in ${dirname(target)}`,
      { cause: error },
    );
  }
  const file = handle;
  let state: 'open' | 'committed' | 'aborted' = 'open';
  const fail = (error: unknown): never => {
    throw new LabelerError(CODE.export.writeFailed, `cannot write ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  };
  return {
    name: path,
    async write(chunk) {
      await file.write(chunk).catch(fail);
    },
    async commit() {
      await file.sync().catch(fail);
      await file.close().catch(fail);
      await rename(temporary, target).catch(fail);
      state = 'committed';
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      await file.close().catch(() => undefined);
      await rm(temporary, { force: true });
    },
  };
}

/** A stream written as it comes, such as standard output (`--out -`); nothing to take back on abort. */
export function streamDestination(
  name: string,
  stream: NodeJS.WritableStream & { writableNeedDrain: boolean },
): Destination {
  return {
    name,
    async write(chunk) {
      if (!stream.write(chunk)) await once(stream, 'drain');
    },
    async commit() {
      if (stream.writableNeedDrain) await once(stream, 'drain');
    },
    async abort() {},
  };
}
