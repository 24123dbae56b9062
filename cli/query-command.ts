import { resolve } from 'node:path';
import { findRunningStack } from '../local/endpoints.ts';
import { createAwsClients } from '../shared/aws/clients.ts';
import { DynamoResultsStore } from '../shared/aws/dynamo-results-store.ts';
import { LabelerError } from '../shared/errors.ts';
import { printedHit, printedResult } from '../shared/labeling/results.ts';
import { loadModelBundle } from '../shared/model/manifest.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { LABELING, RESOURCE_NAMES } from '../shared/settings.ts';
import { parse, positiveInt, UsageError, unitInterval } from './args.ts';
import { connect } from './jobs-command.ts';
import { DEFAULT_DATA_DIR } from './local-command.ts';

export const QUERY_HELP = `Usage: labeler query <image|label|job> ... [options]

Reads results from a running local stack ("labeler local up").

  labeler query image <key> [--bucket <name>]
      Every result stored for this object key (one per model), as JSON lines.

  labeler query label <label> [--min-score <s>] [--limit <n>] [--cursor <c>]
      Images whose <label> scored at least <s>, best first; one DynamoDB Query
      per shard of the label index, merged by score, never a Scan. Scores below ${LABELING.indexMinScore} are stored
      with each result but not indexed, so queries start there. Prints a "next"
      cursor on stderr when more results exist.

  labeler query job <job-id> [--stack <name>]
      Every result the job wrote, one line per image (failed images included).

Prints one JSON line per result, in the shape "labeler label" and "labeler local
run" print: scores rounded to six decimals.

Exit status: 0 when the query ran (even with no results), 1 when the stack cannot
be read, 2 for a usage error: a bad option, a label the model does not have
(the model's labels are listed), or a cursor this query did not return.

Options:
  --bucket <name>    images bucket (default ${RESOURCE_NAMES.imagesBucket})
  --model <dir|name> the model whose results to read (default: the bundled one)
  --data-dir <dir>   the local stack's state folder (default .labeler)
  --stack <name>     query job only: a deployed stack instead of the local one
  --region <r>       with --stack: its region
  -h, --help         show this help`;

export async function queryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    bucket: { type: 'string' },
    'min-score': { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    model: { type: 'string' },
    'data-dir': { type: 'string' },
    stack: { type: 'string' },
    region: { type: 'string' },
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
  if (what !== 'job' && (values.stack !== undefined || values.region !== undefined))
    throw new UsageError('--stack and --region go with "query job"');
  if (what === 'job') return queryJob(subject, values);

  const dataDir = values['data-dir'] ? resolve(values['data-dir']) : DEFAULT_DATA_DIR;
  const { region, endpoints } = await findRunningStack(dataDir);
  const clients = createAwsClients({ region, endpoints: { dynamodb: endpoints.dynamodb }, local: true });
  const store = new DynamoResultsStore(clients.db, RESOURCE_NAMES.resultsTable);
  try {
    if (what === 'image') {
      const results = await store.getByImage(values.bucket ?? RESOURCE_NAMES.imagesBucket, subject);
      for (const r of results) process.stdout.write(`${JSON.stringify(printedResult(r))}\n`);
      if (results.length === 0) process.stderr.write(`no results for ${subject}\n`);
      return 0;
    }
    const bundle = await loadModelBundle(resolveModelDir(values.model));
    const model = `${bundle.manifest.id}@${bundle.manifest.version}`;
    if (!bundle.labels.includes(subject)) {
      throw new UsageError(
        `unknown label "${subject}": model ${model} has the labels ${bundle.labels.map((l) => JSON.stringify(l)).join(', ')}`,
      );
    }
    const page = await store.queryByLabel({
      model: { id: bundle.manifest.id, version: bundle.manifest.version },
      label: subject,
      minScore: unitInterval(values['min-score'], '--min-score', 0),
      limit: positiveInt(values.limit, '--limit', 100),
      ...(values.cursor ? { cursor: values.cursor } : {}),
    });
    for (const hit of page.items) process.stdout.write(`${JSON.stringify(printedHit(hit))}\n`);
    if (page.cursor) process.stderr.write(`next: --cursor ${page.cursor}\n`);
    return 0;
  } catch (error) {
    // The store checks the cursor and the key sizes; both are the caller's arguments.
    if (error instanceof LabelerError && error.code.startsWith('query/')) {
      throw new UsageError(`[${error.code}] ${error.message}`);
    }
    throw error;
  } finally {
    clients.dynamo.destroy();
  }
}

/** A job's results, in the shape `labeler label` prints, failed images included. */
async function queryJob(
  jobId: string,
  values: { stack?: string; region?: string; 'data-dir'?: string; model?: string },
): Promise<number> {
  const connection = await connect(values);
  try {
    if (!(await connection.jobs.get(jobId))) throw new LabelerError('job/not-found', `no job ${jobId}`);
    let count = 0;
    for await (const result of connection.jobs.results(jobId)) {
      count++;
      process.stdout.write(`${JSON.stringify(printedResult(result))}\n`);
    }
    if (count === 0) process.stderr.write(`no results for job ${jobId} yet\n`);
    return 0;
  } finally {
    connection.close();
  }
}
