import { listPage } from '../shared/aws/list-objects.ts';
import { presignedGetUrl } from '../shared/aws/presign.ts';
import { s3TruthObjects } from '../shared/aws/truth-objects.ts';
import { CODE } from '../shared/error-codes.ts';
import { ModelError } from '../shared/errors.ts';
import { type ModelChoice, resolveModelChoice } from '../shared/labeling/compare-read.ts';
import { readStackTruth, readTruthPath } from '../shared/labeling/ground-truth.ts';
import { printedEstimate } from '../shared/labeling/job-estimate.ts';
import { folderPrefix } from '../shared/labeling/job-location.ts';
import { startUiServer, type UiServer } from '../ui/server.ts';
import { UsageError } from './args.ts';
import { folderModel, resultsModel } from './results-model.ts';
import { type JobsConnection, openJobs, openStack, queryApiOf, type StackValues } from './stack.ts';

/** Signed object URLs stay valid this long: a page left open keeps its images a while. */
const SIGNED_URL_SECONDS = 3600;

/** The page filters by label: it needs the model's labels, from its folder. */
function pageModel(model: ModelChoice): ModelChoice & { classes: readonly string[] } {
  if (model.classes) return { ...model, classes: model.classes };
  throw new ModelError(
    CODE.model.notFound,
    `the page needs the labels of ${model.name}, whose folder is not on this machine: give --model <its folder>`,
  );
}

/** The results page for the stack the options name, until `close()`. */
export async function serveUi(
  values: StackValues & { model?: string; truth?: string; compare?: string },
  port = 0,
): Promise<UiServer> {
  if (values.truth === '') throw new UsageError('--truth takes a CSV, a folder, a JSON export or "stack"');
  const compareRefs = values.compare?.split(',').map((m) => m.trim());
  if (compareRefs && (compareRefs.length !== 2 || compareRefs.some((m) => m === '')))
    throw new UsageError(`--compare takes two models, A,B (as fashion@1.0.0,int8/), got "${values.compare}"`);
  const compare = compareRefs
    ? ((await Promise.all(compareRefs.map(resolveModelChoice))) as [ModelChoice, ModelChoice])
    : undefined;
  // A truth file that cannot be read is said now, not on the first evaluation.
  if (values.truth !== undefined && values.truth !== 'stack') await readTruthPath(values.truth);
  // A folder is read before connecting; anything else (and the default) after, against
  // the stack's models: by default the page shows what uploads get, the stack's default.
  const folder = await folderModel(values.model);
  const stack = await openStack(values);
  let shown: ModelChoice & { classes: readonly string[] };
  let jobs: JobsConnection;
  try {
    shown = await pageModel(folder ?? (await resultsModel(values.model, stack.resources.models)));
    // The page's job form labels with the shown model where the stack hosts it, else the default.
    const hosted = stack.resources.models.models.find(
      (m) => m.id === shown.ref.id && m.version === shown.ref.version,
    );
    jobs = await openJobs({ ...values, model: hosted?.name });
  } catch (error) {
    stack.close();
    throw error;
  }
  const { s3 } = stack.clients;
  try {
    const server = await startUiServer(
      {
        stack: { kind: stack.kind, name: stack.name },
        bucket: stack.resources.imagesBucket,
        model: shown.ref,
        labels: shown.classes,
        // The signed query API, as `labeler query` reads: IAM stays the only door on AWS.
        results: queryApiOf(stack),
        jobs: jobs.jobs,
        // The job form's estimate: the same count and figures as `jobs start --dry-run`.
        estimate: async (prefix, mode, sample) =>
          printedEstimate(
            await jobs.estimate(stack.resources.imagesBucket, folderPrefix(prefix), mode, sample),
          ),
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
        signedUrl: (bucket, key) => presignedGetUrl(s3, bucket, key, SIGNED_URL_SECONDS),
        ...(compare ? { compare } : {}),
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
