import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageTooLargeError, LabelerError } from '../errors.ts';

/**
 * Expands files and folders into a sorted list of files. Folders are walked
 * recursively; hidden entries (dot files) inside folders are skipped, files named
 * explicitly are always kept, whatever they are.
 */
export async function listFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch((cause: unknown) => {
      throw new LabelerError('file/not-found', `${path} does not exist`, { cause });
    });
    if (info.isDirectory()) await walk(path, out);
    else out.push(path);
  }
  return out;
}

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, out);
    else if (entry.isFile()) out.push(path);
  }
}

/** Reads a file whole, refusing it from its size alone when it is over the limit. */
export async function readLocalFile(path: string, maxBytes: number): Promise<Uint8Array> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw new LabelerError('file/unreadable', `${path} cannot be read: ${(cause as Error).message}`, {
      cause,
    });
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new ImageTooLargeError(size, maxBytes);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
