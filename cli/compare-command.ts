import { s3TruthObjects } from '../shared/aws/truth-objects.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { assertOverlap, Comparer, compareResults } from '../shared/labeling/compare.ts';
import { COMPARE_FORMATS, formatComparison } from '../shared/labeling/compare-format.ts';
import {
  type CompareSelection,
  type ModelChoice,
  readResultsFile,
  resolveModelChoice,
  resultPairs,
} from '../shared/labeling/compare-read.ts';
import {
  type GroundTruth,
  readStackTruth,
  readTruthPath,
  TruthSet,
} from '../shared/labeling/ground-truth.ts';
import { oneOf, parse, positiveInt, UsageError, unitInterval } from './args.ts';
import { signalStatus, stdoutWritten } from './output.ts';
import { resultsModel } from './results-model.ts';
import {
  openStack,
  prefixLocation,
  STACK_HELP,
  STACK_OPTIONS,
  type StackConnection,
  selectionPortsOf,
} from './stack.ts';

export const COMPARE_HELP = `Usage: labeler compare --model <A> --model <B>
                       (--job <id> | --prefix <p> | --results <fileA> --results <fileB>)
                       [--truth <t>] [--threshold <t>] [--top <n>] [--format table|json|markdown]

What changes from model A to model B, over the images both labeled (both results ok):
  - top-1 agreement: the share of images whose top-1 label is the same;
  - the transition matrix: rows A's top-1 label, columns B's; its diagonal agrees;
  - score changes, per image, as histograms (bins of 0.1 from -1 to 1) with mean and
    median: B's top-1 score minus A's, and B's score for A's top-1 label minus A's
    top-1 score (0 for B when that label is outside B's printed top-k);
  - the images that newly fall under --threshold (A's top-1 score at or above it,
    B's below), and how many rise to it;
  - the --top images that changed most: the largest |A's top-1 score - B's score for
    that label|, with both top-1 labels;
  - with --truth: top-1 accuracy of both per class and overall, the difference (B - A),
    the images B gets right that A got wrong, the reverse, and how many both get wrong.

Models (--model twice: A, then B):
  <id>@<version>     results of that model id and version (no folder needed)
  <dir|name>         a model folder or a pulled/exported model's name: its manifest
                     names the id and version, its labels file orders the matrix
  <name>             with --job or --prefix: a model the stack hosts, by its name in
                     the stack (or id), as "jobs start --model" names it

Results (exactly one source):
  --job <id>         the images a labeling job labeled or failed (whatever model it
                     used), with A's and B's results for each
  --prefix <p>       images under s3://<bucket>/<p> (an s3:// URL works too)
  --bucket <b>       with --prefix: the bucket (default: the stack's images bucket)
  --results <file>   twice: A's results, then B's, as JSON Lines of "labeler label
                     --format jsonl", "labeler export --format jsonl" or "labeler
                     query"; - reads stdin (once). Images pair up by bucket and key, or
                     by file path exactly as printed; a line naming another model than
                     its --model is refused (compare/model-mismatch)

Options:
  --truth <t>          ground truth as "labeler evaluate" reads it: a CSV, an
                       ImageFolder tree, a Label Studio JSON export, or "stack"
  --threshold <t>      the score an image newly falls under (0 to 1; default 0.5)
  --top <n>            images in the changed-most list, and at most in each list of the
                       table and Markdown (default 20; json lists everything else whole)
  --format <f>         table (default), json (one object: every number and list) or
                       markdown
${STACK_HELP}
  (--results with no truth or a file truth reads no stack.)

Exit status: 0 when compared; 1 when the stack, the results or the truth cannot be read,
or no image has an ok result from both models (compare/no-overlap); 2 for a usage error
(not two --model, not exactly one source); 3 when a model folder or name cannot be read;
130 on Ctrl-C; 141 when the reader of standard output goes away.`;

const OPTIONS = {
  model: { type: 'string', multiple: true },
  job: { type: 'string' },
  prefix: { type: 'string' },
  bucket: { type: 'string' },
  results: { type: 'string', multiple: true },
  truth: { type: 'string' },
  threshold: { type: 'string' },
  top: { type: 'string' },
  format: { type: 'string' },
  ...STACK_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

export async function compareCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(`${COMPARE_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const models = values.model ?? [];
  if (models.length !== 2)
    throw new UsageError(
      `give --model twice, A then B (got ${models.length}): compare reads two models' results`,
    );
  const chosen = (['job', 'prefix', 'results'] as const).filter((s) => values[s] !== undefined);
  if (chosen.length !== 1)
    throw new UsageError(
      'choose exactly one of --job <id>, --prefix <p> and --results <fileA> --results <fileB>',
    );
  const by = chosen[0] as 'job' | 'prefix' | 'results';
  const files = values.results ?? [];
  if (by === 'results' && files.length !== 2)
    throw new UsageError(`give --results twice, A's file then B's (got ${files.length})`);
  if (files.filter((f) => f === '-').length > 1) throw new UsageError('standard input (-) can be read once');
  if (values.bucket !== undefined && by !== 'prefix') throw new UsageError('--bucket goes with --prefix');
  if (values.truth === '')
    throw new UsageError('--truth needs a value: file.csv, folder, file.json or stack');
  const format = oneOf(values.format, '--format', COMPARE_FORMATS, 'table');
  const threshold = unitInterval(values.threshold, '--threshold', 0.5);
  const top = positiveInt(values.top, '--top', 20);
  if (by === 'prefix') prefixLocation(values, 'bucket-checked-once-connected');

  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write('interrupted: nothing compared\n');
    process.exit(signalStatus(signal));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const needsStack = by !== 'results' || values.truth === 'stack';
  const stack = needsStack ? await openStack(values) : undefined;
  try {
    // Over a stack's results, a model it hosts is named as `jobs start --model` names it too.
    const [a, b] = (await Promise.all(
      models.map((m) =>
        stack && by !== 'results' ? resultsModel(m, stack.resources.models) : resolveModelChoice(m),
      ),
    )) as [ModelChoice, ModelChoice];
    if (by !== 'results' && a.name === b.name)
      throw new UsageError(`both --model name ${a.name}: a stack keeps one result per image and model`);
    const truth = values.truth === undefined ? undefined : new TruthSet(await readTruth(values.truth, stack));
    const options = { threshold, top, ...(truth ? { truth } : {}) };
    let where: string;
    let comparison: ReturnType<Comparer['report']>;
    if (by === 'results') {
      const [fileA, fileB] = files as [string, string];
      where = `in both ${fileA} and ${fileB}`;
      comparison = compareResults(
        { model: a, results: await readResultsFile(fileA, a) },
        { model: b, results: await readResultsFile(fileB, b) },
        options,
      );
    } else {
      const s = needStack(stack);
      const selection: CompareSelection =
        by === 'job'
          ? { by, jobId: values.job as string }
          : { by, ...prefixLocation(values, s.resources.imagesBucket) };
      where =
        selection.by === 'job'
          ? `of job ${selection.jobId}`
          : `under s3://${selection.bucket}/${selection.prefix}`;
      const comparer = new Comparer(a, b, truth);
      for await (const pair of resultPairs(selection, selectionPortsOf(s), a.ref, b.ref))
        comparer.add(pair.a, pair.b);
      comparison = comparer.report(options);
    }
    assertOverlap(comparison, where);
    if (truth && comparison.truth?.images === 0)
      throw new LabelerError(
        CODE.truth.noMatch,
        `no compared image has a truth label in ${truth.source} (${comparison.images.compared} compared, ${truth.size} truth labels)`,
      );
    process.stdout.write(formatComparison(comparison, format, top));
    await stdoutWritten();
    return 0;
  } finally {
    stack?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function readTruth(arg: string, stack: StackConnection | undefined): Promise<GroundTruth> {
  const truth =
    arg === 'stack'
      ? await readStackTruth(
          s3TruthObjects(needStack(stack).clients.s3, needStack(stack).resources.resultsBucket),
        )
      : await readTruthPath(arg);
  if (truth.entries.length === 0)
    throw new LabelerError(CODE.truth.empty, `${truth.source} holds no truth labels`);
  return truth;
}

function needStack(stack: StackConnection | undefined): StackConnection {
  if (!stack) throw new Error('a stack was needed but not opened');
  return stack;
}
