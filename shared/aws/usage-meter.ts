/**
 * Counts what AWS calls use, as they are made: requests by service and operation, and
 * DynamoDB capacity units by table and index from `ReturnConsumedCapacity: 'INDEXES'`,
 * which the meter adds to every DynamoDB call it sees (issue 22). A write refused by its
 * condition returns no ConsumedCapacity, yet DynamoDB bills it; the meter then charges it
 * by DynamoDB's documented rule (1 unit per started KB of the item, twice in a
 * transaction) from the request's own items, and counts it apart (`refusedWrites`).
 */

type Input = Record<string, unknown>;

export interface CapacityUnits {
  read: number;
  write: number;
}

export interface UsageSnapshot {
  /** `service:Operation` → requests sent (retries by the SDK included: each is billed). */
  readonly requests: Record<string, number>;
  /** `table` or `table/index` → units. */
  readonly units: Record<string, CapacityUnits>;
  /** Writes refused by a condition, charged by the documented rule (their units are in `units`). */
  readonly refusedWrites: number;
}

const CAPACITY_OPERATIONS = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'GetItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'BatchWriteItem',
  'TransactWriteItems',
  'TransactGetItems',
]);
const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);

/** Per table, its GSIs by name with the attribute that puts an item in each (sparse indexes). */
export type IndexKeys = Readonly<Record<string, Readonly<Record<string, string>>>>;

export class UsageMeter {
  readonly #indexKeys: IndexKeys;
  #requests = new Map<string, number>();
  #units = new Map<string, CapacityUnits>();
  #refused = 0;

  /**
   * @param indexKeys the GSIs of each table, for TransactWriteItems: DynamoDB Local reports
   * too few units for a transaction of several items (2 for 23 items), so a transaction's
   * units are computed by the documented rule: per item 1 per started KB, and 1 per started
   * KB of each GSI the item is in (all attributes projected), all twice.
   */
  constructor(indexKeys: IndexKeys = {}) {
    this.#indexKeys = indexKeys;
  }

  snapshot(): UsageSnapshot {
    return {
      requests: Object.fromEntries(this.#requests),
      units: Object.fromEntries([...this.#units].map(([k, v]) => [k, { ...v }])),
      refusedWrites: this.#refused,
    };
  }

  reset(): void {
    this.#requests.clear();
    this.#units.clear();
    this.#refused = 0;
  }

  countRequest(service: string, operation: string): void {
    const name = `${service}:${operation}`;
    this.#requests.set(name, (this.#requests.get(name) ?? 0) + 1);
  }

  addUnits(where: string, kind: keyof CapacityUnits, units: number): void {
    const entry = this.#units.get(where) ?? { read: 0, write: 0 };
    entry[kind] += units;
    this.#units.set(where, entry);
  }

  /** Adds one response's ConsumedCapacity (an object or a list of them). */
  addConsumed(operation: string, consumed: unknown): void {
    const kind = READS.has(operation) ? 'read' : 'write';
    for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      const entry = c as {
        TableName?: string;
        CapacityUnits?: number;
        Table?: { CapacityUnits?: number };
        GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
        LocalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
      };
      const table = entry.TableName ?? 'unknown';
      const indexes = { ...entry.GlobalSecondaryIndexes, ...entry.LocalSecondaryIndexes };
      const base = entry.Table?.CapacityUnits;
      if (base === undefined && Object.keys(indexes).length === 0) {
        this.addUnits(table, kind, entry.CapacityUnits ?? 0);
        continue;
      }
      if (base !== undefined) this.addUnits(table, kind, base);
      for (const [index, units] of Object.entries(indexes)) {
        this.addUnits(`${table}/${index}`, kind, units.CapacityUnits ?? 0);
      }
    }
  }

  /** A TransactWriteItems' units by the documented rule (see the constructor). */
  addTransaction(input: Input): void {
    for (const raw of (input.TransactItems as Input[] | undefined) ?? []) {
      for (const [kind, action] of Object.entries(raw)) {
        const a = action as Input;
        const table = String(a.TableName);
        if (kind === 'ConditionCheck') {
          this.addUnits(table, 'write', 2);
          continue;
        }
        // An Update or Delete names only the key: the small items they touch here (counters) take 1 unit.
        const item = (a.Item ?? a.Key ?? {}) as Input;
        const units = 2 * Math.max(1, Math.ceil(itemBytes(item) / 1024));
        this.addUnits(table, 'write', units);
        // A Delete's index entries are not in its request: a stale index item's entry goes uncounted.
        for (const [index, key] of Object.entries(this.#indexKeys[table] ?? {})) {
          if (key in item) this.addUnits(`${table}/${index}`, 'write', units);
        }
      }
    }
  }

  /** Charges a write its condition refused: DynamoDB bills the item's size all the same. */
  addRefusedWrite(operation: string, input: Input): void {
    this.#refused++;
    if (operation === 'TransactWriteItems') {
      for (const raw of (input.TransactItems as Input[] | undefined) ?? []) {
        for (const action of Object.values(raw)) {
          const a = action as Input;
          const bytes = itemBytes((a.Item ?? a.Key ?? {}) as Input);
          this.addUnits(String(a.TableName), 'write', 2 * Math.max(1, Math.ceil(bytes / 1024)));
        }
      }
      return;
    }
    const bytes = itemBytes((input.Item ?? input.Key ?? {}) as Input);
    this.addUnits(String(input.TableName), 'write', Math.max(1, Math.ceil(bytes / 1024)));
  }
}

/** An item's size as DynamoDB counts it: attribute names plus values (marshalled form). */
export function itemBytes(item: Input): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) bytes += Buffer.byteLength(name) + valueBytes(value);
  return bytes;
}

function valueBytes(value: unknown): number {
  // A document client's input may still hold plain values here: size them as DynamoDB would store them.
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return Math.ceil(String(value).replace(/^-|\./g, '').length / 2) + 1;
  if (typeof value === 'boolean' || value === null || value === undefined) return 1;
  if (Array.isArray(value)) return 3 + value.reduce((n: number, e) => n + 1 + valueBytes(e), 0);
  const v = value as Input;
  if (typeof v.S === 'string') return Buffer.byteLength(v.S);
  if (typeof v.N === 'string') return Math.ceil(v.N.replace(/^-|\.|e.*$/g, '').length / 2) + 1;
  if (v.B instanceof Uint8Array) return v.B.byteLength;
  if ('BOOL' in v || 'NULL' in v) return 1;
  if (v.M) return 3 + itemBytes(v.M as Input);
  if (Array.isArray(v.L)) return 3 + v.L.reduce((n: number, e) => n + 1 + valueBytes(e), 0);
  if (Array.isArray(v.SS)) return v.SS.reduce((n: number, s) => n + Buffer.byteLength(String(s)), 0);
  return 3 + itemBytes(v);
}

interface MeterableClient {
  readonly config: { readonly serviceId?: unknown };
  readonly middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object }) => Promise<{ output?: unknown }>,
        context: { commandName?: string },
      ) => (args: { input: object }) => Promise<{ output?: unknown }>,
      options: { step: 'initialize' | 'serialize'; name: string; override: boolean; priority?: 'high' },
    ): void;
  };
}

/**
 * Meters one client's calls. On DynamoDB, it asks every call for its consumed capacity at
 * the serialize step, after a document client marshalled the input, so the refused-write
 * rule sees attribute values as DynamoDB counts them.
 */
export function meterCalls(
  client: MeterableClient,
  meterOrCurrent: UsageMeter | (() => UsageMeter | undefined),
  name = 'labelerUsageMeter',
): void {
  const service = String(client.config.serviceId ?? '').toLowerCase();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      // A function names the meter of the call's invocation (decision 0035); none: not metered.
      const meter = typeof meterOrCurrent === 'function' ? meterOrCurrent() : meterOrCurrent;
      if (!meter) return next(args);
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      meter.countRequest(service, operation);
      if (service !== 'dynamodb' || !CAPACITY_OPERATIONS.has(operation)) return next(args);
      const input = { ...(args.input as Input), ReturnConsumedCapacity: 'INDEXES' };
      try {
        const result = await next({ ...args, input });
        if (operation === 'TransactWriteItems') {
          try {
            meter.addTransaction(input);
          } catch {}
        } else {
          meter.addConsumed(operation, (result.output as Input | undefined)?.ConsumedCapacity);
        }
        return result;
      } catch (error) {
        const name = (error as { name?: string }).name;
        if (name === 'ConditionalCheckFailedException' || name === 'TransactionCanceledException') {
          // Metering never changes what a call does: a size it cannot read is left uncharged.
          try {
            meter.addRefusedWrite(operation, input);
          } catch {}
        }
        throw error;
      }
    },
    { step: 'serialize', name, override: true, priority: 'high' },
  );
}

/** One invocation's requests and units as a job's receipt adds them up (decision 0035). */
export function invocationUsage(snapshot: UsageSnapshot): {
  s3Gets: number;
  s3Puts: number;
  dynamoWriteUnits: number;
  dynamoReadUnits: number;
} {
  const units = Object.values(snapshot.units);
  return {
    s3Gets: snapshot.requests['s3:GetObject'] ?? 0,
    s3Puts: snapshot.requests['s3:PutObject'] ?? 0,
    dynamoWriteUnits: units.reduce((n, u) => n + u.write, 0),
    dynamoReadUnits: units.reduce((n, u) => n + u.read, 0),
  };
}
