import { extname } from 'node:path';
import { assertPrefixHasObjects } from '../shared/aws/prefix-contents.ts';
import { type S3Location, s3Destination } from '../shared/aws/s3-destination.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import {
  type ExportPorts,
  type ExportSelection,
  type ExportTally,
  selectResults,
} from '../shared/labeling/export.ts';
import {
  type Destination,
  fileDestination,
  streamDestination,
} from '../shared/labeling/export-destination.ts';
import {
  CONTENT_TYPES,
  EXPORT_FORMATS,
  type ExportFormat,
  encodeResults,
} from '../shared/labeling/export-formats.ts';
import type { ModelRef } from '../shared/labeling/results.ts';
import { LABELING } from '../shared/settings.ts';
import { oneOf, parse, UsageError, unitInterval } from './args.ts';
import { count, signalStatus } from './output.ts';
import { CountProgress } from './progress.ts';
import { checkLabel, folderModel, resultsModel } from './results-model.ts';
import { openStack, prefixLocation, STACK_HELP, STACK_OPTIONS, selectionPortsOf } from './stack.ts';

export const EXPORT_HELP = `Usage: labeler export (--label <l> [--min-score <s>] | --prefix <p> | --job <id>)
                      --format jsonl|csv|parquet --out <file|s3://bucket/key|->

Writes every result of one selection to a file, an S3 object or standard output,
streamed page by page (never a Scan): the file appears whole at the end or not at all.

Selection (exactly one):
  --label <l>        images whose <l> scored at least --min-score (default 0; scores
                     below ${LABELING.indexMinScore} are not indexed), best first, through the label index
  --prefix <p>       images under s3://<bucket>/<p> (ListObjectsV2, then their results
                     by BatchGet); images with no result yet are counted on stderr
  --job <id>         every image a labeling job labeled or failed
  --bucket <b>       with --prefix: the bucket (default: the stack's images bucket)

Output:
  --format <f>       jsonl: one JSON line per result, as "labeler query" prints it;
                     csv: a header, then one RFC 4180 row per result, top-k labels as a
                     JSON column "labels" plus "top_label" and "top_score";
                     parquet: typed columns (labels a list of structs, labeledAt a UTC
                     timestamp). Default: from the extension of --out
  --out <o>          a file (written as a temporary file, renamed at the end),
                     s3://<bucket>/<key> (multipart upload through the stack's S3),
                     or - for standard output

  --model <m>        with --label and --prefix: the model whose results to export:
                     one the stack hosts (its name, id or id@version), else a
                     folder, a model name or id@version (a model this machine need
                     not have; its labels are then not checked). Default: the
                     stack's default model (the one uploads get); a job knows its model

${STACK_HELP}

Progress (results written) on stderr when it is a terminal; a summary line at the end.

Exit status: 0 when every selected result was written (also when there were none),
1 when the stack cannot be read or the output cannot be written (nothing is left
under the output name), 2 for a usage error (a label the model does not have),
130 on Ctrl-C and 143 on SIGTERM (nothing written), 141 when the reader of standard
output goes away.`;

const OPTIONS = {
  label: { type: 'string' },
  'min-score': { type: 'string' },
  prefix: { type: 'string' },
  bucket: { type: 'string' },
  job: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string', short: 'o' },
  model: { type: 'string' },
  ...STACK_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

const EXTENSIONS: Readonly<Record<string, ExportFormat>> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.parquet': 'parquet',
};

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(`${EXPORT_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const chosen = (['label', 'prefix', 'job'] as const).filter((s) => values[s] !== undefined);
  if (chosen.length !== 1) {
    throw new UsageError('choose exactly one of --label <l>, --prefix <p> and --job <id>');
  }
  const by = chosen[0] as 'label' | 'prefix' | 'job';
  if (values['min-score'] !== undefined && by !== 'label')
    throw new UsageError('--min-score goes with --label');
  if (values.bucket !== undefined && by !== 'prefix') throw new UsageError('--bucket goes with --prefix');
  if (values.model !== undefined && by === 'job')
    throw new UsageError(
      '--model goes with --label and --prefix; a job exports the results of its own model',
    );
  const out = values.out;
  if (out === undefined || out === '') throw new UsageError('--out <file|s3://bucket/key|-> is required');
  const format =
    values.format !== undefined
      ? oneOf(values.format, '--format', EXPORT_FORMATS, 'jsonl')
      : EXTENSIONS[extname(out).toLowerCase()];
  if (!format)
    throw new UsageError(`--format ${EXPORT_FORMATS.join('|')} is required (or an --out ending in one)`);
  if (out === '-' && format === 'parquet' && process.stdout.isTTY)
    throw new UsageError('Parquet is binary: send it to a file or a pipe, not a terminal');
  const s3Out = parseS3Url(out);
  const minScore = unitInterval(values['min-score'], '--min-score', 0);

  // A folder is resolved before connecting: a label it does not have never waits on a stack.
  const folder = await folderModel(values.model);
  if (folder && by === 'label') checkLabel(folder, values.label as string);

  if (by === 'prefix') prefixLocation(values, 'bucket-checked-once-connected');

  const stack = await openStack(values);
  try {
    const { resources } = stack;
    // The stack's models next: by name, id or id@version; without --model, its default.
    const chosenModel = folder ?? (await resultsModel(values.model, resources.models));
    const model: ModelRef = chosenModel.ref;
    if (by === 'label') checkLabel(chosenModel, values.label as string);
    const selection: ExportSelection =
      by === 'label'
        ? { by, model, label: values.label as string, minScore }
        : by === 'prefix'
          ? { by, model, ...prefixLocation(values, resources.imagesBucket) }
          : { by, jobId: values.job as string };
    const ports = selectionPortsOf(stack);
    const destination: Destination =
      out === '-'
        ? streamDestination('standard output', process.stdout)
        : s3Out
          ? s3Destination(stack.clients.s3, s3Out, CONTENT_TYPES[format])
          : await fileDestination(out);
    // A prefix with nothing under it (a typo) is said, with what is there, not exported as 0 rows.
    // Checked inside the run, where a signal already ends the export with its status.
    const preflight =
      selection.by === 'prefix'
        ? () => assertPrefixHasObjects(stack.clients.s3, selection.bucket, selection.prefix)
        : async () => {};
    return await run(format, selection, ports, destination, preflight);
  } catch (error) {
    // The store checks key sizes; an over-long label or prefix is the caller's argument.
    if (error instanceof LabelerError && error.code === CODE.query.badRequest) {
      throw new UsageError(`[${error.code}] ${error.message}`);
    }
    throw error;
  } finally {
    stack.close();
  }
}

async function run(
  format: ExportFormat,
  selection: ExportSelection,
  ports: ExportPorts,
  destination: Destination,
  preflight: () => Promise<void>,
): Promise<number> {
  const tally: ExportTally = { withoutResult: 0 };
  const progress = new CountProgress((rows) => `exported ${rows} results `);
  let interrupted: ((status: number) => void) | undefined;
  const interruption = new Promise<number>((resolveInterrupt) => {
    interrupted = resolveInterrupt;
  });
  // 130 for Ctrl-C, 143 for SIGTERM: the status a shell gives a process the signal ended.
  const onSignal = (signal: NodeJS.Signals) => interrupted?.(signalStatus(signal));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const exporting = (async () => {
    await preflight();
    const rows = await encodeResults(
      format,
      selectResults(selection, ports, tally),
      (chunk) => destination.write(chunk),
      (n) => progress.update(n),
    );
    await destination.commit();
    return rows;
  })();
  exporting.catch(() => undefined);
  try {
    const outcome = await Promise.race([exporting, interruption.then((status) => ({ status }))]);
    progress.finish();
    if (typeof outcome === 'object') {
      await destination.abort();
      process.stderr.write(`interrupted: nothing written to ${destination.name}\n`);
      // The export's pending requests would keep the process alive; nothing of it is wanted now.
      process.exit(outcome.status);
    }
    const missing =
      tally.withoutResult > 0
        ? `; ${count(tally.withoutResult, 'image')} selected had no result${'model' in selection ? ` for ${selection.model.id}@${selection.model.version}` : ''}`
        : '';
    process.stderr.write(`exported ${count(outcome, 'result')} to ${destination.name}${missing}\n`);
    return 0;
  } catch (error) {
    progress.finish();
    await destination.abort();
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `s3://bucket/key` as a location, undefined for anything else; a bucket without a key is refused. */
function parseS3Url(out: string): S3Location | undefined {
  if (!out.startsWith('s3://')) return undefined;
  const rest = out.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket === '' || key === '' || key.endsWith('/')) {
    throw new UsageError(`"${out}" names no object: use s3://<bucket>/<key>`);
  }
  return { bucket, key };
}
