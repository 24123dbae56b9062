import { parse, UsageError } from './args.ts';
import { serveUi } from './results-page.ts';
import { STACK_HELP, STACK_OPTIONS } from './stack.ts';

export const UI_HELP = `Usage: labeler ui [--stack <name>] [--port <n>] [--model <m>] [--truth <t>] [--compare <A>,<B>]

Serves the results page on http://127.0.0.1:<port>/ and prints its URL (it opens
no browser): a gallery filtered by label and minimum score or by key prefix, each
image with its scores, jobs with their progress, failures by error code, and a
histogram of top labels. The page reads through your own credentials: objects
through signed S3 GET URLs, results and jobs as the other commands read them.

  --port <n>         port on 127.0.0.1 (default: a free one)
  --model <m>        the model whose results to show: one the stack hosts (name, id
                     or id@version), a folder or a model name (default: the stack's
                     default model, the one uploads get)
  --truth <t>        ground truth for the evaluation view of a job or prefix (confusion
                     heat map, per-class bars, reliability diagram, threshold curve):
                     a CSV, ImageFolder folder or Label Studio JSON as "labeler evaluate
                     --truth" reads them, or "stack" for the stack's truth/ answers
  --compare <A>,<B>  two models for the comparison view of a job or prefix ("labeler
                     compare": agreement, the A→B transition matrix, the images that
                     changed most side by side); each id@version, a folder or a name
${STACK_HELP}

"labeler local up" serves the same page for the local stack.`;

export async function uiCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    port: { type: 'string' },
    model: { type: 'string' },
    truth: { type: 'string' },
    compare: { type: 'string' },
    ...STACK_OPTIONS,
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(`${UI_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`"ui" takes no arguments, got ${positionals.join(' ')}`);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port must be a port number (0-65535), got ${values.port}`);

  const ui = await serveUi(values, port);
  process.stdout.write(`Results page: ${ui.url} (Ctrl-C stops it)\n`);
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await ui.close();
  return 0;
}
