import { relative } from 'node:path';
import { AccuracyCounter, readExpectedLabels } from '../shared/labeling/accuracy.ts';
import { createImageLabeler } from '../shared/labeling/create-labeler.ts';
import type { LabelOutcome } from '../shared/labeling/image-labeler.ts';
import { printedOutcome } from '../shared/labeling/result-contract.ts';
import { type LocalFile, listFiles, readLocalFile } from '../shared/local-files.ts';
import { DEFAULT_MODEL_DIR } from '../shared/paths.ts';
import { LABELING } from '../shared/settings.ts';
import { oneOf, parse, positiveInt, UsageError } from './args.ts';
import { count, reportAccuracy } from './output.ts';
import { Progress } from './progress.ts';

export const LABEL_HELP = `Usage: labeler label <file or folder>... [options]

Labels local images with the model and prints one result per file. Folders are
walked recursively, following symbolic links (hidden files skipped). A bad file
never stops the run: every path named or found gets exactly one row, a "failed"
one with a stable error code for a bad image or a path that is missing
(file/not-found), unreadable (file/unreadable), not a regular file such as a FIFO
or device (file/not-regular), or a link loop (file/symlink-loop).

Options:
  --model <dir|name>   model folder with manifest.json, or the name of a model
                       pulled or exported (labeler model --help); default: the
                       bundled Fashion-MNIST EfficientNet
  --top-k <n>          labels per image (default ${LABELING.topK}, or every class of a
                       model with fewer); more than the model's classes is refused
  --batch-size <n>     images per inference run (default ${LABELING.batchSize})
  --concurrency <n>    images decoded at once (default: the number of cores)
  --threads <n>        inference threads (default: the number of cores)
  --format <f>         jsonl (one JSON object per line, the machine contract) or
                       table (default: table on a terminal, jsonl otherwise)
  --expect <csv>       a "file,label" CSV: report top-1 accuracy on stderr
  -h, --help           show this help

Output (jsonl), exactly one line per input file:
  {"file":"a.png","status":"ok","labels":[{"label":"Sneaker","score":0.97},...]}
  {"file":"b.jpg","status":"failed","error":{"code":"image/decode-failed","message":"..."}}

Exit status: 0 when every path got its row (ok or failed); 1 when the run cannot
start for another reason (the --expect CSV is missing or malformed); 2 for a usage
error; 3 when the model cannot be loaded; 141 when the reader of stdout goes away
before the last row (as in "| head -1"): the run stops quietly, as cat does.`;

export async function labelCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' },
    'top-k': { type: 'string' },
    'batch-size': { type: 'string' },
    concurrency: { type: 'string' },
    threads: { type: 'string' },
    format: { type: 'string' },
    expect: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(`${LABEL_HELP}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('name at least one file or folder to label');
  const format = oneOf(
    values.format,
    '--format',
    ['jsonl', 'table'],
    process.stdout.isTTY ? 'table' : 'jsonl',
  );
  const topK = positiveInt(values['top-k'], '--top-k', LABELING.topK);
  const batchSize = positiveInt(values['batch-size'], '--batch-size', LABELING.batchSize);
  const concurrency = values.concurrency ? positiveInt(values.concurrency, '--concurrency', 1) : undefined;
  const threads = values.threads ? positiveInt(values.threads, '--threads', 1) : undefined;
  const expected = values.expect ? await readExpectedLabels(values.expect) : undefined;

  const files = await listFiles(positionals);
  const labeler = await createImageLabeler({
    modelDir: values.model ?? DEFAULT_MODEL_DIR,
    topK,
    batchSize,
    ...(concurrency ? { concurrency } : {}),
    ...(threads ? { intraOpThreads: threads } : {}),
  });
  const classes = labeler.classifier.labels.length;
  if (values['top-k'] !== undefined && topK > classes) {
    await labeler.classifier.release();
    throw new UsageError(
      `--top-k ${topK} asks for more labels than model ${labeler.classifier.manifest.id} has classes (${classes})`,
    );
  }
  const maxBytes = labeler.settings.limits.maxBytes;
  const accuracy = expected ? new AccuracyCounter(expected) : undefined;
  const progress = new Progress(files.length);
  const started = performance.now();
  let ok = 0;
  let failed = 0;
  // A path that cannot be read fails in the reader, so it gets its row in order like any bad image.
  const read = (file: LocalFile) =>
    file.error ? Promise.reject(file.error) : readLocalFile(file.path, maxBytes);
  for await (const batch of labeler.labelAll(files, read)) {
    const lines: string[] = [];
    let batchFailed = 0;
    for (const { item, outcome } of batch) {
      const { path } = item;
      lines.push(format === 'jsonl' ? JSON.stringify(jsonRow(path, outcome)) : tableRow(path, outcome));
      if (outcome.status === 'ok') ok++;
      else batchFailed++;
      accuracy?.add(path, outcome.status === 'ok' ? outcome.labels[0]?.label : undefined);
    }
    failed += batchFailed;
    process.stdout.write(`${lines.join('\n')}\n`);
    progress.tick(batch.length, batchFailed);
  }
  progress.finish();
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    `labeled ${count(files.length, 'file')}: ${ok} ok, ${failed} failed in ${seconds.toFixed(2)} s` +
      ` (${(files.length / Math.max(seconds, 1e-9)).toFixed(1)} images/s, model ${labeler.classifier.manifest.id})\n`,
  );
  reportAccuracy(accuracy);
  await labeler.classifier.release();
  return 0;
}

/** A file's row: `file`, then the outcome as a stored result prints it (the result contract). */
export function jsonRow(file: string, outcome: LabelOutcome): Record<string, unknown> {
  return { file, ...printedOutcome(outcome) };
}

function tableRow(file: string, outcome: LabelOutcome): string {
  const name = relative(process.cwd(), file) || file;
  if (outcome.status === 'failed') return `${name}\tFAILED ${outcome.error.code}: ${outcome.error.message}`;
  return `${name}\t${outcome.labels.map((l) => `${l.label} ${l.score.toFixed(3)}`).join(', ')}`;
}
