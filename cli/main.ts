import { LabelerError } from '../shared/errors.ts';
import { UsageError } from './args.ts';
import { DLQ_HELP, dlqCommand } from './dlq-command.ts';
import { DOCTOR_HELP, doctorCommand } from './doctor-command.ts';
import { EXPORT_HELP, exportCommand } from './export-command.ts';
import { JOBS_HELP, jobsCommand } from './jobs-command.ts';
import { LABEL_HELP, labelCommand } from './label-command.ts';
import { LOCAL_HELP, localCommand } from './local-command.ts';
import { MODEL_HELP, modelCommand } from './model-command.ts';
import { endQuietlyOnClosedPipe } from './output.ts';
import { QUERY_HELP, queryCommand } from './query-command.ts';
import { STATUS_HELP, statusCommand } from './status-command.ts';
import { UI_HELP, uiCommand } from './ui-command.ts';
import { UPLOAD_HELP, uploadCommand } from './upload-command.ts';

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
  dlq list | dlq redrive [--queue incoming|bulk|plan]
                                see and redrive the dead-letter queues
  jobs start|status|list|cancel|failures|schedule
                                labeling jobs over an S3 prefix, on demand or scheduled
  ui [--stack <name>]           the results page on 127.0.0.1: gallery, jobs, failures
  doctor [--stack <name>]       check the pre-steps a stack needs (tools, AWS account)
  model export|pull|quantize
                                get ImageNet EfficientNets; make an INT8 variant of one

Run "labeler <command> --help" for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  label: { run: labelCommand, help: LABEL_HELP },
  local: { run: localCommand, help: LOCAL_HELP },
  upload: { run: uploadCommand, help: UPLOAD_HELP },
  status: { run: statusCommand, help: STATUS_HELP },
  query: { run: queryCommand, help: QUERY_HELP },
  jobs: { run: jobsCommand, help: JOBS_HELP },
  export: { run: exportCommand, help: EXPORT_HELP },
  dlq: { run: dlqCommand, help: DLQ_HELP },
  ui: { run: uiCommand, help: UI_HELP },
  doctor: { run: doctorCommand, help: DOCTOR_HELP },
  model: { run: modelCommand, help: MODEL_HELP },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`labeler: unknown command "${name}"\n\n${HELP}\n`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`labeler ${name}: ${error.message}\n\n${command.help}\n`);
      return 2;
    }
    if (error instanceof LabelerError) {
      process.stderr.write(`labeler ${name}: [${error.code}] ${error.message}\n`);
      return error.code.startsWith('model/') ? 3 : 1;
    }
    throw error;
  }
}

endQuietlyOnClosedPipe();
process.exitCode = await main(process.argv.slice(2));
