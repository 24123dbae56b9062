// Splitting the GPU kit's artifacts into transfers of at most 64 MiB, and the manifest the
// far side checks them against. The far side has no Node.js until the kit is unpacked, so
// the manifest also comes as two `sha256sum -c` files and an assembly list for plain shell.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** The most one transfer may carry. */
export const MAX_TRANSFER_BYTES = 64 * 1024 * 1024;

export interface Part {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface Artifact {
  /** The file name once reassembled. */
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
  /** One entry naming the artifact itself when it fits one transfer. */
  readonly parts: readonly Part[];
}

export interface KitManifest {
  readonly schemaVersion: 1;
  readonly createdAt: string;
  readonly maxTransferBytes: number;
  readonly artifacts: readonly Artifact[];
  /** Small files sent as they are (the run script, the manifests). */
  readonly loose: readonly Part[];
  readonly notes: Readonly<Record<string, unknown>>;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Cuts `source` into `<name>.part-NN` files of at most `maxBytes` in `outDir` (or copies it
 * whole as `<name>` when it fits), hashing the whole and every part on the way.
 */
export async function splitIntoParts(
  source: string,
  outDir: string,
  maxBytes: number = MAX_TRANSFER_BYTES,
  name: string = basename(source),
): Promise<Artifact> {
  if (!Number.isInteger(maxBytes) || maxBytes <= 0)
    throw new RangeError(`maxBytes must be > 0, got ${maxBytes}`);
  const { size } = await stat(source);
  const count = Math.max(1, Math.ceil(size / maxBytes));
  const whole = createHash('sha256');
  const parts: Part[] = [];
  const input = await open(source, 'r');
  try {
    // 4 MiB reads keep memory flat however large the artifact is.
    const buffer = Buffer.allocUnsafe(Math.min(maxBytes, 4 * 1024 * 1024));
    for (let index = 0; index < count; index++) {
      const file = count === 1 ? name : `${name}.part-${String(index).padStart(2, '0')}`;
      const partHash = createHash('sha256');
      const out = await open(join(outDir, file), 'w');
      let written = 0;
      try {
        const end = Math.min(size, (index + 1) * maxBytes);
        let position = index * maxBytes;
        while (position < end) {
          const { bytesRead } = await input.read(
            buffer,
            0,
            Math.min(buffer.length, end - position),
            position,
          );
          if (bytesRead === 0) throw new Error(`${source} ended early at byte ${position} of ${size}`);
          const chunk = buffer.subarray(0, bytesRead);
          partHash.update(chunk);
          whole.update(chunk);
          await out.write(chunk);
          written += bytesRead;
          position += bytesRead;
        }
      } finally {
        await out.close();
      }
      parts.push({ file, bytes: written, sha256: partHash.digest('hex') });
    }
  } finally {
    await input.close();
  }
  return { name, bytes: size, sha256: whole.digest('hex'), parts };
}

/** `sha256sum -c` lines: two spaces between hash and name (text mode). */
function sumLines(entries: readonly { sha256: string; file: string }[]): string {
  return entries.map((e) => `${e.sha256}  ${e.file}\n`).join('');
}

/**
 * Writes MANIFEST.json plus what the far side's shell reads before Node.js exists:
 * PARTS.sha256 (every transferred file), ARTIFACTS.sha256 (every reassembled one) and
 * ASSEMBLE.txt (one line per split artifact: its name, then its parts in order).
 */
export async function writeKitManifest(
  outDir: string,
  artifacts: readonly Artifact[],
  loose: readonly Part[],
  notes: Record<string, unknown>,
): Promise<KitManifest> {
  const manifest: KitManifest = {
    schemaVersion: 1,
    createdAt: new Date().toISOString(),
    maxTransferBytes: MAX_TRANSFER_BYTES,
    artifacts,
    loose,
    notes,
  };
  await writeFile(join(outDir, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(join(outDir, 'PARTS.sha256'), sumLines([...loose, ...artifacts.flatMap((a) => a.parts)]));
  await writeFile(
    join(outDir, 'ARTIFACTS.sha256'),
    sumLines(artifacts.map((a) => ({ sha256: a.sha256, file: a.name }))),
  );
  await writeFile(
    join(outDir, 'ASSEMBLE.txt'),
    artifacts
      .filter((a) => a.parts.length > 1)
      .map((a) => `${a.name} ${a.parts.map((p) => p.file).join(' ')}\n`)
      .join(''),
  );
  return manifest;
}

export interface VerifyProblem {
  readonly file: string;
  readonly problem: string;
}

/**
 * Checks a kit folder against its MANIFEST.json: every part present, within the transfer
 * limit and with its sha256; and the parts of each artifact, concatenated, give the
 * artifact's sha256. Returns the problems (none: the kit is intact).
 */
export async function verifyKit(dir: string): Promise<{ manifest: KitManifest; problems: VerifyProblem[] }> {
  const manifest = JSON.parse(await readFile(join(dir, 'MANIFEST.json'), 'utf8')) as KitManifest;
  const problems: VerifyProblem[] = [];
  const checkPart = async (part: Part): Promise<boolean> => {
    const path = join(dir, part.file);
    const info = await stat(path).catch(() => undefined);
    if (!info) {
      problems.push({ file: part.file, problem: 'missing' });
      return false;
    }
    if (info.size > manifest.maxTransferBytes) {
      problems.push({ file: part.file, problem: `${info.size} bytes, over ${manifest.maxTransferBytes}` });
    }
    if (info.size !== part.bytes)
      problems.push({ file: part.file, problem: `${info.size} bytes, manifest says ${part.bytes}` });
    const sha = await sha256File(path);
    if (sha !== part.sha256) {
      problems.push({ file: part.file, problem: `sha256 ${sha}, manifest says ${part.sha256}` });
      return false;
    }
    return true;
  };
  for (const part of manifest.loose) await checkPart(part);
  for (const artifact of manifest.artifacts) {
    let intact = true;
    for (const part of artifact.parts) intact = (await checkPart(part)) && intact;
    if (!intact) continue;
    const whole = createHash('sha256');
    for (const part of artifact.parts) {
      for await (const chunk of createReadStream(join(dir, part.file))) whole.update(chunk as Buffer);
    }
    const sha = whole.digest('hex');
    if (sha !== artifact.sha256) {
      problems.push({
        file: artifact.name,
        problem: `reassembled sha256 ${sha}, manifest says ${artifact.sha256}`,
      });
    }
  }
  return { manifest, problems };
}
