import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { CODE } from '../error-codes.ts';
import { errorMessage, LabelerError } from '../errors.ts';
import { parsePlanMessage } from '../labeling/plan-job.ts';
import type { ModelRef, ResultsStore } from '../labeling/results.ts';
import { imageId } from '../labeling/results.ts';
import { parseS3EventBody } from '../labeling/s3-event.ts';
import { toLabelerError } from './errors.ts';

/** The pipeline's queues that have a dead-letter queue. */
export type DlqRole = 'incoming' | 'jobs' | 'bulk' | 'plan';
export const DLQ_ROLES: readonly DlqRole[] = ['incoming', 'jobs', 'bulk', 'plan'];
/** A queue by role, or one hosted model's jobs or bulk queue on a stack with several (`jobs:<model>`). */
export type DlqName = DlqRole | `${'jobs' | 'bulk'}:${string}`;

/** A message in a dead-letter queue, with what it was about and why it is there. */
export interface DeadLetter {
  readonly queue: DlqName;
  readonly messageId: string;
  /** Receives in the source queue and the DLQ together (SQS keeps counting after the move), listings included. */
  readonly receiveCount: number;
  readonly sentAt?: string;
  /** The objects an S3 event or job message names; empty for a plan step or an unreadable body. */
  readonly objects: ReadonlyArray<{ readonly bucket: string; readonly key: string }>;
  readonly jobId?: string;
  readonly error: { readonly code: string; readonly message: string };
}

/** How long a listing keeps the messages it has read invisible, should it die before handing them back. */
export const LIST_VISIBILITY_SECONDS = 30;

export interface DeadLetterQueue {
  readonly role: DlqName;
  readonly dlqUrl: string;
  /** Where `redrive` returns the messages: the queue whose redrive policy sent them here. */
  readonly sourceUrl: string;
}

/**
 * Reads up to `max` messages without consuming them: each is received with a short
 * visibility timeout, kept invisible until the listing is complete (so no message is
 * read twice), then made visible again at once. Why each is there comes from its body
 * (the parsers the handlers use: an unreadable body fails the same way every time) and,
 * for S3 events, from the results table: the objects without a result under `model` are
 * the ones whose every attempt failed transiently.
 */
export async function listDeadLetters(
  sqs: SQSClient,
  queue: DeadLetterQueue,
  options: { max: number; results: Pick<ResultsStore, 'findExisting'>; model: ModelRef },
): Promise<DeadLetter[]> {
  const received = new Map<string, Message>();
  try {
    // Two empty long polls in a row: SQS may answer one receive from a subset of its hosts.
    for (let empty = 0; empty < 2 && received.size < options.max; ) {
      const response = await sqs
        .send(
          new ReceiveMessageCommand({
            QueueUrl: queue.dlqUrl,
            MaxNumberOfMessages: Math.min(10, options.max - received.size),
            VisibilityTimeout: LIST_VISIBILITY_SECONDS,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
        )
        .catch((error: unknown) => {
          throw toLabelerError(error, `SQS ReceiveMessage (${queue.role} DLQ)`);
        });
      const messages = response.Messages ?? [];
      empty = messages.length === 0 ? empty + 1 : 0;
      for (const m of messages) if (m.MessageId) received.set(m.MessageId, m);
    }
  } finally {
    await makeVisible(sqs, queue.dlqUrl, [...received.values()]);
  }
  const letters = [...received.values()].map((m) => describe(queue.role, m));
  return explainTransient(letters, options.results, options.model);
}

async function makeVisible(sqs: SQSClient, queueUrl: string, messages: readonly Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    await sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.slice(i, i + 10).map((m, j) => ({
            Id: String(j),
            ReceiptHandle: m.ReceiptHandle ?? '',
            VisibilityTimeout: 0,
          })),
        }),
      )
      // Not fatal: a message left invisible comes back by itself after LIST_VISIBILITY_SECONDS.
      .catch(() => undefined);
  }
}

const RETRIES_EXHAUSTED = CODE.dlq.retriesExhausted;

function describe(queue: DlqName, m: Message): DeadLetter {
  const attributes = m.Attributes ?? {};
  const sent = Number(attributes.SentTimestamp);
  const base = {
    queue,
    messageId: m.MessageId ?? '',
    receiveCount: Number(attributes.ApproximateReceiveCount ?? 0),
    ...(Number.isFinite(sent) && sent > 0 ? { sentAt: new Date(sent).toISOString() } : {}),
  };
  // A handler that knows why may say so in an attribute; none of ours can (a batch failure
  // response carries only message ids), but a hand-sent or future one might.
  const stated = m.MessageAttributes?.error?.StringValue;
  const body = m.Body ?? '';
  if (queue === 'plan') {
    try {
      const step = parsePlanMessage(body);
      return {
        ...base,
        objects: [],
        ...(step.kind === 'start' ? {} : { jobId: step.jobId }),
        error: stated
          ? { code: CODE.dlq.stated, message: stated }
          : {
              code: RETRIES_EXHAUSTED,
              message:
                step.kind === 'start'
                  ? `the plan step that starts a job over s3://${step.request.bucket}/${step.request.prefix} failed every attempt; the plan-job logs name message ${base.messageId}`
                  : step.kind === 'recount'
                    ? `the finishing recount of ${step.jobId} (shard ${step.shard}) failed every attempt; the job stays ${'`running`'} until a completion check starts it again; the plan-job logs name message ${base.messageId}`
                    : `plan step ${step.page} failed every attempt; the plan-job logs name message ${base.messageId}`,
            },
      };
    } catch (error) {
      const code = error instanceof LabelerError ? error.code : CODE.job.invalidRequest;
      return { ...base, objects: [], error: { code, message: errorMessage(error) } };
    }
  }
  const parsed = parseS3EventBody(body);
  if (parsed.kind === 'invalid')
    return { ...base, objects: [], error: { code: CODE.dlq.invalidMessage, message: parsed.reason } };
  if (parsed.kind === 'test') {
    return { ...base, objects: [], error: { code: CODE.dlq.testEvent, message: 'an S3 test event' } };
  }
  const jobId = parsed.objects.find((o) => o.jobId)?.jobId;
  return {
    ...base,
    objects: parsed.objects.map((o) => ({ bucket: o.bucket, key: o.key })),
    ...(jobId ? { jobId } : {}),
    error: stated
      ? { code: CODE.dlq.stated, message: stated }
      : {
          code: RETRIES_EXHAUSTED,
          message: `failed every attempt; the classify logs name message ${base.messageId}`,
        },
  };
}

/**
 * An S3 event message fails only transiently (a permanent image error is stored as a
 * failed result and the message acknowledged), so the objects that still have no result
 * are the ones that failed; saying which beats saying only "retries exhausted".
 */
async function explainTransient(
  letters: DeadLetter[],
  results: Pick<ResultsStore, 'findExisting'>,
  model: ModelRef,
): Promise<DeadLetter[]> {
  const objects = letters.flatMap((l) => (l.error.code === RETRIES_EXHAUSTED ? l.objects : []));
  if (objects.length === 0) return letters;
  let existing: Map<string, unknown>;
  try {
    existing = new Map();
    for (let i = 0; i < objects.length; i += 100) {
      for (const [id, r] of await results.findExisting(objects.slice(i, i + 100), model)) existing.set(id, r);
    }
  } catch {
    // The listing stands without the join; the message says what it can.
    return letters;
  }
  return letters.map((l) => {
    if (l.error.code !== RETRIES_EXHAUSTED || l.objects.length === 0) return l;
    const missing = l.objects.filter((o) => !existing.has(imageId(o)));
    const which =
      missing.length === 0
        ? `every object has a result under ${model.id}@${model.version} now (labeled since, or by a later event)`
        : `${missing.length} of ${l.objects.length} objects have no result under ${model.id}@${model.version}`;
    return {
      ...l,
      error: {
        code: RETRIES_EXHAUSTED,
        message: `${which}: transient failures (throttling, timeouts, a crash) on every attempt; the classify logs name message ${l.messageId}`,
      },
    };
  });
}

/** What a redrive did: a message move task (AWS) or the messages moved by this process (local). */
export type RedriveReport =
  | {
      readonly how: 'message-move-task';
      readonly taskHandle: string;
      readonly status: string;
      readonly moved?: number;
      readonly toMove?: number;
    }
  | { readonly how: 'moved-here'; readonly moved: number };

/**
 * Starts an SQS message move task from the DLQ back to the queue that sent the messages
 * there, and reads its status once. SQS runs the task on its side; the caller may
 * poll `moveTaskStatus` again.
 */
export async function startRedrive(sqs: SQSClient, queue: DeadLetterQueue): Promise<RedriveReport> {
  const sourceArn = await queueArn(sqs, queue.dlqUrl);
  const started = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: sourceArn })).catch((error) => {
    throw toLabelerError(error, `SQS StartMessageMoveTask (${queue.role} DLQ)`);
  });
  const status = await moveTaskStatus(sqs, sourceArn, started.TaskHandle ?? '');
  return { how: 'message-move-task', taskHandle: started.TaskHandle ?? '', ...status };
}

export async function moveTaskStatus(
  sqs: SQSClient,
  sourceArn: string,
  taskHandle: string,
): Promise<{ status: string; moved?: number; toMove?: number }> {
  const listed = await sqs
    .send(new ListMessageMoveTasksCommand({ SourceArn: sourceArn, MaxResults: 10 }))
    .catch((error: unknown) => {
      throw toLabelerError(error, 'SQS ListMessageMoveTasks');
    });
  const task = (listed.Results ?? []).find((t) => t.TaskHandle === taskHandle) ?? listed.Results?.[0];
  return {
    status: task?.Status ?? 'UNKNOWN',
    ...(task?.ApproximateNumberOfMessagesMoved !== undefined
      ? { moved: task.ApproximateNumberOfMessagesMoved }
      : {}),
    ...(task?.ApproximateNumberOfMessagesToMove !== undefined
      ? { toMove: task.ApproximateNumberOfMessagesToMove }
      : {}),
  };
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const attributes = await sqs
    .send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))
    .catch((error) => {
      throw toLabelerError(error, 'SQS GetQueueAttributes');
    });
  const arn = attributes.Attributes?.QueueArn;
  if (!arn) throw new LabelerError(CODE.dlq.noArn, `the queue ${url} has no ARN`);
  return arn;
}

/**
 * The same effect as a message move task, done by this process: each message is sent to
 * the source queue, then deleted from the DLQ. For the local stack only, whose emulator
 * has no message move tasks. A crash between send and delete leaves a copy in both; the
 * handlers are idempotent, so it is labeled once.
 */
export async function moveMessages(sqs: SQSClient, queue: DeadLetterQueue): Promise<RedriveReport> {
  let moved = 0;
  for (let empty = 0; empty < 2; ) {
    const response = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.dlqUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: LIST_VISIBILITY_SECONDS,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = response.Messages ?? [];
    empty = messages.length === 0 ? empty + 1 : 0;
    for (const m of messages) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queue.sourceUrl,
          MessageBody: m.Body ?? '',
          ...(m.MessageAttributes && Object.keys(m.MessageAttributes).length > 0
            ? { MessageAttributes: m.MessageAttributes }
            : {}),
        }),
      );
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: queue.dlqUrl, ReceiptHandle: m.ReceiptHandle ?? '' }),
      );
      moved++;
    }
  }
  return { how: 'moved-here', moved };
}
