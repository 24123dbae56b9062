import { LabelerError } from '../shared/errors.ts';
import { UsageError } from './args.ts';
import { DOCTOR_HELP, doctorCommand } from './doctor-command.ts';
import { JOBS_HELP, jobsCommand } from './jobs-command.ts';
import { LABEL_HELP, labelCommand } from './label-command.ts';
import { LOCAL_HELP, localCommand } from './local-command.ts';
import { MODEL_HELP, modelCommand } from './model-command.ts';
import { endQuietlyOnClosedPipe } from './output.ts';
import { QUERY_HELP, queryCommand } from './query-command.ts';

const HELP = `Usage: labeler <command> [options]

Labels image datasets with an EfficientNet ONNX model.

Commands:
  label <files or folders...>   label local images, one result line per file
  local up | local run <folder> the whole pipeline on this machine (S3, SQS,
                                DynamoDB emulators + the classify handler)
  query image <key> | query label <label> | query job <job-id>
                                read results from a running local stack
  jobs start|status|list|cancel|failures|schedule
                                labeling jobs over an S3 prefix, on demand or scheduled
  doctor [--stack <name>]       check the pre-steps a stack needs (tools, AWS account)
  model export | model pull     get ImageNet EfficientNets (torchvision export, pinned downloads)

Run "labeler <command> --help" for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  label: { run: labelCommand, help: LABEL_HELP },
  local: { run: localCommand, help: LOCAL_HELP },
  query: { run: queryCommand, help: QUERY_HELP },
  jobs: { run: jobsCommand, help: JOBS_HELP },
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
