import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { BatchReport, ClassifyLog } from './labeling/classify-records.ts';
import type { DriftMetric } from './labeling/drift.ts';
import { DRIFT, ENV } from './settings.ts';

const serviceName = process.env[ENV.serviceName] ?? 'labeler';

/** Process singletons for Lambda and container workers: JSON logs and EMF metrics on stdout. */
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ namespace: 'Labeler', serviceName });

/**
 * One data point at start-up naming the execution provider the model runs on
 * (dimension ExecutionProvider = cuda | cpu | ...), so a dashboard shows how many
 * workers run where.
 */
export function publishExecutionProvider(provider: string): void {
  const single = metrics.singleMetric();
  single.addDimension('ExecutionProvider', provider);
  single.addMetric('WorkerStarted', MetricUnit.Count, 1);
}

export function publishBatchMetrics(report: BatchReport): void {
  const c = report.counts;
  metrics.addMetric('ImagesLabeled', MetricUnit.Count, c.labeled);
  metrics.addMetric('ImagesFailed', MetricUnit.Count, c.failed);
  metrics.addMetric('Duplicates', MetricUnit.Count, c.duplicates);
  metrics.addMetric('Retried', MetricUnit.Count, c.retried);
  metrics.addMetric('InvalidMessages', MetricUnit.Count, c.invalid);
  metrics.addMetric('InferenceMs', MetricUnit.Milliseconds, report.stageMs.inference);
  metrics.publishStoredMetrics();
}

/**
 * The `Labeler/LabelDrift` metric of one finished scheduled run as one EMF document
 * (decision 0039). Its only dimension is `Schedule`, without Powertools' `service`: the
 * classify function, a GPU worker or the planner may finish the run, and the schedule's one
 * alarm must see the value whichever did.
 */
export function labelDriftEmf(schedule: string, divergence: number): string {
  const single = new Metrics({ namespace: 'Labeler', serviceName });
  single.clearDefaultDimensions();
  single.addDimension('Schedule', schedule);
  single.addMetric(DRIFT.metricName, MetricUnit.NoUnit, divergence);
  return JSON.stringify(single.serializeMetrics());
}

/** The drift metric written as an EMF line by `write`. */
export function driftMetricTo(write: (line: string) => void): DriftMetric {
  return (schedule, divergence) => write(`${labelDriftEmf(schedule, divergence)}\n`);
}

/** Lambda and ECS: EMF on stdout, which CloudWatch Logs turns into the metric. */
export const stdoutDriftMetric: DriftMetric = driftMetricTo((line) => process.stdout.write(line));

/** The local stack, whose stdout is the CLI's JSON Lines: the same EMF line on stderr. */
export const stderrDriftMetric: DriftMetric = driftMetricTo((line) => process.stderr.write(line));

/** A plain logger for the one-machine stack and the CLI: stderr, warnings and errors only. */
export const stderrLog: ClassifyLog = {
  info: () => {},
  warn: (message, extra) => process.stderr.write(`warn: ${message} ${extra ? JSON.stringify(extra) : ''}\n`),
  error: (message, extra) =>
    process.stderr.write(`error: ${message} ${extra ? JSON.stringify(extra) : ''}\n`),
};

/** The Powertools logger behind the use case's logging port. */
export const lambdaLog: ClassifyLog = {
  info: (message, extra) => (extra ? logger.info(message, extra) : logger.info(message)),
  warn: (message, extra) => (extra ? logger.warn(message, extra) : logger.warn(message)),
  error: (message, extra) => (extra ? logger.error(message, extra) : logger.error(message)),
};
