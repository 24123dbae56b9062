import { readFile } from 'node:fs/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { assertPrefixHasObjects } from '../shared/aws/prefix-contents.ts';
import { presignedGetUrl } from '../shared/aws/presign.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { type ExportSelection, selectResults } from '../shared/labeling/export.ts';
import { type Destination, fileDestination } from '../shared/labeling/export-destination.ts';
import type { ModelRef } from '../shared/labeling/results.ts';
import {
  fiftyOneLabels,
  importId,
  labelStudioConfig,
  labelStudioTasks,
  parseLabelStudioExport,
  pickForReview,
  REVIEW_FORMATS,
  REVIEW_ORDERS,
  type ReviewItem,
  truthJsonLines,
  truthKey,
} from '../shared/labeling/review.ts';
import { loadModelBundle } from '../shared/model/manifest.ts';
import { oneOf, parse, UsageError, unitInterval } from './args.ts';
import { count, signalStatus } from './output.ts';
import {
  jobsServiceOf,
  labelsModelDir,
  openStack,
  prefixLocation,
  STACK_HELP,
  STACK_OPTIONS,
  type StackConnection,
  selectionPortsOf,
} from './stack.ts';

/** Presigned image URLs last this long by default; S3's SigV4 maximum is 7 days. */
const DEFAULT_URL_EXPIRY_S = 604800;
const MAX_URL_EXPIRY_S = 604800;

export const REVIEW_HELP = `Usage: labeler review export (--job <id> | --prefix <p>) --format label-studio|fiftyone
                             --out <file> [--max-score <s>] [--order score|margin]
       labeler review import <label-studio-export.json>

Hands the results a person should check first to a labeling tool, and brings the
people's answers back as ground truth that "labeler evaluate" reads.

review export: the ok results of a selection, least certain first (failed results are
left out and counted on stderr; the whole selection is held in memory to sort it).
  --job <id> | --prefix <p>   the selection, as "labeler export" takes it
  --bucket <b>       with --prefix: the bucket (default: the stack's images bucket)
  --max-score <s>    keep images whose top-1 score is below <s> (default 1: all)
  --order <o>        score: top-1 score ascending (default); margin: top-1 minus
                     top-2 score ascending
  --format <f>       label-studio: a JSON array of Label Studio tasks, each with
                     data.image (the URL Label Studio opens), data.bucket, data.key and
                     one prediction (model_version, score, a "choices" result), plus the
                     labeling config they match, written beside it as <out>.config.xml
                     (<out> without its .json); fiftyone: a FiftyOneImageClassificationDataset
                     labels.json ({"labels": {"<key without extension>": {"label",
                     "confidence"}}}), the images going under data/ by their keys
  --out <file>       the file to write (a temporary file, renamed at the end)
  --image-urls <u>   label-studio: presigned (default; HTTPS GET URLs signed by your
                     credentials, their expiry said on stderr) or s3 (s3://bucket/key,
                     for a project with S3 cloud storage)
  --url-expiry <s>   presigned URLs stay valid <s> seconds (default and most ${MAX_URL_EXPIRY_S}: 7 days)
  --model <m>        with --prefix: the model whose results to review, a hosted
                     model's name, id or id@version, or a folder (default: the
                     stack's default model); a job knows its model

review import <file>: the JSON export of the Label Studio project (an array of tasks
with their annotations). Each answer (a single choice) of a task that names its image
(data.bucket and data.key, or an s3:// data.image) becomes one JSON line
{"bucket","key","label","annotator","annotatedAt","source":"label-studio"} in one
object, s3://<results bucket>/truth/<yyyy-mm-dd>/<import id>.jsonl (the id a hash of
the file: importing it again writes the same object), kept apart from the model's
results. Skipped (cancelled) annotations are ignored and counted; answers whose label
is not one of the model's classes are not written and are listed on stderr. The
object's s3:// URL is printed on stdout.
  --model <m>        the model whose classes answers are checked against: a hosted
                     model's name, id or id@version, or a folder (default: the
                     stack's default model)

${STACK_HELP}

Exit status: 0 when the file or object was written (also when nothing was selected or
answered: then nothing is written), 1 when the stack cannot be read or the output cannot
be written, 2 for a usage error (including an export that is not a Label Studio JSON
export), 130 on Ctrl-C and 143 on SIGTERM (nothing written), 141 when the reader of
standard output goes away.`;

export async function reviewCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`${REVIEW_HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'export') return reviewExport(rest);
  if (sub === 'import') return reviewImport(rest);
  throw new UsageError(`unknown subcommand "${sub}": review export | review import`);
}

const EXPORT_OPTIONS = {
  job: { type: 'string' },
  prefix: { type: 'string' },
  bucket: { type: 'string' },
  'max-score': { type: 'string' },
  order: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string', short: 'o' },
  'image-urls': { type: 'string' },
  'url-expiry': { type: 'string' },
  model: { type: 'string' },
  ...STACK_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

async function reviewExport(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, EXPORT_OPTIONS);
  if (values.help) {
    process.stdout.write(`${REVIEW_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const chosen = (['prefix', 'job'] as const).filter((s) => values[s] !== undefined);
  if (chosen.length !== 1) throw new UsageError('choose exactly one of --job <id> and --prefix <p>');
  const by = chosen[0] as 'prefix' | 'job';
  if (values.bucket !== undefined && by !== 'prefix') throw new UsageError('--bucket goes with --prefix');
  if (values.model !== undefined && by === 'job')
    throw new UsageError('--model goes with --prefix; a job reviews the results of its own model');
  if (values.format === undefined) throw new UsageError(`--format ${REVIEW_FORMATS.join('|')} is required`);
  const format = oneOf(values.format, '--format', REVIEW_FORMATS, 'label-studio');
  const out = values.out;
  if (out === undefined || out === '' || out === '-') throw new UsageError('--out <file> is required');
  if (out.startsWith('s3://'))
    throw new UsageError('--out is a local file (Label Studio and FiftyOne import files)');
  const order = oneOf(values.order, '--order', REVIEW_ORDERS, 'score');
  const maxScore = unitInterval(values['max-score'], '--max-score', 1);
  if (maxScore === 0) throw new UsageError('--max-score 0 keeps no image: a score is never below 0');
  const imageUrls = oneOf(values['image-urls'], '--image-urls', ['presigned', 's3'] as const, 'presigned');
  if (format === 'fiftyone' && (values['image-urls'] !== undefined || values['url-expiry'] !== undefined))
    throw new UsageError('--image-urls and --url-expiry go with --format label-studio');
  if (imageUrls === 's3' && values['url-expiry'] !== undefined)
    throw new UsageError('--url-expiry goes with presigned URLs, not --image-urls s3');
  const expiry = urlExpiry(values['url-expiry']);

  if (by === 'prefix') prefixLocation(values, 'bucket-checked-once-connected');

  const stack = await openStack(values);
  try {
    // The classes of --model, else of the job's model, else of the stack's default model.
    const job = by === 'job' ? await jobsServiceOf(stack).get(values.job as string) : undefined;
    const bundle = await loadModelBundle(
      await labelsModelDir(stack.resources.models, values.model, job?.model),
    );
    const model: ModelRef = { id: bundle.manifest.id, version: bundle.manifest.version };
    const { resources } = stack;
    const selection: ExportSelection =
      by === 'prefix'
        ? { by, model, ...prefixLocation(values, resources.imagesBucket) }
        : { by, jobId: values.job as string };
    const ports = selectionPortsOf(stack);
    const configPath = `${out.replace(/\.json$/i, '')}.config.xml`;
    const destinations: Destination[] = [];
    return await untilSignal(
      async () => {
        if (selection.by === 'prefix') {
          await assertPrefixHasObjects(stack.clients.s3, selection.bucket, selection.prefix);
        }
        const pick = await pickForReview(selectResults(selection, ports), { maxScore, order });
        const body =
          format === 'fiftyone'
            ? fiftyOneLabels(pick.items)
            : labelStudioTasks(
                pick.items,
                imageUrls === 's3'
                  ? (i) => `s3://${i.bucket}/${i.key}`
                  : await presign(stack, pick.items, expiry),
              );
        const files: Array<[string, string]> = [[out, `${JSON.stringify(body, null, 2)}\n`]];
        if (format === 'label-studio') files.push([configPath, labelStudioConfig(bundle.labels)]);
        for (const [path] of files) destinations.push(await fileDestination(path));
        for (const [i, [, text]] of files.entries()) await destinations[i]?.write(Buffer.from(text));
        for (const d of destinations) await d.commit();

        const left = [
          pick.failed > 0 ? `${count(pick.failed, 'failed result')} left out` : '',
          pick.confident > 0 ? `${pick.confident} at or above --max-score ${maxScore} left out` : '',
        ].filter(Boolean);
        const what = format === 'fiftyone' ? 'image' : 'task';
        process.stderr.write(
          `wrote ${count(pick.items.length, what)} to ${out}${format === 'label-studio' ? ` and the labeling config to ${configPath}` : ''}, lowest ${order} first${left.length ? `; ${left.join('; ')}` : ''}\n`,
        );
        if (format === 'label-studio' && pick.items.length > 0) {
          process.stderr.write(
            imageUrls === 's3'
              ? 'image URLs are s3:// URLs: add the bucket as S3 cloud storage of the Label Studio project\n'
              : `image URLs are presigned and expire in ${expiry} s, at ${new Date(Date.now() + expiry * 1000).toISOString()}` +
                  ' (or sooner: when temporary credentials, such as an SSO or assumed-role session, expire)\n',
          );
        }
        return 0;
      },
      async () => {
        for (const d of destinations) await d.abort();
        process.stderr.write(`interrupted: nothing written to ${out}\n`);
      },
    );
  } finally {
    stack.close();
  }
}

function urlExpiry(value: string | undefined): number {
  if (value === undefined) return DEFAULT_URL_EXPIRY_S;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_URL_EXPIRY_S)
    throw new UsageError(
      `--url-expiry must be whole seconds from 1 to ${MAX_URL_EXPIRY_S} (7 days), got "${value}"`,
    );
  return n;
}

/** Presigned GET URLs of the items, signed by the stack's own S3 client (as "labeler ui" signs them). */
async function presign(
  stack: StackConnection,
  items: readonly ReviewItem[],
  expiresIn: number,
): Promise<(item: ReviewItem) => string> {
  const urls = new Map<ReviewItem, string>();
  for (const item of items) {
    urls.set(item, await presignedGetUrl(stack.clients.s3, item.bucket, item.key, expiresIn));
  }
  return (item) => urls.get(item) as string;
}

const IMPORT_OPTIONS = {
  model: { type: 'string' },
  ...STACK_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

async function reviewImport(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, IMPORT_OPTIONS);
  if (values.help) {
    process.stdout.write(`${REVIEW_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UsageError('review import takes one file: the Label Studio project exported as JSON');
  const file = positionals[0] as string;
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new UsageError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  const stack = await openStack(values);
  try {
    // Answers are checked against the classes of --model, else of the stack's default model.
    const bundle = await loadModelBundle(await labelsModelDir(stack.resources.models, values.model));
    const importedAt = new Date();
    let parsed: ReturnType<typeof parseLabelStudioExport>;
    try {
      parsed = parseLabelStudioExport(bytes.toString('utf8'), bundle.labels, importedAt);
    } catch (error) {
      if (error instanceof LabelerError && error.code === CODE.review.badExport)
        throw new UsageError(`[${error.code}] ${file}: ${error.message}`);
      throw error;
    }
    const notes = [
      parsed.cancelled > 0 ? `${count(parsed.cancelled, 'skipped annotation')} ignored` : '',
      parsed.unanswered > 0 ? `${count(parsed.unanswered, 'task')} without an answer` : '',
      parsed.noChoice > 0 ? `${count(parsed.noChoice, 'annotation')} without a single choice ignored` : '',
      parsed.unlocated > 0
        ? `${count(parsed.unlocated, 'answered task')} naming no image (no data.bucket/data.key or s3:// data.image) ignored`
        : '',
      parsed.unknownLabels.size > 0
        ? `${count(
            [...parsed.unknownLabels.values()].reduce((a, b) => a + b, 0),
            'answer',
          )} with a label not among the model's classes not written: ${[...parsed.unknownLabels]
            .map(([label, n]) => `${JSON.stringify(label)} (${n})`)
            .join(', ')}`
        : '',
    ].filter(Boolean);
    const noteText = notes.length > 0 ? `; ${notes.join('; ')}` : '';

    const bucket = stack.resources.resultsBucket;
    const key = truthKey(importId(bytes), importedAt);
    return await untilSignal(
      async () => {
        if (parsed.lines.length === 0) {
          process.stderr.write(`no answers to import from ${count(parsed.tasks, 'task')}${noteText}\n`);
          return 0;
        }
        await stack.clients.s3
          .send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: truthJsonLines(parsed.lines),
              ContentType: 'application/x-ndjson',
            }),
          )
          .catch((error: unknown) => {
            throw new LabelerError(
              CODE.review.writeFailed,
              `cannot write s3://${bucket}/${key}: ${(error as Error).message}`,
              { cause: error },
            );
          });
        process.stdout.write(`s3://${bucket}/${key}\n`);
        process.stderr.write(
          `imported ${count(parsed.lines.length, 'answer')} from ${count(parsed.tasks, 'task')}${noteText}\n`,
        );
        return 0;
      },
      async () => {
        process.stderr.write('interrupted: the import may or may not have been written; run it again\n');
      },
    );
  } finally {
    stack.close();
  }
}

/**
 * Runs `work`; a Ctrl-C (130) or SIGTERM (143) during it runs `onInterrupt` and ends the
 * process with that status, as "labeler export" does.
 */
async function untilSignal(work: () => Promise<number>, onInterrupt: () => Promise<void>): Promise<number> {
  let interrupted: ((status: number) => void) | undefined;
  const interruption = new Promise<number>((resolve) => {
    interrupted = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => interrupted?.(signalStatus(signal));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const working = work();
  working.catch(() => undefined);
  try {
    const outcome = await Promise.race([working, interruption.then((status) => ({ status }))]);
    if (typeof outcome === 'object') {
      await onInterrupt();
      process.exit(outcome.status);
    }
    return outcome;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
