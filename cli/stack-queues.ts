import type { DlqName, DlqRole } from '../shared/aws/dead-letters.ts';
import { describeModels, type HostedModel, resolveHostedModel } from '../shared/labeling/stack-models.ts';
import { UsageError } from './args.ts';
import type { StackResources } from './stack.ts';

/**
 * A stack's queues as `labeler status` and `labeler dlq` show them. A stack with one model
 * has today's roles (`jobs`, `bulkDlq`); with several, each model's jobs and bulk queues
 * carry its name (`jobs:candidate`, `bulkDlq:candidate`), so every model's are seen.
 */
export interface ShownQueue {
  /** The key in `status --format json` and the role `dlq --queue` takes (for a source queue). */
  readonly role: string;
  /** What the status table calls it. */
  readonly name: string;
  readonly url: string;
  /** The model whose workers consume it; absent for the shared queues. */
  readonly model?: HostedModel;
}

type ModelRole = 'jobs' | 'jobsDlq' | 'bulk' | 'bulkDlq';

/** Every queue of the stack, in status order: incoming, each model's jobs and bulk, plan. */
export function stackQueues(resources: StackResources): ShownQueue[] {
  const { queueUrls, models } = resources;
  const several = models.models.length > 1;
  const perModel = models.models.flatMap((model, n) => {
    // The first model's queues are a one-model stack's (modelQueueNames): a stack output
    // without its DLQs in `Models` still has them by role.
    const urls: Record<ModelRole, string | undefined> = {
      jobs: model.jobsQueueUrl,
      jobsDlq: model.jobsDlqUrl ?? (n === 0 ? queueUrls.jobsDlq : undefined),
      bulk: model.bulkQueueUrl ?? (n === 0 ? queueUrls.bulk : undefined),
      bulkDlq: model.bulkDlqUrl ?? (n === 0 ? queueUrls.bulkDlq : undefined),
    };
    return (['jobs', 'jobsDlq', 'bulk', 'bulkDlq'] as const).flatMap((role) => {
      const url = urls[role];
      if (url === undefined) return [];
      const shownRole = several ? `${role}:${model.name}` : role;
      return [{ role: shownRole, name: queueName(shownRole), url, model }];
    });
  });
  return [
    { role: 'incoming', name: queueName('incoming'), url: queueUrls.incoming },
    { role: 'incomingDlq', name: queueName('incomingDlq'), url: queueUrls.incomingDlq },
    ...perModel,
    { role: 'plan', name: queueName('plan'), url: queueUrls.plan },
    { role: 'planDlq', name: queueName('planDlq'), url: queueUrls.planDlq },
  ];
}

/** What the status table calls a role: `jobsDlq:candidate` → `jobs:candidate DLQ`. */
export function queueName(role: string): string {
  const [kind = '', model] = role.split(':');
  const dlq = kind.endsWith('Dlq');
  return `${dlq ? kind.slice(0, -3) : kind}${model ? `:${model}` : ''}${dlq ? ' DLQ' : ''}`;
}

/** A dead-letter queue `dlq --queue` names, with the queue it redrives to and its model. */
export interface ChosenDlq {
  readonly role: DlqName;
  readonly dlqUrl: string;
  readonly sourceUrl: string;
  /** The model whose results mark an object done: the queue's, else (incoming, plan) the default. */
  readonly model?: HostedModel;
}

/**
 * `--queue incoming|jobs|bulk|plan`, or `jobs:<model>` / `bulk:<model>` (a hosted model's
 * name, id or id@version). On a stack with several models a bare `jobs` or `bulk` is
 * refused, naming the models: redriving the wrong model's queue relabels with it.
 */
export function chooseDlq(resources: StackResources, queue: string): ChosenDlq {
  const shown = stackQueues(resources);
  const byRole = (role: string) => shown.find((q) => q.role === role);
  if (queue === 'incoming' || queue === 'plan') {
    const source = byRole(queue) as ShownQueue;
    const dlq = byRole(`${queue}Dlq`) as ShownQueue;
    return { role: queue, dlqUrl: dlq.url, sourceUrl: source.url };
  }
  const [base, modelChoice, ...rest] = queue.split(':');
  if ((base !== 'jobs' && base !== 'bulk') || rest.length > 0 || modelChoice === '') {
    throw new UsageError(
      `--queue must be incoming, jobs, bulk, plan, jobs:<model> or bulk:<model>, got "${queue}"`,
    );
  }
  const { models } = resources;
  if (modelChoice === undefined && models.models.length > 1) {
    throw new UsageError(
      `this stack hosts several models, each with its own ${base} queue: --queue ${base}:<model>, one of ${describeModels(models)}`,
    );
  }
  // A model's name, id or id@version (job/unknown-model names the hosted ones).
  const model = modelChoice === undefined ? models.models[0] : resolveHostedModel(models, modelChoice);
  const source = shown.find((q) => q.model === model && q.role.split(':')[0] === base);
  const dlq = shown.find((q) => q.model === model && q.role.split(':')[0] === `${base}Dlq`);
  if (!source || !dlq) {
    throw new UsageError(`model ${model?.name} has no ${base} dead-letter queue in this stack`);
  }
  const role: DlqName = models.models.length > 1 ? `${base}:${model?.name}` : (base as DlqRole);
  return { role, dlqUrl: dlq.url, sourceUrl: source.url, ...(model ? { model } : {}) };
}
