import { type ChildProcess, spawn } from 'node:child_process';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { ENV } from '../../shared/settings.ts';

export type LogLine = Record<string, unknown>;

export interface StartedGpuWorker {
  readonly child: ChildProcess;
  /** The JSON log lines written so far (Powertools: errors on stderr, the rest on stdout). */
  lines(): LogLine[];
  output(): string;
}

/**
 * The GPU worker entry point as ECS runs it, in a child process with only the variables its
 * task definition sets, on a queue of an in-process fauxqs at `sqsEndpoint`.
 */
export function startGpuWorker(
  sqsEndpoint: string,
  queueUrl: string,
  extra: Record<string, string> = {},
): StartedGpuWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', 'functions/gpu-worker/main.ts'], {
    cwd: PACKAGE_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      [ENV.region]: 'us-east-1',
      [ENV.resultsTable]: 'results',
      [ENV.resultsBucket]: 'results',
      [ENV.modelDir]: DEFAULT_MODEL_DIR,
      [ENV.executionProviders]: 'cuda',
      [ENV.bulkQueueUrl]: queueUrl,
      [ENV.bulkQueueArn]: 'arn:aws:sqs:us-east-1:000000000000:gpu-bulk',
      [ENV.serviceName]: 'labeler-gpu-worker',
      [ENV.ortDisableTelemetry]: '1',
      AWS_ENDPOINT_URL_SQS: sqsEndpoint,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: unknown) => {
    output += String(chunk);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return {
    child,
    output: () => output,
    lines: () =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LogLine),
  };
}

/** 'close' comes after the output streams end, so every line the child wrote has arrived. */
export function closeOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if ((child.exitCode !== null || child.signalCode !== null) && child.stdout?.readableEnded)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('close', (code, signal) => resolve({ code, signal }));
  });
}
