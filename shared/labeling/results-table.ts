import { RESULTS_PREFIX } from '../settings.ts';

/**
 * The Athena (Glue) table over the JSON Lines every labeling batch writes to the results
 * bucket (`exportLine` in classify-records.ts), under
 * `results/model=<model id>/date=<yyyy-mm-dd>/<batch>.jsonl` (`exportKey`).
 *
 * Column names are the JSON keys in lower case: Glue and Athena keep names in lower case,
 * and the OpenX JSON SerDe matches keys case-insensitively (`eTag` fills `etag`).
 * `model` is not a data column: it is the partition of the same name, whose value the key
 * path carries and which equals every line's `model` field. `labeledAt` stays the ISO 8601
 * string the line holds (`from_iso8601_timestamp(labeledat)` in a query), so no SerDe
 * timestamp format can misread it. test/infra/athena.test.ts checks these columns against
 * lines the handler really wrote.
 */
export const RESULTS_LINES_TABLE = {
  tableName: 'results',
  prefix: RESULTS_PREFIX,
  columns: [
    { name: 'bucket', type: 'string', comment: 'images bucket' },
    { name: 'key', type: 'string', comment: 'object key of the image' },
    { name: 'etag', type: 'string', comment: 'eTag of the image version labeled' },
    { name: 'modelversion', type: 'string', comment: 'model version' },
    { name: 'status', type: 'string', comment: 'ok or failed' },
    {
      name: 'labels',
      type: 'array<struct<label:string,score:double>>',
      comment: 'top-k labels, best first; empty when failed',
    },
    { name: 'error', type: 'struct<code:string,message:string>', comment: 'why it failed; null when ok' },
    { name: 'jobid', type: 'string', comment: 'labeling job; null for uploads' },
    { name: 'labeledat', type: 'string', comment: 'ISO 8601 UTC time of labeling' },
  ],
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
