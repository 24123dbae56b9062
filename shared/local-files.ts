import { constants, type Dirent, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CODE } from './error-codes.ts';
import { ImageTooLargeError, LabelerError, LocalFileError } from './errors.ts';

/** One input to label: a regular file, or a path with the reason it cannot be one. */
export interface LocalFile {
  readonly path: string;
  /** Set when the path is missing, unreadable, a loop or not a regular file: its failed row. */
  readonly error?: LocalFileError;
}

/**
 * Expands files and folders into the list of inputs, in order, folders sorted by
 * name. Folders are walked recursively, following symbolic links; hidden entries
 * (dot files) inside folders are skipped, paths named explicitly are always kept.
 * Never throws for a path: each one named or found is in the list exactly once,
 * those that cannot be labeled with their error, so nothing is dropped in silence.
 */
export async function listFiles(paths: readonly string[]): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  for (const path of paths) await visit(path, out, new Set());
  return out;
}

/** `ancestors` holds the folders above `path` (device:inode), so a link back to one ends the walk. */
async function visit(path: string, out: LocalFile[], ancestors: ReadonlySet<string>): Promise<void> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (cause) {
    out.push({ path, error: await fileError(path, cause) });
    return;
  }
  if (info.isFile()) {
    out.push({ path });
    return;
  }
  if (!info.isDirectory()) {
    out.push({ path, error: notRegular(path, info) });
    return;
  }
  const id = `${info.dev}:${info.ino}`;
  if (ancestors.has(id)) {
    const error = new LocalFileError(
      CODE.file.symlinkLoop,
      `${path} leads back to a folder that contains it; not followed`,
    );
    out.push({ path, error });
    return;
  }
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (cause) {
    out.push({ path, error: await fileError(path, cause) });
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const inside = new Set(ancestors).add(id);
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const child = join(path, entry.name);
    // A regular file needs no stat; links, folders and anything else are resolved.
    if (entry.isFile()) out.push({ path: child });
    else await visit(child, out, inside);
  }
}

/**
 * Reads a regular file whole: never more than `maxBytes + 1` bytes, whatever the
 * file claims or becomes, and never blocking on a FIFO or a device.
 */
export async function readLocalFile(path: string, maxBytes: number): Promise<Uint8Array> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    throw await fileError(path, cause);
  }
  try {
    // The path may have changed since it was listed: judge what was actually opened.
    const info = await handle.stat();
    if (!info.isFile()) throw notRegular(path, info);
    if (info.size > maxBytes) throw new ImageTooLargeError(info.size, maxBytes);
    const bytes = await readAtMost(handle, maxBytes + 1, info.size + 1);
    if (bytes.length > maxBytes) throw new ImageTooLargeError(bytes.length, maxBytes);
    return bytes;
  } catch (cause) {
    if (cause instanceof LabelerError) throw cause;
    throw await fileError(path, cause);
  } finally {
    await handle.close();
  }
}

/** Reads until end of file or `limit` bytes, whichever comes first. */
async function readAtMost(handle: FileHandle, limit: number, expected: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  // Sized for the whole file plus one byte, so a file that has not grown takes one read and an EOF.
  let size = Math.max(expected, 64 * 1024);
  while (total < limit) {
    const buffer = Buffer.allocUnsafe(Math.min(size, limit - total));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
    size = 1024 * 1024;
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
}

function notRegular(path: string, info: Stats): LocalFileError {
  const kind = info.isFIFO()
    ? 'a FIFO (named pipe)'
    : info.isCharacterDevice()
      ? 'a character device'
      : info.isBlockDevice()
        ? 'a block device'
        : info.isSocket()
          ? 'a socket'
          : info.isDirectory()
            ? 'a folder'
            : 'not a regular file';
  return new LocalFileError(CODE.file.notRegular, `${path} is ${kind}, not a regular file`);
}

async function fileError(path: string, cause: unknown): Promise<LocalFileError> {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = cause instanceof Error ? cause.message : String(cause);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    const target = await lstat(path)
      .then((l) => (l.isSymbolicLink() ? readlink(path) : undefined))
      .catch(() => undefined);
    const message =
      target === undefined
        ? `${path} does not exist`
        : `${path} is a symbolic link to ${target}, which does not exist`;
    return new LocalFileError(CODE.file.notFound, message, cause);
  }
  if (code === 'ELOOP') {
    return new LocalFileError(CODE.file.symlinkLoop, `${path}: symbolic links loop (${reason})`, cause);
  }
  return new LocalFileError(CODE.file.unreadable, `${path} cannot be read: ${reason}`, cause);
}
