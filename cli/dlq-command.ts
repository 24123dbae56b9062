import {
  type DeadLetter,
  type DeadLetterQueue,
  LIST_VISIBILITY_SECONDS,
  listDeadLetters,
  moveMessages,
  type RedriveReport,
  startRedrive,
} from '../shared/aws/dead-letters.ts';
import type { ModelRef } from '../shared/labeling/results.ts';
import { parse, positiveInt, UsageError } from './args.ts';
import { type Column, RowWriter, rowFormat } from './formats.ts';
import { count } from './output.ts';
import { resultsModel } from './results-model.ts';
import { openStack, resultsStoreOf, STACK_HELP, STACK_OPTIONS, type StackConnection } from './stack.ts';
import { chooseDlq } from './stack-queues.ts';

export const DLQ_HELP = `Usage: labeler dlq <list|redrive> [--queue incoming|jobs|bulk|plan] [options]

The dead-letter queues: messages whose every attempt failed.

  labeler dlq list [--queue <q>] [--max <n>] [--format jsonl|table]
      One row per message: the object keys it names, its receive count, and why
      it is there. An unreadable body says what is wrong with it; an S3 event
      says which of its objects still have no result (those failed transiently
      on every attempt: throttling, timeouts, a crash; the function's logs name
      the message id). Listing does not consume the messages, but it receives
      them: each is invisible for up to ${LIST_VISIBILITY_SECONDS} s while the listing runs (made
      visible again as soon as it ends) and its receive count goes up by one.

  labeler dlq redrive [--queue <q>]
      Moves the messages back to the queue that sent them there, to be
      processed again. On AWS: an SQS message move task (StartMessageMoveTask),
      whose status is printed. On the local stack, whose SQS emulator has no
      message move tasks, this command moves them itself: sent to the source
      queue, then deleted from the dead-letter queue.

Queues (--queue, default incoming):
  incoming   S3 upload events (classify function)
  jobs       Lambda-target job images (classify function)
  bulk       GPU-target job images (GPU workers)
  plan       labeling jobs' plan steps (plan-job function)
  A stack hosting several models has a jobs and a bulk queue per model: name it
  jobs:<model> or bulk:<model> (the model's name, id or id@version); "labeler
  status" shows them all.

Options:
  --max <n>          list at most this many messages (default 100)
  --format <f>       jsonl (default) or table
  --model <m>        the model whose results mark an object done (default: the
                     queue's model; for incoming, the stack's default model)
${STACK_HELP}
  -h, --help         show this help`;

export async function dlqCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...STACK_OPTIONS,
    queue: { type: 'string' },
    max: { type: 'string' },
    format: { type: 'string' },
    model: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  const [sub, ...extra] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(`${DLQ_HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (sub !== 'list' && sub !== 'redrive')
    throw new UsageError(`unknown subcommand "dlq ${sub}"; use list or redrive`);
  if (extra.length > 0) throw new UsageError(`"dlq ${sub}" takes no arguments`);
  if (sub === 'redrive') {
    for (const option of ['max', 'format', 'model'] as const) {
      if (values[option] !== undefined) throw new UsageError(`--${option} goes with "dlq list"`);
    }
  }
  const format = rowFormat(values.format, ['jsonl', 'table'] as const, 'jsonl');
  const max = positiveInt(values.max, '--max', 100);
  const stack = await openStack(values);
  try {
    const { model, ...queue } = chooseDlq(stack.resources, values.queue ?? 'incoming');
    if (sub === 'list') {
      const marking = await resultsModel(
        values.model ?? (model ? `${model.id}@${model.version}` : undefined),
        stack.resources.models,
      );
      return await list(stack, queue, { max, format, model: marking.ref });
    }
    return await redrive(stack, queue);
  } finally {
    stack.close();
  }
}

const COLUMNS: readonly Column<DeadLetter>[] = [
  { header: 'messageId', value: (l) => l.messageId, maxWidth: 36 },
  { header: 'receives', value: (l) => l.receiveCount, align: 'right' },
  { header: 'sentAt', value: (l) => l.sentAt },
  {
    header: 'objects',
    value: (l) =>
      l.objects.length === 1
        ? l.objects[0]?.key
        : l.objects.length > 1
          ? `${l.objects[0]?.key} (+${l.objects.length - 1})`
          : '',
    keep: 'end',
    maxWidth: 48,
  },
  { header: 'error', value: (l) => l.error.code, maxWidth: 28 },
  { header: 'why', value: (l) => l.error.message, maxWidth: 60 },
];

async function list(
  stack: StackConnection,
  queue: DeadLetterQueue,
  options: { max: number; format: 'jsonl' | 'table'; model: ModelRef },
): Promise<number> {
  const letters = await listDeadLetters(stack.clients.sqs, queue, {
    max: options.max,
    results: resultsStoreOf(stack),
    model: options.model,
  });
  const out = new RowWriter<DeadLetter>({ format: options.format, columns: COLUMNS, json: (l) => l });
  for (const letter of letters) out.write(letter);
  out.end();
  process.stderr.write(
    `${count(letters.length, 'message')} in the ${queue.role} dead-letter queue${letters.length >= options.max ? ` (stopped at --max ${options.max})` : ''}\n`,
  );
  return 0;
}

async function redrive(stack: StackConnection, queue: DeadLetterQueue): Promise<number> {
  // The one place local and deployed differ: the emulator has no message move tasks.
  const report: RedriveReport =
    stack.kind === 'local'
      ? await moveMessages(stack.clients.sqs, queue)
      : await startRedrive(stack.clients.sqs, queue);
  process.stdout.write(`${JSON.stringify({ queue: queue.role, ...report })}\n`);
  if (report.how === 'moved-here') {
    process.stderr.write(`moved ${count(report.moved, 'message')} back to the ${queue.role} queue\n`);
  } else {
    const progress =
      report.toMove !== undefined ? ` (${report.moved ?? 0} of ${report.toMove} moved so far)` : '';
    process.stderr.write(
      `message move task ${report.status}${progress}: SQS moves the ${queue.role} DLQ back to its source queue; "labeler dlq list" shows what is left\n`,
    );
  }
  return 0;
}
