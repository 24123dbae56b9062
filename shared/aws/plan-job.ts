import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { mapLimit } from '../labeling/image-labeler.ts';
import type { ListedObject, PlanMessage, PlanPorts } from '../labeling/plan-job.ts';
import { s3EventBody } from '../labeling/s3-event.ts';
import { routeOfJob, type StackModels } from '../labeling/stack-models.ts';
import { stdoutDriftMetric } from '../observability.ts';
import { JOBS } from '../settings.ts';
import type { AwsClients } from './clients.ts';
import { DynamoJobsStore, type RecountOptions } from './dynamo-jobs-store.ts';
import { toLabelerError } from './errors.ts';
import { listPage } from './list-objects.ts';

/** Where a job's state and messages go: names the plan-job function, the CLI and the local stack share. */
export interface JobsResources {
  readonly jobsTable: string;
  readonly resultsTable: string;
  readonly planQueueUrl: string;
  /**
   * The models the stack hosts, each with its own queues (target `lambda`: its classify
   * function's jobs queue; `gpu`: its GPU workers' queue), and the default one.
   */
  readonly models: StackModels;
  /** Buckets the stack's labeling roles may read; a job over any other is refused at start. */
  readonly readableBuckets: readonly string[];
  /**
   * False when nothing consumes the GPU queue (a local stack started without
   * `--gpu-worker`): a job with target `gpu` is refused at start instead of waiting forever.
   */
  readonly gpuWorkers?: boolean;
}

/** Listing failures retrying cannot fix: the job fails with the reason instead of stalling. */
const PERMANENT_LIST_ERRORS = new Set(['NoSuchBucket', 'AccessDenied', 'InvalidBucketName']);

/** The plan-job use case's ports on the AWS SDK: S3 listing, SQS sends, the jobs table. */
export function createPlanPorts(
  clients: AwsClients,
  // Planning never reads results: callers holding the whole JobsResources may pass it.
  names: Omit<JobsResources, 'resultsTable' | 'readableBuckets'> & { readonly resultsTable?: string },
  region: string,
  /** Tests: recount every job in steps (0) of tiny pages. */
  recount: Omit<RecountOptions, 'sendRecount'> = {},
): PlanPorts & { readonly store: DynamoJobsStore } {
  // The planner's own completion checks start a big job's recount chain on its own queue.
  const store = new DynamoJobsStore(clients.db, names.jobsTable, undefined, {
    // A scheduled job the planner finishes (a paged recount's end) sends its drift (decision 0039).
    driftMetric: stdoutDriftMetric,
    ...recount,
    sendRecount: (message) => sendPlan(clients, names.planQueueUrl, message),
  });
  return {
    store,
    jobs: store,
    models: names.models,
    async listPage(bucket, prefix, token, maxKeys) {
      const page = await listPage(clients.s3, {
        bucket,
        prefix,
        maxKeys,
        ...(token ? { token } : {}),
      }).catch((error: unknown) => {
        const name = (error as { name?: string }).name ?? '';
        if (PERMANENT_LIST_ERRORS.has(name)) {
          throw new LabelerError(CODE.job.listFailed, `s3://${bucket}/${prefix} cannot be listed: ${name}`, {
            cause: error,
          });
        }
        throw toLabelerError(error, `S3 ListObjectsV2 s3://${bucket}/${prefix}`);
      });
      const objects: ListedObject[] = page.objects.map(({ key, size, eTag }) => ({ key, size, eTag }));
      return page.next ? { objects, next: page.next } : { objects };
    },
    async sendImages({ target, jobId, mode, model }, bucket, objects) {
      // The job's model's own queue, in messages sized from that model (sizeInvocation).
      const { queueUrl, objectsPerMessage } = routeOfJob(names.models, model, target);
      const bodies: string[] = [];
      for (let i = 0; i < objects.length; i += objectsPerMessage) {
        // Sequencer 0: a job's event never supersedes a real upload event for the same key.
        const records = objects
          .slice(i, i + objectsPerMessage)
          .map((o) => ({ region, bucket, key: o.key, size: o.size, eTag: o.eTag, sequencer: '0' }));
        bodies.push(s3EventBody(records, { jobId, mode }));
      }
      const batches: string[][] = [];
      for (let i = 0; i < bodies.length; i += 10) batches.push(bodies.slice(i, i + 10));
      // A page's batches go out JOBS.sendConcurrency at a time: one after another, they and
      // not the listing bound the planner's rate (shared/labeling/capacity-plan.ts).
      await mapLimit(batches, JOBS.sendConcurrency, async (batch) => {
        const entries = batch.map((body, n) => ({ Id: String(n), MessageBody: body }));
        const sent = await clients.sqs
          .send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }))
          .catch((error: unknown) => {
            throw toLabelerError(error, 'SQS SendMessageBatch');
          });
        if ((sent.Failed ?? []).length > 0) {
          // The whole step is redone; the images already sent are counted once by the workers.
          throw new LabelerError(
            CODE.job.enqueueFailed,
            `${sent.Failed?.length} messages were refused by the queue`,
            {
              permanent: false,
            },
          );
        }
      });
    },
    async sendPlan(message: PlanMessage) {
      await sendPlan(clients, names.planQueueUrl, message);
    },
  };
}

/** One message to the plan queue: a plan step or a recount step. */
export async function sendPlan(
  clients: Pick<AwsClients, 'sqs'>,
  planQueueUrl: string,
  message: PlanMessage,
): Promise<void> {
  await clients.sqs
    .send(new SendMessageCommand({ QueueUrl: planQueueUrl, MessageBody: JSON.stringify(message) }))
    .catch((error: unknown) => {
      throw toLabelerError(error, 'SQS SendMessage (plan)');
    });
}
