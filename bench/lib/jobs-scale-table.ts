// The ten-million-in-an-hour table of bench/SCALING-JOBS.md, computed from the cost model
// and the capacity plan (shared/labeling/capacity-plan.ts) at the settings' defaults, so
// it changes when a footprint figure, a rate or a setting does (test/unit/capacity-plan.test.ts
// checks that the committed block is what this renders).
import {
  ACCOUNT_DEFAULT_QUOTAS,
  type CapacityPlan,
  capacityPlan,
  type DynamoFootprint,
  defaultStackCapacity,
  LATENCY_ESTIMATES,
  PLANNING_FOOTPRINT,
  SERVICE_PRICES,
} from '../../shared/labeling/capacity-plan.ts';
import { efficientNet, lambdaCpuMs, MEASURED, type MeasuredRates } from '../../shared/labeling/cost-model.ts';
import { sizeInvocation } from '../../shared/labeling/invocation-budget.ts';
import { JOB_IMAGES, JOBS, TABLE_WARM_THROUGHPUT } from '../../shared/settings.ts';

export const TABLE_START = '<!-- jobs-scale:start (bench/jobs-scale.ts writes this block) -->';
export const TABLE_END = '<!-- jobs-scale:end -->';
export const LOCAL_START = '<!-- jobs-scale-local:start (bench/jobs-scale.ts --local writes this block) -->';
export const LOCAL_END = '<!-- jobs-scale-local:end -->';

/** 10,000,000 B0 images within an hour on the Lambda target, at the settings' defaults. */
export function tenMillionPlan(
  rates: MeasuredRates = MEASURED,
  footprint: DynamoFootprint = PLANNING_FOOTPRINT,
): CapacityPlan {
  const model = efficientNet('efficientnet_b0');
  const cpu = lambdaCpuMs(model, rates);
  const sizing = sizeInvocation({ cpuMsPerImage: cpu.value, source: cpu.source });
  const capacity = defaultStackCapacity(
    { objectsPerMessage: sizing.objectsPerMessage, jobBatchSize: sizing.jobBatchSize },
    undefined,
  );
  return capacityPlan({ model, images: 10_000_000, withinSeconds: 3600, capacity, rates, footprint });
}

const n = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The markdown block between TABLE_START and TABLE_END. */
export function renderTenMillionTable(plan: CapacityPlan = tenMillionPlan()): string {
  const e = plan.estimate;
  const c = e.configured;
  const f = plan.footprint;
  const minutes = (s: number) => `${n(s / 60, 1)} min`;
  const d = e.dollars;
  return [
    `10,000,000 EfficientNet-B0 images within ${n(plan.withinSeconds / 60)} minutes on the Lambda target, at the`,
    'settings cdk.json deploys (shared/labeling/capacity-plan.ts `capacityPlan`, rendered by',
    '`node --import tsx bench/jobs-scale.ts`).',
    '',
    '| | needed | configured | setting |',
    '|---|---:|---:|---|',
    `| images/s | ${n(plan.imagesPerSecondNeeded)} | ${n(c.imagesPerSecond)} (bound by ${c.boundBy}) | |`,
    `| concurrent executions (${n(plan.imagesPerExecution, 1)} images/s each) | ${n(plan.concurrencyNeeded)} | ${n(plan.concurrencyConfigured)} of the account's ${n(ACCOUNT_DEFAULT_QUOTAS.lambdaConcurrentExecutions)} | \`jobsMaxConcurrency\` (JOB_IMAGES.maxConcurrency = ${JOB_IMAGES.maxConcurrency}) |`,
    `| results table write units/s (${f.resultsWriteUnits} per image) | ${n(plan.resultsWriteUnitsNeeded)} | ${n(plan.resultsWarmWriteUnits)} warm | \`resultsTableWarmWrites\` (${n(TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond)}) |`,
    `| jobs table write units/s (${f.jobsWriteUnits} per image) | ${n(plan.jobsWriteUnitsNeeded)} | ${n(plan.jobsWarmWriteUnits)} warm | \`jobsTableWarmWrites\` (${n(TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond)}) |`,
    `| planner objects/s | ${n(plan.imagesPerSecondNeeded)} | ${n(plan.plannerObjectsPerSecond)} | JOBS.sendConcurrency = ${JOBS.sendConcurrency} |`,
    `| wall time, ${LATENCY_ESTIMATES.lambdaRampSeconds} s ramp included | ${minutes(plan.withinSeconds)} | ${minutes(c.seconds)} | ${plan.meetsDeadline ? 'meets it' : '**misses it**'} |`,
    '',
    `All in: $${n(d.total, 2)} ($${n(e.perThousand, 4)} per 1,000 images): compute $${n(d.compute, 2)}, DynamoDB $${n(d.dynamodb, 2)}, S3 $${n(d.s3, 2)}, SQS $${n(d.sqs, 2)}, logs $${n(d.logs, 2)} (${SERVICE_PRICES.asOf}).`,
    '',
    'Figures that are estimates, not measurements:',
    '',
    ...e.estimates.map((s) => `- ${s}`),
    `- Per-execution rate: ${n(plan.imagesPerExecution, 1)} images/s = compute per image plus ${LATENCY_ESTIMATES.invocationOverheadMs} ms per invocation; planner: ${LATENCY_ESTIMATES.listPageMs} ms a ListObjectsV2 page, ${LATENCY_ESTIMATES.sendBatchMs} ms a SendMessageBatch.`,
  ].join('\n');
}

/** Replaces the block between `start` and `end` in `markdown`, or appends it. */
export function replaceBlock(markdown: string, start: string, end: string, block: string): string {
  const wrapped = `${start}\n\n${block.trimEnd()}\n\n${end}`;
  const from = markdown.indexOf(start);
  const to = markdown.indexOf(end);
  if (from >= 0 && to > from) return `${markdown.slice(0, from)}${wrapped}${markdown.slice(to + end.length)}`;
  return `${markdown.trimEnd()}\n\n${wrapped}\n`;
}

/** The block between `start` and `end`, or undefined. */
export function blockOf(markdown: string, start: string, end: string): string | undefined {
  const from = markdown.indexOf(start);
  const to = markdown.indexOf(end);
  return from >= 0 && to > from ? markdown.slice(from + start.length, to).trim() : undefined;
}

/** A block compared regardless of the column padding a markdown formatter adds. */
export function normalizedBlock(block: string): string {
  return block
    .split('\n')
    .map((line) => (line.startsWith('|') ? line.replace(/ +/g, '').replace(/-+/g, '-') : line.trimEnd()))
    .join('\n')
    .trim();
}
