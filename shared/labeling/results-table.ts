import { RESULTS_PREFIX } from '../settings.ts';
import { RESULT_ATHENA_COLUMNS } from './result-contract.ts';

/**
 * The Athena (Glue) table over the JSON Lines every labeling batch writes to the results
 * bucket (the result contract's `stored` line, `exportLine` in classify-records.ts), under
 * `results/model=<model id>/date=<yyyy-mm-dd>/<batch>.jsonl` (`exportKey`).
 *
 * The columns come from the result contract (`RESULT_ATHENA_COLUMNS`): the JSON keys in
 * lower case (Glue and Athena keep names in lower case, and the OpenX JSON SerDe matches
 * keys case-insensitively: `eTag` fills `etag`). `model` is not a data column: it is the
 * partition of the same name, whose value the key path carries and which equals every
 * line's `model` field. `labeledAt` stays the ISO 8601 string the line holds
 * (`from_iso8601_timestamp(labeledat)` in a query), so no SerDe timestamp format can
 * misread it. test/infra/athena.test.ts checks these columns against lines the handler
 * really wrote.
 */
export const RESULTS_LINES_TABLE = {
  tableName: 'results',
  prefix: RESULTS_PREFIX,
  columns: RESULT_ATHENA_COLUMNS,
  /**
   * Partitions, projected from the key layout (no crawler, no MSCK REPAIR): `model` is
   * injected (any model id; a query names it, `WHERE model = '...'`), `date` a day range.
   */
  partitionKeys: [
    { name: 'model', type: 'string', comment: 'model id (results/model=<id>/)' },
    { name: 'date', type: 'string', comment: 'UTC day of labeling, yyyy-MM-dd (results/.../date=<day>/)' },
  ],
  /** The first day the date projection covers; days before it are not read. */
  firstDay: '2024-01-01',
} as const;
