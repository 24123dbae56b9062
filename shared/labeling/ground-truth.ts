import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';

/**
 * Ground truth: the label a person gave an image, in the forms people keep it (issue 23,
 * item 1). Every reader gives the same entries; `TruthSet` matches them to results.
 */
export interface TruthEntry {
  /** Where the image is, when the truth says (stored review answers, Label Studio s3:// URLs). */
  readonly bucket?: string;
  /** An object key, a relative path (`Sneaker/a.png`) or a file name (`a.png`). */
  readonly key: string;
  readonly label: string;
}

/** Where truth came from, for the report: `samples.csv`, `stack truth/ (12 answers)`. */
export interface GroundTruth {
  readonly source: string;
  readonly entries: readonly TruthEntry[];
}

const unreadable = (what: string, cause?: unknown) =>
  new LabelerError(CODE.truth.unreadable, what, cause === undefined ? {} : { cause });

// ---------------------------------------------------------------- CSV

/** RFC 4180 fields of a CSV text: quoted fields may hold commas, quotes ("") and line breaks. */
export function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  while (i < body.length) {
    const c = body[i] as string;
    if (quoted) {
      if (c === '"' && body[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && body[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
    i++;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0]?.trim() === ''));
}

const KEY_HEADERS = ['key', 'file', 'filename', 'file_name', 'path', 'image', 'name'];
const LABEL_HEADERS = ['label', 'class', 'truth', 'category'];

/**
 * A `key,label` or `file,label` CSV (models/fashion-efficientnet/samples.csv), the header
 * optional: a first row whose cells name a key column and a label column is a header
 * (`bucket,key,label` too); without one, each row is exactly `key,label`.
 */
export function parseTruthCsv(text: string, source: string): GroundTruth {
  const rows = csvRows(text);
  const first = rows[0]?.map((c) => c.trim().toLowerCase()) ?? [];
  let keyAt = first.findIndex((c) => KEY_HEADERS.includes(c));
  let labelAt = first.findIndex((c) => LABEL_HEADERS.includes(c));
  let bucketAt = first.indexOf('bucket');
  const headed = keyAt >= 0 && labelAt >= 0;
  if (headed) rows.shift();
  else {
    keyAt = 0;
    labelAt = 1;
    bucketAt = -1;
  }
  const entries: TruthEntry[] = [];
  rows.forEach((row, n) => {
    const key = row[keyAt]?.trim() ?? '';
    const label = row[labelAt]?.trim() ?? '';
    if (key === '' || label === '' || (!headed && row.length !== 2)) {
      throw new LabelerError(
        CODE.truth.unreadable,
        `${source}: row ${n + 1} is not "key,label": ${JSON.stringify(row.join(','))}`,
      );
    }
    const bucket = bucketAt >= 0 ? row[bucketAt]?.trim() : undefined;
    entries.push({ ...(bucket ? { bucket } : {}), key, label });
  });
  return { source, entries };
}

// ---------------------------------------------------------------- ImageFolder

/** The extensions torchvision's ImageFolder reads (IMG_EXTENSIONS). */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp']);

/**
 * An ImageFolder tree, as torchvision reads one: each folder under `root` is a class and
 * every image anywhere below it is of that class. Keys are the paths relative to `root`
 * (`Sneaker/a.png`), so they match the same tree uploaded under a prefix or labeled here.
 */
export async function readImageFolder(root: string): Promise<GroundTruth> {
  const entries: TruthEntry[] = [];
  const classes = await readdir(root, { withFileTypes: true }).catch((cause: unknown) => {
    throw unreadable(`${root} cannot be read as an ImageFolder tree`, cause);
  });
  for (const folder of classes) {
    if (!folder.isDirectory() || folder.name.startsWith('.')) continue;
    for (const file of await walk(join(root, folder.name))) {
      if (!IMAGE_EXTENSIONS.has(extname(file).toLowerCase())) continue;
      entries.push({ key: relative(root, file).split(sep).join('/'), label: folder.name });
    }
  }
  if (entries.length === 0) {
    throw unreadable(
      `${root} holds no class folders with images (an ImageFolder tree is <root>/<class>/<image>)`,
    );
  }
  return { source: root, entries };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else out.push(path);
  }
  return out.sort();
}

// ---------------------------------------------------------------- Label Studio

interface LabelStudioTask {
  data?: { image?: unknown };
  annotations?: Array<{
    was_cancelled?: boolean;
    created_at?: string;
    updated_at?: string;
    result?: Array<{ value?: { choices?: unknown } }>;
  }>;
}

/**
 * A Label Studio JSON export: tasks with `data.image` and `annotations[].result[].value.choices`.
 * The newest annotation not cancelled that made a choice is the image's label; tasks nobody
 * annotated are left out. `s3://bucket/key` images keep their bucket; URLs their path.
 */
export function parseLabelStudio(text: string, source: string): GroundTruth {
  let tasks: unknown;
  try {
    tasks = JSON.parse(text);
  } catch (cause) {
    throw unreadable(`${source} is not JSON (a Label Studio JSON export is an array of tasks)`, cause);
  }
  if (!Array.isArray(tasks)) throw unreadable(`${source}: a Label Studio JSON export is an array of tasks`);
  const entries: TruthEntry[] = [];
  for (const task of tasks as LabelStudioTask[]) {
    const image = task?.data?.image;
    if (typeof image !== 'string' || image === '') continue;
    const answers = (task.annotations ?? [])
      .filter((a) => !a.was_cancelled)
      .map((a) => ({
        at: a.updated_at ?? a.created_at ?? '',
        choice: (a.result ?? [])
          .map((r) => r.value?.choices)
          .find((c): c is string[] => Array.isArray(c) && typeof c[0] === 'string')?.[0],
      }))
      .filter((a): a is { at: string; choice: string } => a.choice !== undefined)
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    const newest = answers.at(-1);
    if (newest) entries.push({ ...imageRef(image), label: newest.choice });
  }
  return { source, entries };
}

function imageRef(image: string): { bucket?: string; key: string } {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(image);
  if (s3) return { bucket: s3[1] as string, key: s3[2] as string };
  // Relative paths too: Label Studio serves storage files as /data/local-files/?d=<path>.
  const url = new URL(image, 'file:///');
  const d = url.searchParams.get('d');
  return { key: d ?? decodeURIComponent(url.pathname.replace(/^\//, '')) };
}

// ---------------------------------------------------------------- the stack's review answers

/** Port: the objects under `truth/` in the stack's results bucket. */
export interface TruthObjects {
  list(prefix: string): AsyncIterable<string>;
  read(key: string): Promise<string>;
}

/** Where `labeler review import` writes the answers, in the results bucket. */
export const TRUTH_PREFIX = 'truth/';

/**
 * Every stored review answer (JSON Lines of {"bucket","key","label","annotator","annotatedAt",
 * "source"} under truth/); the newest answer per image wins.
 */
export async function readStackTruth(objects: TruthObjects): Promise<GroundTruth> {
  const newest = new Map<string, { entry: TruthEntry; at: string }>();
  let answers = 0;
  for await (const key of objects.list(TRUTH_PREFIX)) {
    const text = await objects.read(key);
    text.split('\n').forEach((line, n) => {
      if (line.trim() === '') return;
      let answer: { bucket?: unknown; key?: unknown; label?: unknown; annotatedAt?: unknown };
      try {
        answer = JSON.parse(line);
      } catch (cause) {
        throw unreadable(`truth/ object ${key}, line ${n + 1}, is not JSON`, cause);
      }
      if (
        typeof answer.bucket !== 'string' ||
        typeof answer.key !== 'string' ||
        typeof answer.label !== 'string'
      )
        throw unreadable(`truth/ object ${key}, line ${n + 1}, lacks "bucket", "key" or "label"`);
      answers++;
      const at = typeof answer.annotatedAt === 'string' ? answer.annotatedAt : '';
      const id = `${answer.bucket}/${answer.key}`;
      const seen = newest.get(id);
      if (!seen || seen.at <= at)
        newest.set(id, { entry: { bucket: answer.bucket, key: answer.key, label: answer.label }, at });
    });
  }
  return {
    source: `the stack's truth/ (${answers} answer${answers === 1 ? '' : 's'})`,
    entries: [...newest.values()].map((v) => v.entry),
  };
}

/** Reads `--truth <csv|folder|json>`: the form is told by what the path is. */
export async function readTruthPath(path: string): Promise<GroundTruth> {
  const info = await stat(path).catch((cause: unknown) => {
    throw unreadable(`${path} cannot be read: ${(cause as Error).message}`, cause);
  });
  if (info.isDirectory()) return readImageFolder(path);
  const text = await readFile(path, 'utf8').catch((cause: unknown) => {
    throw unreadable(`${path} cannot be read: ${(cause as Error).message}`, cause);
  });
  if (extname(path).toLowerCase() === '.json' || /^\s*\[/.test(text)) return parseLabelStudio(text, path);
  return parseTruthCsv(text, path);
}

// ---------------------------------------------------------------- matching

/** A result's image: an S3 object (bucket and key) or a local file (its path as key). */
export interface ImageRef {
  readonly bucket?: string;
  readonly key: string;
}

/**
 * Truth entries looked up by image. An image matches, in order: an entry with its bucket and
 * key; an entry whose key ends its key at a path boundary (`Sneaker/a.png` matches
 * `photos/Sneaker/a.png` and `/home/me/Sneaker/a.png`; the longest such key wins); an entry
 * with its file name, when only one entry has that name.
 */
export class TruthSet {
  readonly source: string;
  readonly size: number;
  readonly #byBucketKey = new Map<string, TruthEntry>();
  readonly #byKey = new Map<string, TruthEntry>();
  readonly #byName = new Map<string, TruthEntry[]>();
  readonly #matched = new Set<TruthEntry>();

  constructor(truth: GroundTruth) {
    this.source = truth.source;
    for (const entry of truth.entries) {
      if (entry.bucket) this.#byBucketKey.set(`${entry.bucket}/${entry.key}`, entry);
      else this.#byKey.set(entry.key.replace(/^\.?\//, ''), entry);
      const name = fileName(entry.key);
      this.#byName.set(name, [...(this.#byName.get(name) ?? []), entry]);
    }
    this.size = this.#byBucketKey.size + this.#byKey.size;
  }

  lookup(image: ImageRef): TruthEntry | undefined {
    const found = this.#find(image);
    if (found) this.#matched.add(found);
    return found;
  }

  #find(image: ImageRef): TruthEntry | undefined {
    if (image.bucket) {
      const exact = this.#byBucketKey.get(`${image.bucket}/${image.key}`);
      if (exact) return exact;
    }
    const key = image.key.replaceAll('\\', '/');
    const parts = key.split('/');
    for (let i = 0; i < parts.length; i++) {
      const hit = this.#byKey.get(parts.slice(i).join('/'));
      if (hit) return hit;
    }
    const named = this.#byName.get(parts.at(-1) as string);
    if (named?.length === 1) {
      const only = named[0] as TruthEntry;
      // A bucketed entry is that object, not any object of the same name.
      if (!only.bucket) return only;
    }
    return undefined;
  }

  /** Entries no looked-up image matched: truth for images outside the selection. */
  unmatched(): number {
    return this.size - this.#matched.size;
  }
}

function fileName(key: string): string {
  return key.replaceAll('\\', '/').split('/').at(-1) as string;
}
