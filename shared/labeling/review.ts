import { createHash } from 'node:crypto';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { Label } from '../model/classifier.ts';
import { type ImageResult, printedScore } from './results.ts';

/**
 * The review hand-off (docs: README "Review"): the results a person should look at first,
 * as Label Studio tasks or a FiftyOne image classification dataset, and the people's
 * answers from a Label Studio export back as ground truth. Pure: no I/O here.
 */

export const REVIEW_FORMATS = ['label-studio', 'fiftyone'] as const;
export type ReviewFormat = (typeof REVIEW_FORMATS)[number];

export const REVIEW_ORDERS = ['score', 'margin'] as const;
/** `score`: the top-1 score ascending; `margin`: top-1 minus top-2 score ascending. */
export type ReviewOrder = (typeof REVIEW_ORDERS)[number];

/** The control and object tag names of the labeling config; every task's prediction names them. */
export const LS_CHOICES_NAME = 'label';
export const LS_IMAGE_NAME = 'image';

/** One ok result picked for review, with what it is ordered by. */
export interface ReviewItem {
  readonly bucket: string;
  readonly key: string;
  readonly modelVersion: string;
  readonly top: Label;
  /** top-1 minus top-2 score (top-1 score when the result has a single label). */
  readonly margin: number;
}

export interface ReviewPick {
  /** In review order: the least certain first. */
  readonly items: readonly ReviewItem[];
  /** Failed results of the selection: no prediction to review. */
  readonly failed: number;
  /** Ok results left out because their top-1 score is at or above `maxScore`. */
  readonly confident: number;
}

export interface ReviewOptions {
  /** Keep images whose top-1 score is below this; 1 keeps every image. */
  readonly maxScore: number;
  readonly order: ReviewOrder;
}

/** The results to review, least certain first; the whole selection is held to sort it. */
export async function pickForReview(
  results: AsyncIterable<ImageResult> | Iterable<ImageResult>,
  options: ReviewOptions,
): Promise<ReviewPick> {
  const items: ReviewItem[] = [];
  let failed = 0;
  let confident = 0;
  for await (const r of results) {
    const [first, second] = [...r.labels].sort((a, b) => b.score - a.score);
    if (r.status !== 'ok' || !first) {
      failed++;
      continue;
    }
    if (options.maxScore < 1 && first.score >= options.maxScore) {
      confident++;
      continue;
    }
    items.push({
      bucket: r.bucket,
      key: r.key,
      modelVersion: `${r.model.id}@${r.model.version}`,
      top: first,
      margin: first.score - (second?.score ?? 0),
    });
  }
  return { items: reviewOrder(items, options.order), failed, confident };
}

/** Ascending by score or margin; ties by bucket, then key, so the order is the same every run. */
export function reviewOrder(items: readonly ReviewItem[], order: ReviewOrder): ReviewItem[] {
  const by = order === 'score' ? (i: ReviewItem) => i.top.score : (i: ReviewItem) => i.margin;
  return [...items].sort((a, b) => by(a) - by(b) || compare(a.bucket, b.bucket) || compare(a.key, b.key));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A task in Label Studio's import JSON, with one prediction (pre-annotation). */
export interface LabelStudioTask {
  readonly data: { readonly image: string; readonly bucket: string; readonly key: string };
  readonly predictions: ReadonlyArray<{
    readonly model_version: string;
    readonly score: number;
    readonly result: ReadonlyArray<{
      readonly id: string;
      readonly type: 'choices';
      readonly from_name: string;
      readonly to_name: string;
      readonly value: { readonly choices: readonly string[] };
    }>;
  }>;
}

/**
 * Label Studio tasks, one per item in the given order: `data.image` the URL Label Studio
 * opens, `data.bucket`/`data.key` the object, so `review import` finds the image exactly;
 * one prediction with the model's top-1 label as a `choices` result for the labeling
 * config's control, its score the top-1 score (Label Studio sorts tasks by it).
 */
export function labelStudioTasks(
  items: readonly ReviewItem[],
  imageUrl: (item: ReviewItem) => string,
): LabelStudioTask[] {
  return items.map((item, i) => ({
    data: { image: imageUrl(item), bucket: item.bucket, key: item.key },
    predictions: [
      {
        model_version: item.modelVersion,
        score: printedScore(item.top.score),
        result: [
          {
            id: `r${i + 1}`,
            type: 'choices',
            from_name: LS_CHOICES_NAME,
            to_name: LS_IMAGE_NAME,
            value: { choices: [item.top.label] },
          },
        ],
      },
    ],
  }));
}

/** The labeling config the tasks' predictions match: the image, one single choice among the model's classes. */
export function labelStudioConfig(classes: readonly string[]): string {
  const choices = classes.map((c) => `    <Choice value="${xmlAttribute(c)}"/>`).join('\n');
  return `<View>
  <Image name="${LS_IMAGE_NAME}" value="$image"/>
  <Choices name="${LS_CHOICES_NAME}" toName="${LS_IMAGE_NAME}" choice="single" required="true">
${choices}
  </Choices>
</View>
`;
}

function xmlAttribute(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

/**
 * FiftyOne's FiftyOneImageClassificationDataset `labels.json`, predictions form: no
 * `classes`, so each `label` is the label string; the UUID of an image is its key without
 * the extension (a relative path: the images go under `data/` by their keys).
 */
export interface FiftyOneLabels {
  readonly labels: Record<string, { readonly label: string; readonly confidence: number }>;
}

export function fiftyOneLabels(items: readonly ReviewItem[]): FiftyOneLabels {
  const labels: Record<string, { label: string; confidence: number }> = {};
  const from = new Map<string, string>();
  for (const item of items) {
    const uuid = item.key.replace(/\.[^./]*$/, '');
    const other = from.get(uuid);
    if (other !== undefined) {
      throw new LabelerError(
        CODE.review.fiftyoneUuidClash,
        `${other} and ${item.key} have the same FiftyOne UUID "${uuid}" (the key without its extension); review them apart`,
      );
    }
    from.set(uuid, item.key);
    labels[uuid] = { label: item.top.label, confidence: printedScore(item.top.score) };
  }
  return { labels };
}

/** One person's answer for one image: a line of a `truth/` object (the evaluate contract). */
export interface TruthLine {
  readonly bucket: string;
  readonly key: string;
  readonly label: string;
  readonly annotator: string;
  readonly annotatedAt: string;
  readonly source: 'label-studio';
}

/** What a Label Studio export held besides the answers written. */
export interface TruthImport {
  /** One per answered annotation, in the export's order. */
  readonly lines: readonly TruthLine[];
  readonly tasks: number;
  /** Skipped annotations (`was_cancelled`): ignored. */
  readonly cancelled: number;
  /** Answers whose label is not one of the model's classes, by label: not written. */
  readonly unknownLabels: ReadonlyMap<string, number>;
  /** Tasks whose image is neither `data.bucket`/`data.key` nor an `s3://` `data.image`. */
  readonly unlocated: number;
  /** Annotations with no single choice to read (an empty or multi-choice result). */
  readonly noChoice: number;
  /** Tasks no one answered. */
  readonly unanswered: number;
}

/**
 * The people's answers in a Label Studio JSON export (the array of tasks with their
 * `annotations`), as ground truth lines. `importedAt` stands in for an annotation
 * without a time. Throws `review/bad-export` when the text is not such an export.
 */
export function parseLabelStudioExport(
  text: string,
  classes: readonly string[],
  importedAt: Date,
): TruthImport {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new LabelerError(
      CODE.review.badExport,
      `not JSON: ${(error as Error).message} (export the project from Label Studio as "JSON")`,
    );
  }
  if (!Array.isArray(parsed)) {
    throw new LabelerError(
      CODE.review.badExport,
      'a Label Studio JSON export is an array of tasks; this file is not (export the project as "JSON", not "JSON-MIN" or CSV)',
    );
  }
  const known = new Set(classes);
  const lines: TruthLine[] = [];
  const unknownLabels = new Map<string, number>();
  let cancelled = 0;
  let unlocated = 0;
  let noChoice = 0;
  let unanswered = 0;
  parsed.forEach((task: unknown, index) => {
    if (!isObject(task) || !isObject(task.data)) {
      throw new LabelerError(CODE.review.badExport, `task ${index + 1} has no "data" object`);
    }
    const annotations = task.annotations ?? [];
    if (!Array.isArray(annotations)) {
      throw new LabelerError(CODE.review.badExport, `task ${index + 1}: "annotations" is not an array`);
    }
    const answers = annotations.filter((a: unknown) => {
      if (!isObject(a))
        throw new LabelerError(CODE.review.badExport, `task ${index + 1}: an annotation is not an object`);
      if (a.was_cancelled === true) cancelled++;
      return a.was_cancelled !== true;
    }) as Array<Record<string, unknown>>;
    if (answers.length === 0) {
      unanswered++;
      return;
    }
    const image = imageOf(task.data);
    if (!image) {
      unlocated++;
      return;
    }
    for (const answer of answers) {
      const label = choiceOf(answer.result);
      if (label === undefined) {
        noChoice++;
        continue;
      }
      if (!known.has(label)) {
        unknownLabels.set(label, (unknownLabels.get(label) ?? 0) + 1);
        continue;
      }
      lines.push({
        ...image,
        label,
        annotator: annotatorOf(answer.completed_by),
        annotatedAt: timeOf(answer.updated_at) ?? timeOf(answer.created_at) ?? importedAt.toISOString(),
        source: 'label-studio',
      });
    }
  });
  return { lines, tasks: parsed.length, cancelled, unknownLabels, unlocated, noChoice, unanswered };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `data.bucket`/`data.key` as `review export` writes them, else an `s3://bucket/key` image. */
function imageOf(data: Record<string, unknown>): { bucket: string; key: string } | undefined {
  if (typeof data.bucket === 'string' && typeof data.key === 'string' && data.bucket && data.key) {
    return { bucket: data.bucket, key: data.key };
  }
  const match = typeof data.image === 'string' ? /^s3:\/\/([^/]+)\/(.+)$/.exec(data.image) : null;
  return match ? { bucket: match[1] as string, key: match[2] as string } : undefined;
}

/** The one choice of an annotation's `choices` result (ours by name, else the only one). */
function choiceOf(result: unknown): string | undefined {
  if (!Array.isArray(result)) return undefined;
  const choices = result.filter(
    (r): r is Record<string, unknown> & { value: { choices: unknown } } =>
      isObject(r) && r.type === 'choices' && isObject(r.value) && Array.isArray(r.value.choices),
  );
  const ours = choices.filter((r) => r.from_name === LS_CHOICES_NAME);
  const picked = ours.length > 0 ? ours : choices;
  if (picked.length !== 1) return undefined;
  const values = (picked[0] as { value: { choices: unknown[] } }).value.choices;
  return values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined;
}

/** `completed_by` as Label Studio writes it: a user id, or a user object with an email. */
function annotatorOf(completedBy: unknown): string {
  if (typeof completedBy === 'number' || (typeof completedBy === 'string' && completedBy !== '')) {
    return String(completedBy);
  }
  if (isObject(completedBy)) {
    if (typeof completedBy.email === 'string' && completedBy.email !== '') return completedBy.email;
    if (typeof completedBy.id === 'number' || typeof completedBy.id === 'string')
      return String(completedBy.id);
  }
  return 'unknown';
}

function timeOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

/** The import's id: a hash of the export's bytes, so importing the same file again writes the same key. */
export function importId(exportBytes: Uint8Array | string): string {
  return createHash('sha256').update(exportBytes).digest('hex').slice(0, 16);
}

/** `truth/<yyyy-mm-dd>/<import-id>.jsonl` in the results bucket, dated by the import (UTC). */
export function truthKey(id: string, importedAt: Date): string {
  return `truth/${importedAt.toISOString().slice(0, 10)}/${id}.jsonl`;
}

export function truthJsonLines(lines: readonly TruthLine[]): string {
  return lines
    .map((l) =>
      JSON.stringify({
        bucket: l.bucket,
        key: l.key,
        label: l.label,
        annotator: l.annotator,
        annotatedAt: l.annotatedAt,
        source: l.source,
      }),
    )
    .map((l) => `${l}\n`)
    .join('');
}
