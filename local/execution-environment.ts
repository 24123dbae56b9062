/**
 * One Lambda execution environment of the local stack, run as a child process by
 * local/invoker.ts. Init builds the classify handler exactly as functions/classify/handler.ts
 * does (settings, its own SDK clients, the model loaded once); then each `invoke` message
 * runs one invocation and answers with the SQSBatchResponse and the BatchReport. Killing
 * this process takes down only the invocation it was running.
 */
import { createClassifyDeps, makeClassifyHandler } from '../shared/aws/classify-handler.ts';
import { createAwsClients } from '../shared/aws/clients.ts';
import { CODE } from '../shared/error-codes.ts';
import { errorMessage, LabelerError } from '../shared/errors.ts';
import type { BatchReport, ClassifyLog } from '../shared/labeling/classify-records.ts';
import type { FromEnvironment, ToEnvironment } from './invoker.ts';

function send(message: FromEnvironment): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}

const log: ClassifyLog = {
  info: (message, extra) => void send({ type: 'log', level: 'info', message, extra }),
  warn: (message, extra) => void send({ type: 'log', level: 'warn', message, extra }),
  error: (message, extra) => void send({ type: 'log', level: 'error', message, extra }),
};

let handler: ReturnType<typeof makeClassifyHandler> | undefined;
let release: () => Promise<void> = async () => {};
let lastReport: BatchReport | undefined;

// The parent gone means the stack is gone: an orphaned environment must not linger.
process.on('disconnect', () => {
  void release().finally(() => process.exit(0));
});

process.on('message', (raw) => {
  const message = raw as ToEnvironment;
  if (message.type === 'init') void init(message);
  else if (message.type === 'invoke')
    void invoke(message.id, message.event, Date.now() + message.remainingMs);
  else if (message.type === 'shutdown') void release().finally(() => process.exit(0));
});

async function init(message: Extract<ToEnvironment, { type: 'init' }>): Promise<void> {
  try {
    const clients = createAwsClients({
      region: message.config.region,
      endpoints: message.endpoints,
      local: true,
    });
    const deps = await createClassifyDeps(message.config, clients, log);
    release = () => deps.labeler.classifier.release();
    handler = makeClassifyHandler(deps, (report) => {
      lastReport = report;
    });
    await send({ type: 'ready' });
  } catch (error) {
    const code = error instanceof LabelerError ? error.code : CODE.internal.unexpected;
    await send({ type: 'init-failed', code, message: errorMessage(error) });
    process.exit(1);
  }
}

async function invoke(
  id: number,
  event: Extract<ToEnvironment, { type: 'invoke' }>['event'],
  endsAt: number,
): Promise<void> {
  lastReport = undefined;
  try {
    if (!handler) throw new Error('invoked before init finished');
    const response = await handler(event, {
      getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()),
    });
    await send({ type: 'result', id, response, ...(lastReport ? { report: lastReport } : {}) });
  } catch (error) {
    await send({ type: 'failed', id, message: errorMessage(error) });
  }
}
