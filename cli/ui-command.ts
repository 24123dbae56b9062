import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { listPage } from '../shared/aws/list-objects.ts';
import { s3TruthObjects } from '../shared/aws/truth-objects.ts';
import { readStackTruth, readTruthPath } from '../shared/labeling/ground-truth.ts';
import { printedEstimate } from '../shared/labeling/job-estimate.ts';
import { folderPrefix } from '../shared/labeling/job-location.ts';
import { loadModelBundle } from '../shared/model/manifest.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { startUiServer, type UiServer } from '../ui/server.ts';
import { parse, UsageError } from './args.ts';
import { connect } from './jobs-command.ts';
import { openStack, queryApiOf, STACK_HELP, STACK_OPTIONS, type StackValues } from './stack.ts';

export const UI_HELP = `Usage: labeler ui [--stack <name>] [--port <n>] [--model <dir>] [--truth <t>]

Serves the results page on http://127.0.0.1:<port>/ and prints its URL (it opens
no browser): a gallery filtered by label and minimum score or by key prefix, each
image with its scores, jobs with their progress, failures by error code, and a
histogram of top labels. The page reads through your own credentials: objects
through signed S3 GET URLs, results and jobs as the other commands read them.

  --port <n>         port on 127.0.0.1 (default: a free one)
  --model <dir>      the model whose results to show (default: the bundled one)
  --truth <t>        ground truth for the evaluation view of a job or prefix (confusion
                     heat map, per-class bars, reliability diagram, threshold curve):
                     a CSV, ImageFolder folder or Label Studio JSON as "labeler evaluate
                     --truth" reads them, or "stack" for the stack's truth/ answers
${STACK_HELP}

"labeler local up" serves the same page for the local stack.`;

/** Signed object URLs stay valid this long: a page left open keeps its images a while. */
const SIGNED_URL_SECONDS = 3600;

export async function uiCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    port: { type: 'string' },
    model: { type: 'string' },
    truth: { type: 'string' },
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

/** The results page for the stack the options name, until `close()`. */
export async function serveUi(
  values: StackValues & { model?: string; truth?: string },
  port = 0,
): Promise<UiServer> {
  if (values.truth === '') throw new UsageError('--truth takes a CSV, a folder, a JSON export or "stack"');
  // A truth file that cannot be read is said now, not on the first evaluation.
  if (values.truth !== undefined && values.truth !== 'stack') await readTruthPath(values.truth);
  const bundle = await loadModelBundle(resolveModelDir(values.model));
  const stack = await openStack(values);
  const jobs = await connect(values).catch((error: unknown) => {
    stack.close();
    throw error;
  });
  const { s3 } = stack.clients;
  try {
    const server = await startUiServer(
      {
        stack: { kind: stack.kind, name: stack.name },
        bucket: stack.resources.imagesBucket,
        model: { id: bundle.manifest.id, version: bundle.manifest.version },
        labels: bundle.labels,
        // The signed query API, as `labeler query` reads: IAM stays the only door on AWS.
        results: queryApiOf(stack),
        jobs: jobs.jobs,
        // The job form's estimate: the same count and figures as `jobs start --dry-run`.
        estimate: async (prefix, mode) =>
          printedEstimate(await jobs.estimate(stack.resources.imagesBucket, folderPrefix(prefix), mode)),
        listKeys: async (prefix, limit, cursor) => {
          const page = await listPage(s3, {
            bucket: stack.resources.imagesBucket,
            prefix,
            maxKeys: limit,
            ...(cursor ? { token: cursor } : {}),
          });
          return { items: page.objects.map((o) => o.key), ...(page.next ? { cursor: page.next } : {}) };
        },
        // Signed by the stack's own S3 client: the emulator's endpoint locally, AWS with the person's credentials.
        signedUrl: (bucket, key) =>
          getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), {
            expiresIn: SIGNED_URL_SECONDS,
          }),
        ...(values.truth === undefined
          ? {}
          : {
              truth: {
                source: values.truth === 'stack' ? "the stack's truth/ answers" : values.truth,
                read: () =>
                  values.truth === 'stack'
                    ? readStackTruth(s3TruthObjects(s3, stack.resources.resultsBucket))
                    : readTruthPath(values.truth as string),
              },
            }),
      },
      { port },
    );
    return {
      url: server.url,
      close: async () => {
        await server.close();
        jobs.close();
        stack.close();
      },
    };
  } catch (error) {
    jobs.close();
    stack.close();
    throw error;
  }
}
