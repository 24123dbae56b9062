import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { RESULT_QUERY_COLUMNS } from '../shared/labeling/result-contract.ts';
import {
  type ImageResult,
  type LabelHit,
  printedHit,
  printedResult,
  printedScore,
} from '../shared/labeling/results.ts';
import { LABELING } from '../shared/settings.ts';
import { parse, positiveInt, UsageError, unitInterval } from './args.ts';
import { type Column, RowWriter, rowFormat } from './formats.ts';
import { stdoutWritten } from './output.ts';
import { checkLabel, folderModel, resultsModel } from './results-model.ts';
import { openJobs, openStack, queryApiOf, STACK_HELP, STACK_OPTIONS } from './stack.ts';

export const QUERY_HELP = `Usage: labeler query <image|label|job> ... [options]

Reads results from a stack: the running local one ("labeler local up") or a
deployed one (--stack <name>). Image and label queries go through the stack's
query API, every request signed with SigV4 (the API uses IAM auth; the local
stack serves the same API on 127.0.0.1 and checks the signatures the same way).

  labeler query image <key> [--bucket <name>]
      Every result stored for this object key (one per model; with --model,
      that model's only).

  labeler query label <label> [--min-score <s>] [--limit <n>] [--cursor <c>]
      Images whose <label> scored at least <s>, best first; one DynamoDB Query
      per shard of the label index, merged by score, never a Scan. Scores below ${LABELING.indexMinScore} are stored
      with each result but not indexed, so queries start there. Prints a "next"
      cursor on stderr when more results exist.

  labeler query job <job-id>
      Every result the job wrote, one per image (failed images included), read
      through the jobs service (docs/decisions/0019-one-query-path.md).

Output (--format):
  jsonl   one JSON line per result (the default), in the shape "labeler label"
          and "labeler local run" print: scores rounded to six decimals
  table   aligned columns for people; long keys keep their end ("…/cat.png"),
          written once every row is read
  csv     a header line, then one line per result (RFC 4180 quoting)

Exit status: 0 when the query ran (even with no results), 1 when the stack cannot
be read, 2 for a usage error: a bad option, a label the model does not have
(the model's labels are listed), or a cursor this query did not return.

Options:
  --format <f>       jsonl, table or csv (default jsonl)
  --bucket <name>    images bucket (default: the stack's)
  --model <m>        the model whose results to read: one the stack hosts (its
                     name, id or id@version), else a folder, a model name or
                     id@version (a model this machine need not have; its labels
                     are then not checked). Default: the stack's default model (the
                     one uploads get), except for "query image" (every model's)
                     and "query job" (the job's)
${STACK_HELP}
  -h, --help         show this help`;

const FORMATS = ['jsonl', 'table', 'csv'] as const;

export async function queryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...STACK_OPTIONS,
    bucket: { type: 'string' },
    'min-score': { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    model: { type: 'string' },
    format: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  const [what, subject, ...extra] = positionals;
  if (values.help || what === undefined) {
    process.stdout.write(`${QUERY_HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (!subject || extra.length > 0) throw new UsageError(`"query ${what}" takes exactly one argument`);
  if (what !== 'image' && what !== 'label' && what !== 'job')
    throw new UsageError(`unknown query "${what}"; use image, label or job`);
  const format = rowFormat(values.format, FORMATS, 'jsonl');
  if (values.bucket !== undefined && what !== 'image')
    throw new UsageError('--bucket goes with "query image"');
  if (values.model !== undefined && what === 'job')
    throw new UsageError('--model goes with "query image" and "query label"; a job reads its own model');
  if (what === 'job') return queryJob(subject, values, format);
  // A folder is resolved before connecting: a label it does not have never waits on a stack.
  const folder = await folderModel(values.model);
  if (folder && what === 'label') checkLabel(folder, subject);

  const stack = await openStack(values);
  try {
    // The stack's models next: by name, id or id@version; without --model, its default.
    const model =
      what === 'image' && values.model === undefined
        ? undefined
        : (folder ?? (await resultsModel(values.model, stack.resources.models)));
    const api = queryApiOf(stack);
    if (what === 'image') {
      const all = await api.getByImage(values.bucket ?? stack.resources.imagesBucket, subject);
      const results = model
        ? all.filter((r) => r.model.id === model.ref.id && r.model.version === model.ref.version)
        : all;
      const out = resultWriter(format);
      for (const r of results) out.write(r);
      out.end();
      await stdoutWritten();
      if (results.length === 0) process.stderr.write(`no results for ${subject}\n`);
      return 0;
    }
    const labelModel = model ?? (await resultsModel(undefined, stack.resources.models));
    checkLabel(labelModel, subject);
    const page = await api.queryByLabel({
      model: labelModel.ref,
      label: subject,
      minScore: unitInterval(values['min-score'], '--min-score', 0),
      limit: positiveInt(values.limit, '--limit', 100),
      ...(values.cursor ? { cursor: values.cursor } : {}),
    });
    const out = hitWriter(format);
    for (const hit of page.items) out.write(hit);
    out.end();
    // Not when the rows were cut short (`| head -1`): the cursor would skip what was not read.
    await stdoutWritten();
    if (page.cursor) process.stderr.write(`next: --cursor ${page.cursor}\n`);
    return 0;
  } catch (error) {
    // The API checks the cursor and the key sizes; both are the caller's arguments.
    if (
      error instanceof LabelerError &&
      (error.code === CODE.query.badRequest || error.code === CODE.query.badCursor)
    ) {
      throw new UsageError(`[${error.code}] ${error.message}`);
    }
    throw error;
  } finally {
    stack.close();
  }
}

/** A result's columns come from the result contract, as `labeler export`'s do. */
const RESULT_COLUMNS: readonly Column<ImageResult>[] = RESULT_QUERY_COLUMNS;

/** What a person reads in a terminal: the CSV's columns less the ones only a program wants. */
const RESULT_TABLE = RESULT_COLUMNS.filter(
  (c) => !['bucket', 'eTag', 'modelVersion', 'labels', 'errorMessage'].includes(c.header),
);

const HIT_COLUMNS: readonly Column<LabelHit>[] = [
  { header: 'rank', value: (h) => h.rank, align: 'right' },
  { header: 'score', value: (h) => printedScore(h.score).toFixed(6), align: 'right' },
  { header: 'label', value: (h) => h.label, maxWidth: 24 },
  { header: 'bucket', value: (h) => h.bucket, maxWidth: 24 },
  { header: 'key', value: (h) => h.key, keep: 'end', maxWidth: 60 },
];

function resultWriter(format: (typeof FORMATS)[number]): RowWriter<ImageResult> {
  return new RowWriter({
    format,
    columns: format === 'table' ? RESULT_TABLE : RESULT_COLUMNS,
    json: printedResult,
  });
}

function hitWriter(format: (typeof FORMATS)[number]): RowWriter<LabelHit> {
  return new RowWriter({ format, columns: HIT_COLUMNS, json: printedHit });
}

/** A job's results, in the shape `labeler label` prints, failed images included. */
async function queryJob(
  jobId: string,
  values: { stack?: string; region?: string; profile?: string; 'data-dir'?: string; model?: string },
  format: (typeof FORMATS)[number],
): Promise<number> {
  const connection = await openJobs(values);
  try {
    if (!(await connection.jobs.get(jobId))) throw new LabelerError(CODE.job.notFound, `no job ${jobId}`);
    let count = 0;
    const out = resultWriter(format);
    for await (const result of connection.jobs.results(jobId)) {
      count++;
      out.write(result);
    }
    out.end();
    if (count === 0) process.stderr.write(`no results for job ${jobId} yet\n`);
    return 0;
  } finally {
    connection.close();
  }
}
