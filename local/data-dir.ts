import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';

/** Why a folder cannot hold a local stack's state: `local/bad-data-dir`, one line, no stack trace. */
export class DataDirError extends LabelerError {
  constructor(dataDir: string, detail: string, cause?: unknown) {
    super(
      CODE.local.badDataDir,
      `--data-dir ${dataDir}: ${detail}; choose a folder you can write (--data-dir <dir>)`,
      cause === undefined ? {} : { cause },
    );
  }
}

/** What an errno means for a folder, in words. */
function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'ENOTDIR':
      return 'a part of the path is a file, not a folder (ENOTDIR)';
    case 'EROFS':
      return 'the file system is read-only (EROFS)';
    case 'ENOSPC':
      return 'no space left on the device (ENOSPC)';
    case 'ENOENT':
      return 'it cannot be created there (ENOENT)';
    default:
      return code ? `${(error as Error).message}` : String(error);
  }
}

/**
 * The nearest folder of `dir` that exists, and the folders below it still to create.
 * Walks up with `stat`, never `mkdir -p`: Node's recursive mkdir loops forever where a
 * parent refuses new entries with ENOENT (/proc/nope).
 */
async function existingAncestor(dataDir: string, dir: string): Promise<{ base: string; missing: string[] }> {
  const missing: string[] = [];
  let current = resolve(dir);
  for (;;) {
    const info = await stat(current).catch((error: unknown) => error as NodeJS.ErrnoException);
    if (info instanceof Error) {
      const parent = dirname(current);
      // ENOTDIR: a file further up; walking on finds it and names it.
      if ((info.code !== 'ENOENT' && info.code !== 'ENOTDIR') || parent === current) {
        throw new DataDirError(dataDir, `cannot use ${current}: ${reason(info)}`, info);
      }
      missing.unshift(current);
      current = parent;
      continue;
    }
    if (!info.isDirectory()) throw new DataDirError(dataDir, `${current} is a file, not a folder`);
    return { base: current, missing };
  }
}

/** A folder that exists, or can be created, and can be written: otherwise a DataDirError. */
async function writable(dataDir: string, dir: string): Promise<void> {
  await access(dir, constants.W_OK | constants.X_OK).catch((error: unknown) => {
    throw new DataDirError(dataDir, `cannot write in ${dir}: ${reason(error)}`, error);
  });
}

/** Creates `dir` (and its parents) for a local stack's state, or says in one line why it cannot. */
export async function prepareDataDir(dataDir: string, dir = dataDir): Promise<void> {
  const { base, missing } = await existingAncestor(dataDir, dir);
  if (missing.length === 0) return writable(dataDir, base);
  for (const folder of missing) {
    await mkdir(folder).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw new DataDirError(dataDir, `cannot create ${folder}: ${reason(error)}`, error);
    });
  }
  await writable(dataDir, resolve(dir));
}

/**
 * Whether `local up` could keep its state in `dataDir`, without creating anything:
 * undefined when it could, otherwise why not (for `labeler doctor`).
 */
export async function dataDirProblem(dataDir: string): Promise<string | undefined> {
  try {
    const { base } = await existingAncestor(dataDir, dataDir);
    await writable(dataDir, base);
    return undefined;
  } catch (error) {
    if (error instanceof DataDirError) return error.message;
    throw error;
  }
}
