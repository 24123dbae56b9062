import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exitStatusOf, systemCode } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { PACKAGE_ROOT } from '../shared/paths.ts';
import { UsageError } from './args.ts';
import { endQuietlyOnClosedPipe } from './output.ts';

const HELP = `Usage: labeler <command> [options]

Labels image datasets with an EfficientNet ONNX model.

Commands:
  label <files or folders...>   label local images, one result line per file
  local up | local run <folder> the whole pipeline on this machine (S3, SQS,
                                DynamoDB emulators + the classify handler)
  upload <files or folders...>  upload images to a stack's images bucket (resumable;
                                --wait prints their results)
  status                        queue depths, recent results and running jobs of a stack
  query image <key> | query label <label> | query job <job-id>
                                read results through a stack's signed query API
                                (--format jsonl|table|csv)
  export (--label <l> | --prefix <p> | --job <id>) --format <f> --out <o>
                                every result of a selection as JSON Lines, CSV or
                                Parquet, to a file, S3 or standard output
  evaluate (--job <id> | --prefix <p> | --results <file>) --truth <csv|folder|json|stack>
                                how good the labels are: accuracy, per-class precision/
                                recall/F1, confusion matrix, calibration, thresholds
  compare --model <A> --model <B> (--job <id> | --prefix <p> | --results <a> --results <b>)
                                what changes from model A to B: agreement, transition
                                matrix, score changes; with --truth, who is right where
  review export (--job <id> | --prefix <p>) --format label-studio|fiftyone --out <f>
  review import <label-studio export>
                                the least certain results as Label Studio tasks or a
                                FiftyOne dataset; the people's answers back as ground truth
  dlq list | dlq redrive [--queue incoming|jobs|bulk|plan]
                                see and redrive the dead-letter queues
  jobs start|status|list|cancel|failures|schedule
                                labeling jobs over an S3 prefix, on demand or scheduled
  ui [--stack <name>]           the results page on 127.0.0.1: gallery, jobs, failures
  doctor [--stack <name>]       check the pre-steps a stack needs (tools, AWS account)
  model export|pull|quantize
                                get ImageNet EfficientNets; make an INT8 variant of one

Run "labeler <command> --help" for a command's options; "labeler --version" prints
the version.`;

interface Command {
  readonly run: (argv: string[]) => Promise<number>;
  readonly help: string;
}

// Each command's module is loaded when it runs: loading all of them (the AWS SDK, the
// local stack, onnxruntime, sharp) took 1.6 s before even "--help" could answer.
const COMMANDS: Record<string, () => Promise<Command>> = {
  label: () => import('./label-command.ts').then((m) => ({ run: m.labelCommand, help: m.LABEL_HELP })),
  local: () => import('./local-command.ts').then((m) => ({ run: m.localCommand, help: m.LOCAL_HELP })),
  upload: () => import('./upload-command.ts').then((m) => ({ run: m.uploadCommand, help: m.UPLOAD_HELP })),
  status: () => import('./status-command.ts').then((m) => ({ run: m.statusCommand, help: m.STATUS_HELP })),
  query: () => import('./query-command.ts').then((m) => ({ run: m.queryCommand, help: m.QUERY_HELP })),
  jobs: () => import('./jobs-command.ts').then((m) => ({ run: m.jobsCommand, help: m.JOBS_HELP })),
  export: () => import('./export-command.ts').then((m) => ({ run: m.exportCommand, help: m.EXPORT_HELP })),
  evaluate: () =>
    import('./evaluate-command.ts').then((m) => ({ run: m.evaluateCommand, help: m.EVALUATE_HELP })),
  compare: () =>
    import('./compare-command.ts').then((m) => ({ run: m.compareCommand, help: m.COMPARE_HELP })),
  review: () => import('./review-command.ts').then((m) => ({ run: m.reviewCommand, help: m.REVIEW_HELP })),
  dlq: () => import('./dlq-command.ts').then((m) => ({ run: m.dlqCommand, help: m.DLQ_HELP })),
  ui: () => import('./ui-command.ts').then((m) => ({ run: m.uiCommand, help: m.UI_HELP })),
  doctor: () => import('./doctor-command.ts').then((m) => ({ run: m.doctorCommand, help: m.DOCTOR_HELP })),
  model: () => import('./model-command.ts').then((m) => ({ run: m.modelCommand, help: m.MODEL_HELP })),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    const { version } = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    process.stdout.write(`labeler ${version}\n`);
    return 0;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`labeler: unknown command "${name}"\nsee "labeler --help"\n`);
    return 2;
  }
  const command = await load();
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(
        `labeler ${name}: ${error.message}\n${error.showHelp ? `\n${command.help}\n` : `see "labeler ${name} --help"\n`}`,
      );
      return 2;
    }
    if (error instanceof LabelerError) {
      process.stderr.write(`labeler ${name}: [${error.code}] ${error.message}\n`);
      return exitStatusOf(error.code);
    }
    // A system call the command did not expect to fail (EACCES, ENOSPC, EADDRINUSE, ...):
    // still one coded line, not a stack trace.
    if (isSystemError(error)) {
      process.stderr.write(`labeler ${name}: [${systemCode(error.code)}] ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

function isSystemError(error: unknown): error is NodeJS.ErrnoException & { code: string } {
  const e = error as NodeJS.ErrnoException;
  return error instanceof Error && typeof e.syscall === 'string' && typeof e.code === 'string';
}

endQuietlyOnClosedPipe();
process.exitCode = await main(process.argv.slice(2));
