import {
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  paginateListSchedules,
  type SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { SampleSpec } from '../labeling/sample.ts';
import {
  SCHEDULE_DELIVERY,
  SCHEDULED_TIME_PLACEHOLDER,
  type ScheduleSpec,
  type SchedulesPort,
  scheduleStartMessage,
  validateSchedule,
} from '../labeling/schedules.ts';
import { toLabelerError } from './errors.ts';

/** The deployed stack's names a run-time schedule needs (CloudFormation outputs). */
export interface SchedulerResources {
  readonly scheduleGroup: string;
  readonly schedulerRoleArn: string;
  readonly planQueueArn: string;
  readonly planDlqArn: string;
}

/**
 * Schedules on AWS: EventBridge Scheduler schedules in the stack's group, each sending
 * the job start message to the plan queue with the same delivery settings as the
 * schedules declared in cdk.json. The target input is the schedule's only record of its
 * job parameters, so `list` reads them back from it.
 */
export class SchedulerSchedules implements SchedulesPort {
  readonly #client: SchedulerClient;
  readonly #names: SchedulerResources;

  constructor(client: SchedulerClient, names: SchedulerResources) {
    this.#client = client;
    this.#names = names;
  }

  async add(schedule: ScheduleSpec): Promise<void> {
    const spec = validateSchedule(schedule);
    await this.#client
      .send(
        new CreateScheduleCommand({
          Name: spec.name,
          GroupName: this.#names.scheduleGroup,
          ScheduleExpression: spec.expression,
          ...(spec.timezone ? { ScheduleExpressionTimezone: spec.timezone } : {}),
          FlexibleTimeWindow: {
            Mode: 'FLEXIBLE',
            MaximumWindowInMinutes: SCHEDULE_DELIVERY.flexibleWindowMinutes,
          },
          State: 'ENABLED',
          Description: `Labeling job over s3://${spec.bucket}/${spec.prefix} (${spec.target}, ${spec.mode})`,
          Target: {
            Arn: this.#names.planQueueArn,
            RoleArn: this.#names.schedulerRoleArn,
            Input: JSON.stringify(scheduleStartMessage(spec, SCHEDULED_TIME_PLACEHOLDER)),
            RetryPolicy: {
              MaximumRetryAttempts: SCHEDULE_DELIVERY.retryAttempts,
              MaximumEventAgeInSeconds: SCHEDULE_DELIVERY.maxEventAgeSeconds,
            },
            DeadLetterConfig: { Arn: this.#names.planDlqArn },
          },
        }),
      )
      .catch((error: unknown) => {
        if ((error as { name?: string }).name === 'ConflictException') {
          throw new LabelerError(CODE.schedule.exists, `a schedule named ${spec.name} already exists`);
        }
        throw toLabelerError(error, `Scheduler CreateSchedule ${spec.name}`);
      });
  }

  async list(): Promise<ScheduleSpec[]> {
    const names: string[] = [];
    try {
      for await (const page of paginateListSchedules(
        { client: this.#client },
        { GroupName: this.#names.scheduleGroup },
      )) {
        for (const s of page.Schedules ?? []) if (s.Name) names.push(s.Name);
      }
    } catch (error) {
      throw toLabelerError(error, 'Scheduler ListSchedules');
    }
    const schedules: ScheduleSpec[] = [];
    for (const name of names.sort()) {
      const got = await this.#client
        .send(new GetScheduleCommand({ Name: name, GroupName: this.#names.scheduleGroup }))
        .catch((error: unknown) => {
          // Removed between the listing and this read: it is simply not there any more.
          if ((error as { name?: string }).name === 'ResourceNotFoundException') return undefined;
          throw toLabelerError(error, `Scheduler GetSchedule ${name}`);
        });
      if (!got) continue;
      const request = parseStartInput(got.Target?.Input);
      schedules.push({
        name,
        expression: got.ScheduleExpression ?? '',
        ...(got.ScheduleExpressionTimezone ? { timezone: got.ScheduleExpressionTimezone } : {}),
        bucket: String(request.bucket ?? ''),
        prefix: String(request.prefix ?? ''),
        target: request.target === 'gpu' ? 'gpu' : 'lambda',
        mode: request.mode === 'all' ? 'all' : 'stale',
        // The target input is the schedule's only record of its sample and model.
        ...(isSample(request.sample) ? { sample: request.sample } : {}),
        ...(typeof request.model === 'string' ? { model: request.model } : {}),
      });
    }
    return schedules;
  }

  async remove(name: string): Promise<void> {
    await this.#client
      .send(new DeleteScheduleCommand({ Name: name, GroupName: this.#names.scheduleGroup }))
      .catch((error: unknown) => {
        if ((error as { name?: string }).name === 'ResourceNotFoundException') {
          throw new LabelerError(CODE.schedule.notFound, `no schedule named ${name}`);
        }
        throw toLabelerError(error, `Scheduler DeleteSchedule ${name}`);
      });
  }
}

function isSample(value: unknown): value is SampleSpec {
  const v = value as Record<string, unknown> | undefined;
  return typeof v?.seed === 'number' && (typeof v.count === 'number' || typeof v.percent === 'number');
}

function parseStartInput(input: string | undefined): Record<string, unknown> {
  try {
    const parsed = JSON.parse(input ?? '{}') as { request?: Record<string, unknown> };
    return parsed.request ?? {};
  } catch {
    return {};
  }
}
