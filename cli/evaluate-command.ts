import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { s3TruthObjects } from '../shared/aws/truth-objects.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import {
  DEFAULT_THRESHOLDS,
  Evaluator,
  resultFromLine,
  resultFromStore,
} from '../shared/labeling/evaluate.ts';
import { EVALUATE_FORMATS, formatEvaluation } from '../shared/labeling/evaluate-format.ts';
import { type ExportSelection, selectResults } from '../shared/labeling/export.ts';
import {
  type GroundTruth,
  readStackTruth,
  readTruthPath,
  TruthSet,
} from '../shared/labeling/ground-truth.ts';
import type { ModelRef } from '../shared/labeling/results.ts';
import { loadModelBundle } from '../shared/model/manifest.ts';
import { LABELING } from '../shared/settings.ts';
import { oneOf, parse, positiveInt, UsageError, unitInterval } from './args.ts';
import { signalStatus, stdoutWritten } from './output.ts';
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

export const EVALUATE_HELP = `Usage: labeler evaluate (--job <id> | --prefix <p> | --results <file|->) --truth <t>
                        [--format table|json|markdown] [--min-accuracy <a>]

How good the labels are: compares the top-1 (and top-k) labels of a selection of
results with ground truth and prints
  - top-1 and top-k accuracy over every image with a truth label (a failed image, or
    one without a result, is a miss);
  - per class: support (images of the class), predicted, precision, recall and F1,
    and macro averages over the classes with images;
  - the confusion matrix (rows: truth; columns: top-1 label, then "(none)" for images
    without a result or with a failed one); it sums to the images evaluated;
  - calibration: top-1 score bins with their mean score and accuracy, and the
    expected calibration error (the bins' |accuracy - mean score|, weighted by images);
  - thresholds: for each minimum top-1 score, the share of the images at or above it
    and their accuracy.

Results (exactly one):
  --job <id>         every image a labeling job labeled or failed
  --prefix <p>       images under s3://<bucket>/<p> (an s3:// URL works too); images
                     without a result count in the "(none)" column
  --bucket <b>       with --prefix: the bucket (default: the stack's images bucket)
  --results <file>   JSON Lines as "labeler label --format jsonl", "labeler export
                     --format jsonl" or "labeler query" print them; - reads stdin

Truth (--truth, required):
  <file>.csv         "key,label" or "file,label" rows, header optional (a header may
                     also name a bucket column), as models/fashion-efficientnet/samples.csv
  <folder>           an ImageFolder tree: <folder>/<class>/.../<image>, as torchvision
                     reads it; keys are the paths under <folder>
  <file>.json        a Label Studio JSON export: each task's data.image and the newest
                     annotation's choice (s3://bucket/key images keep their bucket)
  stack              the stack's stored review answers ("labeler review import": JSON
                     Lines under truth/ in its results bucket); the newest per image wins
  A truth key matches a result whose key (or file path) ends with it at a "/", the
  longest such key first, else a result with the same file name when only one truth
  key has it. A truth label the model does not have is reported (truth/unknown-label)
  and its images count as misses; results without truth are counted, not evaluated.

Options:
  --format <f>         table (default), json (one object: every number above, the
                       confusion matrix included) or markdown
  --top-k <n>          top-k accuracy's k (default ${LABELING.topK})
  --bins <n>           calibration bins of equal width (default 10)
  --thresholds <list>  minimum scores for the threshold table, comma-separated
                       (default ${DEFAULT_THRESHOLDS.join(',')})
  --min-accuracy <a>   print the lowest minimum score whose images reach accuracy <a>
                       (0 to 1, as 0.98) and the share of the images it keeps
  --model <m>          the model whose classes make the rows and, with --prefix, whose
                       results to read: a hosted model's name, id or id@version, a folder
                       or a pulled name (default: the job's model, else the stack's
                       default model; with --results and a truth file, the bundled one)
${STACK_HELP}
  (--results with a file truth reads no stack.)

Exit status: 0 when evaluated; 1 when the stack, the results or the truth cannot be
read, or no selected image has a truth label; 2 for a usage error; 130 on Ctrl-C;
141 when the reader of standard output goes away.`;

const OPTIONS = {
  job: { type: 'string' },
  prefix: { type: 'string' },
  bucket: { type: 'string' },
  results: { type: 'string' },
  truth: { type: 'string' },
  format: { type: 'string' },
  'top-k': { type: 'string' },
  bins: { type: 'string' },
  thresholds: { type: 'string' },
  'min-accuracy': { type: 'string' },
  model: { type: 'string' },
  ...STACK_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

export async function evaluateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(`${EVALUATE_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const chosen = (['job', 'prefix', 'results'] as const).filter((s) => values[s] !== undefined);
  if (chosen.length !== 1)
    throw new UsageError('choose exactly one of --job <id>, --prefix <p> and --results <file|->');
  const by = chosen[0] as 'job' | 'prefix' | 'results';
  if (values.bucket !== undefined && by !== 'prefix') throw new UsageError('--bucket goes with --prefix');
  const truthArg = values.truth;
  if (truthArg === undefined || truthArg === '')
    throw new UsageError('--truth <file.csv|folder|file.json|stack> is required');
  const format = oneOf(values.format, '--format', EVALUATE_FORMATS, 'table');
  const topK = positiveInt(values['top-k'], '--top-k', LABELING.topK);
  const bins = positiveInt(values.bins, '--bins', 10);
  const thresholds =
    values.thresholds === undefined
      ? undefined
      : values.thresholds.split(',').map((t) => unitInterval(t.trim(), '--thresholds', 0));
  const minAccuracy =
    values['min-accuracy'] === undefined
      ? undefined
      : unitInterval(values['min-accuracy'], '--min-accuracy', 1);
  if (by === 'prefix') prefixLocation(values, 'bucket-checked-once-connected');

  // Ctrl-C while reading: nothing was printed yet, so nothing is half printed.
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write('interrupted: nothing evaluated\n');
    process.exit(signalStatus(signal));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const needsStack = by !== 'results' || truthArg === 'stack';
  const stack = needsStack ? await openStack(values) : undefined;
  try {
    // The classes of --model, else of the job's model, else of the stack's default model.
    const job = by === 'job' && stack ? await jobsServiceOf(stack).get(values.job as string) : undefined;
    const bundle = await loadModelBundle(
      await labelsModelDir(stack?.resources.models, values.model, job?.model),
    );
    const model: ModelRef = { id: bundle.manifest.id, version: bundle.manifest.version };
    const truth: GroundTruth =
      truthArg === 'stack'
        ? await readStackTruth(
            s3TruthObjects(needStack(stack).clients.s3, needStack(stack).resources.resultsBucket),
          )
        : await readTruthPath(truthArg);
    if (truth.entries.length === 0)
      throw new LabelerError(CODE.truth.empty, `${truth.source} holds no truth labels`);
    const evaluator = new Evaluator(bundle.labels, new TruthSet(truth));

    if (by === 'results') {
      const file = values.results as string;
      const input =
        file === '-'
          ? process.stdin
          : (
              await open(file).catch((cause: NodeJS.ErrnoException) => {
                throw new LabelerError(CODE.results.unreadable, `${file} cannot be read: ${cause.message}`, {
                  cause,
                });
              })
            ).createReadStream({ encoding: 'utf8' });
      let n = 0;
      for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
        n++;
        if (line.trim() === '') continue;
        evaluator.add(resultFromLine(line, `${file === '-' ? 'standard input' : file} line ${n}`));
      }
    } else {
      const s = needStack(stack);
      const selection: ExportSelection =
        by === 'job'
          ? { by, jobId: values.job as string }
          : { by, model, ...prefixLocation(values, s.resources.imagesBucket) };
      const ports = selectionPortsOf(s);
      const tally = {
        withoutResult: 0,
        onMissing: (image: { bucket: string; key: string }) => evaluator.addMissing(image),
      };
      for await (const result of selectResults(selection, ports, tally))
        evaluator.add(resultFromStore(result));
    }

    const report = evaluator.report({
      topK,
      bins,
      ...(thresholds ? { thresholds } : {}),
      ...(minAccuracy === undefined ? {} : { minAccuracy }),
    });
    if (report.images === 0) {
      throw new LabelerError(
        CODE.truth.noMatch,
        `no selected image has a truth label in ${truth.source} (${report.withoutTruth} results, ${truth.entries.length} truth labels; e.g. truth key ${JSON.stringify(truth.entries[0]?.key)})`,
      );
    }
    process.stdout.write(formatEvaluation(report, format));
    await stdoutWritten();
    return 0;
  } finally {
    stack?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function needStack(stack: StackConnection | undefined): StackConnection {
  if (!stack) throw new Error('a stack was needed but not opened');
  return stack;
}
