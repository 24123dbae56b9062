/**
 * The one list of error codes (decision 0028). Every code a LabelerError, a failed result,
 * a dead letter or an HTTP error body carries is declared here, once, with
 *
 * - `kind`: permanent (a failed result, never retried), transient (retried; after the last
 *   receive a dead letter), start-up (the process refuses to start), client (the caller's
 *   request or arguments), local (this machine, its files, tools or local stack), report
 *   (said in a report; the command goes on);
 * - `exit`: the status `labeler` exits with when the error ends a command;
 * - `http`: the status the query API and the results page answer with it; without one a
 *   server answers 500 `internal/unexpected`, the details only in its log;
 * - `meaning`: the README's words (its table is generated from this list).
 *
 * Code outside this file names a code through `CODE` (`CODE.image.decodeFailed`), never as
 * a string; test/unit/error-codes.test.ts fails on a literal, and LabelerError takes only
 * an `ErrorCode`.
 */

export type ErrorKind = 'permanent' | 'transient' | 'start-up' | 'client' | 'local' | 'report';

export interface ErrorSpec {
  readonly kind: ErrorKind;
  readonly exit: number;
  readonly http?: number;
  readonly meaning: string;
}

export const ERROR_CODES = {
  'image/empty': { kind: 'permanent', exit: 1, meaning: 'zero bytes' },
  'image/too-large': { kind: 'permanent', exit: 1, meaning: 'more encoded bytes than the limit (32 MiB)' },
  'image/too-many-pixels': {
    kind: 'permanent',
    exit: 1,
    meaning: 'width × height over the limit (50 MP), read from the header before decoding',
  },
  'image/unsupported-format': {
    kind: 'permanent',
    exit: 1,
    meaning: 'not JPEG, PNG, WebP, TIFF, GIF (first frame) or AVIF; SVG is always refused',
  },
  'image/decode-failed': { kind: 'permanent', exit: 1, meaning: 'corrupt or truncated data' },

  'file/not-found': {
    kind: 'permanent',
    exit: 1,
    http: 404,
    meaning:
      '`labeler label`: the path, or a link’s target, does not exist; `--expect`: the CSV cannot be read',
  },
  'file/unreadable': {
    kind: 'permanent',
    exit: 1,
    meaning: '`labeler label`: no permission to read the file or list the folder; an I/O error',
  },
  'file/not-regular': {
    kind: 'permanent',
    exit: 1,
    meaning: '`labeler label`: a FIFO, device or socket; refused without reading from it',
  },
  'file/symlink-loop': {
    kind: 'permanent',
    exit: 1,
    meaning: '`labeler label`: links that loop, or a link back to a folder being walked',
  },
  'csv/invalid': {
    kind: 'client',
    exit: 1,
    meaning: '`--expect`: the CSV does not start with `file,label` or has a malformed row',
  },

  'object/not-found': {
    kind: 'permanent',
    exit: 1,
    http: 404,
    meaning: 'the object was deleted after its event',
  },
  'object/changed': {
    kind: 'permanent',
    exit: 1,
    meaning: 'superseded: overwritten after its event; the newer upload’s event labels it',
  },
  'object/access-denied': {
    kind: 'permanent',
    exit: 1,
    meaning:
      'S3 answered 403 to the read: the role, a bucket policy or the object’s KMS key refuses it (a key that does not exist also reads 403 without `s3:ListBucket`); clock and signing 403s stay transient',
  },
  'object/archived': {
    kind: 'permanent',
    exit: 1,
    meaning:
      'the object is in Glacier or Deep Archive (`InvalidObjectState`): restore it, then label it again',
  },
  'object/bad-request': {
    kind: 'permanent',
    exit: 1,
    meaning:
      'S3 called the read itself invalid (400 `InvalidArgument`, `InvalidRequest`, `InvalidBucketName`, `KeyTooLongError`)',
  },
  'result/not-storable': {
    kind: 'permanent',
    exit: 1,
    meaning:
      'the results store refused the result for good (a DynamoDB ValidationException): a failed result saying why, on the first receive',
  },
  'queue/retries-exhausted': {
    kind: 'transient',
    exit: 1,
    meaning: 'a job’s image whose message failed on every receive: a failed row of the job',
  },
  'queue/message-failed': {
    kind: 'transient',
    exit: 1,
    meaning:
      'not processed: its message failed on another of its images (the cause of a `queue/retries-exhausted`)',
  },
  'invocation/deadline': {
    kind: 'transient',
    exit: 1,
    meaning: 'not started: the invocation was running out of time; its message comes back',
  },
  'internal/unexpected': {
    kind: 'transient',
    exit: 1,
    http: 500,
    meaning: 'a failure that is not the caller’s (not a typed error); the details are only logged',
  },
  'startup/failed': {
    kind: 'start-up',
    exit: 1,
    meaning: 'GPU worker: an untyped failure while starting; the process exits',
  },
  'config/invalid': {
    kind: 'start-up',
    exit: 1,
    meaning: 'a setting is missing or malformed; the process refuses to start',
  },

  'aws/throttled': { kind: 'transient', exit: 1, http: 503, meaning: 'AWS throttled the request; retried' },
  'aws/unavailable': { kind: 'transient', exit: 1, http: 503, meaning: 'AWS answered 5xx; retried' },
  'aws/timeout': {
    kind: 'transient',
    exit: 1,
    http: 503,
    meaning: 'the request timed out or lost its connection; retried',
  },
  'aws/request-failed': { kind: 'transient', exit: 1, meaning: 'any other AWS failure; retried' },
  'aws/invalid-request': {
    kind: 'permanent',
    exit: 1,
    meaning:
      'AWS refused the request itself (ValidationException, or a transaction cancelled for one): never retried',
  },
  'dynamodb/throttled': {
    kind: 'transient',
    exit: 1,
    meaning: 'DynamoDB left keys unprocessed after every BatchGet retry',
  },

  'model/not-found': {
    kind: 'start-up',
    exit: 3,
    http: 404,
    meaning: 'no model folder, manifest, model file or labels file where named',
  },
  'model/manifest-invalid': {
    kind: 'start-up',
    exit: 3,
    meaning: 'the manifest is not JSON or not in its schema; the labels file is malformed',
  },
  'model/checksum-mismatch': {
    kind: 'start-up',
    exit: 3,
    meaning: 'the model file’s sha256 (or a download’s size) is not the one pinned',
  },
  'model/mismatch': {
    kind: 'start-up',
    exit: 3,
    meaning: 'the model’s inputs or outputs do not have the manifest’s shape or type',
  },
  'model/load-failed': { kind: 'start-up', exit: 3, meaning: 'onnxruntime cannot open the model' },
  'model/provider-unavailable': {
    kind: 'start-up',
    exit: 3,
    meaning: 'the execution provider asked for (CUDA) could not load and CPU fallback is off',
  },
  'model/inference-failed': {
    kind: 'start-up',
    exit: 3,
    meaning: 'onnxruntime failed while running the model',
  },
  'model/registry-invalid': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model pull`: the model registry is unreadable, not JSON, or an entry is incomplete',
  },
  'model/unknown-name': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model pull`: the registry lists no such model',
  },
  'model/download-failed': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model pull`: the transfer stopped; what arrived is kept and the same pull resumes',
  },
  'model/export-needs-torch': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model export`: python3, torch, torchvision or onnx is missing',
  },
  'model/export-download-failed': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model export`: the ImageNet weights cannot be fetched',
  },
  'model/export-failed': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model export`: any other failure of the export',
  },
  'model/already-quantized': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model quantize`: the folder already holds an INT8 model',
  },
  'model/out-is-source': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model quantize`: `--out` is the FP32 model’s own folder',
  },
  'model/calibration-empty': {
    kind: 'start-up',
    exit: 3,
    meaning: '`model quantize`: no usable calibration images',
  },

  'cli/usage': {
    kind: 'client',
    exit: 2,
    meaning: 'wrong command-line use: one line, then where the command’s help is',
  },
  'pipeline/timeout': {
    kind: 'local',
    exit: 1,
    meaning: '`local run`, `upload --wait`: some files have no result within `--timeout`',
  },
  'upload/duplicate-key': {
    kind: 'permanent',
    exit: 1,
    meaning: '`labeler upload`: two files named would be stored under the same key; the second is not sent',
  },
  'upload/key-too-long': {
    kind: 'permanent',
    exit: 1,
    meaning:
      '`labeler upload`: the key would be over S3’s 1,024 bytes (an emulator may accept it; S3 does not); not sent',
  },
  'export/write-failed': {
    kind: 'local',
    exit: 1,
    meaning: '`labeler export`: the output file cannot be created or written',
  },

  'query/bad-request': {
    kind: 'client',
    exit: 2,
    http: 400,
    meaning: 'query: malformed path encoding, parameter out of range, key or label too long',
  },
  'query/bad-cursor': {
    kind: 'client',
    exit: 2,
    http: 400,
    meaning: 'query: a cursor that the same query did not return',
  },
  'query/no-api': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`query`, `ui`: the stack serves no query API (deployed or started by an older labeler)',
  },
  'results/not-found': {
    kind: 'client',
    exit: 1,
    http: 404,
    meaning: 'query API: no results for that image',
  },
  'results/unreadable': {
    kind: 'client',
    exit: 1,
    meaning:
      '`labeler evaluate --results`: the file cannot be read, or a line is not a result line of `labeler label`/`export` (the line is named)',
  },
  'compare/no-overlap': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`labeler compare`: no image has an ok result from both models (their result counts are shown)',
  },
  'compare/model-mismatch': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`labeler compare --results`: a line names another model than its `--model` (the line is named)',
  },
  'compare/duplicate-image': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`labeler compare --results`: one file holds two results for the same image',
  },
  'http/bad-request': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: 'results page API: the body is not JSON',
  },
  'http/forbidden': {
    kind: 'client',
    exit: 1,
    http: 403,
    meaning: 'results page API: a request from another origin than the page',
  },
  'http/not-found': {
    kind: 'client',
    exit: 1,
    http: 404,
    meaning: 'no such route (query API, results page, or the query API behind `labeler query`)',
  },
  'http/method-not-allowed': {
    kind: 'client',
    exit: 1,
    http: 405,
    meaning: 'the route does not take that method',
  },
  'query-api/forbidden': {
    kind: 'client',
    exit: 1,
    meaning: 'API Gateway answered 403: unsigned, mis-signed or not allowed',
  },
  'query-api/throttled': { kind: 'transient', exit: 1, meaning: 'API Gateway answered 429' },
  'query-api/unavailable': { kind: 'transient', exit: 1, meaning: 'API Gateway answered 5xx' },
  'query-api/timeout': { kind: 'transient', exit: 1, meaning: 'the query API did not answer in time' },
  'query-api/unreachable': { kind: 'transient', exit: 1, meaning: 'the query API could not be reached' },
  'query-api/bad-response': {
    kind: 'transient',
    exit: 1,
    meaning: 'the query API answered 200 without JSON',
  },

  'job/invalid-request': {
    kind: 'client',
    exit: 2,
    http: 400,
    meaning: '`jobs start`/`schedule add`: a malformed bucket, prefix or request',
  },
  'job/invalid-sample': {
    kind: 'client',
    exit: 2,
    http: 400,
    meaning:
      '`jobs start --sample`: neither a count of objects (50) nor a percentage above 0 up to 100 (5%), or a `--seed` that is not a whole number',
  },
  'job/bucket-not-readable': {
    kind: 'client',
    exit: 2,
    http: 400,
    meaning:
      '`jobs start`/`schedule add`: the stack’s roles may not read that bucket; add it to cdk.json’s `readableBuckets` and deploy',
  },
  'job/no-objects': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: 'no objects under the prefix; what the nearest folder above holds is named',
  },
  'job/no-gpu-worker': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning:
      '`jobs start --target gpu` on a local stack started without `--gpu-worker`: nothing would label it',
  },
  'job/unknown-model': {
    kind: 'client',
    exit: 2,
    http: 400,
    meaning:
      '`jobs start --model`/`schedule add --model`: the stack hosts no model of that name, id or id@version; the hosted ones are named',
  },
  'job/not-found': { kind: 'client', exit: 1, http: 404, meaning: 'no job with that id' },
  'job/not-cancellable': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`jobs cancel`: the job is neither planning nor running',
  },
  'job/list-failed': {
    kind: 'permanent',
    exit: 1,
    http: 400,
    meaning: 'the job’s prefix cannot be listed (access denied, no such bucket)',
  },
  'job/enqueue-failed': {
    kind: 'transient',
    exit: 1,
    http: 400,
    meaning: 'a planned page of the job could not be sent to its queue; the plan step is retried',
  },
  'job/plan-out-of-order': {
    kind: 'transient',
    exit: 1,
    http: 400,
    meaning: 'a plan step arrived before the one it follows; retried',
  },
  'schedule/invalid': {
    kind: 'client',
    exit: 1,
    meaning:
      '`jobs schedule add`, cdk.json: a bad name, expression or zone, or a cron that never fires (31 February)',
  },
  'schedule/exists': {
    kind: 'client',
    exit: 1,
    meaning: '`jobs schedule add`: a schedule of that name exists',
  },
  'schedule/not-found': {
    kind: 'client',
    exit: 1,
    http: 404,
    meaning: 'no schedule of that name (`jobs schedule drift`: nor any job it started)',
  },
  'schedule/no-finished-run': {
    kind: 'client',
    exit: 1,
    http: 409,
    meaning:
      '`jobs schedule drift`: no run of the schedule has finished with labels yet, or the `--baseline` run has not',
  },
  'schedule/baseline-not-a-run': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`jobs schedule drift --baseline`: that job was not started by this schedule',
  },

  'dlq/retries-exhausted': {
    kind: 'transient',
    exit: 1,
    meaning: '`dlq list`: the message failed every attempt; the handler’s logs name it',
  },
  'dlq/stated': { kind: 'transient', exit: 1, meaning: '`dlq list`: the reason the message states itself' },
  'dlq/invalid-message': {
    kind: 'permanent',
    exit: 1,
    meaning: '`dlq list`: not JSON, not an S3 event, or a key that is not valid percent-encoding',
  },
  'dlq/test-event': { kind: 'permanent', exit: 1, meaning: '`dlq list`: an S3 test event' },
  'dlq/no-arn': { kind: 'local', exit: 1, meaning: '`dlq redrive`: the queue has no ARN' },

  'stack/not-found': {
    kind: 'client',
    exit: 1,
    http: 404,
    meaning: '`--stack`: no such stack in this account and region',
  },
  'stack/missing-output': {
    kind: 'client',
    exit: 1,
    meaning: 'the stack lacks an output this version needs; deploy this version',
  },

  'truth/unreadable': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning:
      '`labeler evaluate`: the `--truth` file, folder or JSON, or a `truth/` object of the stack, cannot be read or is not in its form (the row is named)',
  },
  'truth/unknown-label': {
    kind: 'report',
    exit: 0,
    meaning:
      '`labeler evaluate`: truth labels the model does not have; listed with their image counts, and those images count as misses',
  },
  'truth/no-match': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning:
      '`labeler evaluate`: no selected image has a truth label (keys did not match; one truth key is shown)',
  },
  'truth/empty': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`labeler evaluate`: the truth holds no labels',
  },
  'review/bad-export': {
    kind: 'client',
    exit: 2,
    meaning: '`review import`: the file is not a Label Studio JSON export',
  },
  'review/fiftyone-uuid-clash': {
    kind: 'client',
    exit: 1,
    meaning: '`review export --format fiftyone`: two keys have the same UUID (the key without its extension)',
  },
  'review/write-failed': { kind: 'local', exit: 1, meaning: '`review export`: the output cannot be written' },

  'local/already-running': {
    kind: 'local',
    exit: 1,
    meaning: 'another `local up` (or its DynamoDB Local) owns the data dir',
  },
  'local/not-running': { kind: 'local', exit: 1, meaning: 'no local stack is running in the data dir' },
  'local/dynamodb-exited': { kind: 'local', exit: 1, meaning: 'DynamoDB Local died while the stack ran' },
  'local/dynamodb-failed': { kind: 'local', exit: 1, meaning: 'DynamoDB Local did not become ready' },
  'local/bad-data-dir': {
    kind: 'local',
    exit: 1,
    meaning:
      '`local up`: the data dir is a file or under one, may not be written, or cannot be created (`/proc/...`)',
  },
  'ui/port-in-use': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`ui --port`: another process listens there',
  },
  'ui/port-not-allowed': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: '`ui --port`: a port below 1024 for an unprivileged user',
  },
  'ui/bad-request': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: 'results page API: a malformed parameter or body',
  },
  'ui/unknown-label': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: 'results page API: a label the model does not have',
  },
  'ui/not-available': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: 'results page API: the server was started without what that view needs (a job estimate)',
  },
  'ui/no-compare': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: 'results page API: a comparison asked for, but no `--compare` models attached',
  },
  'ui/no-truth': {
    kind: 'client',
    exit: 1,
    http: 400,
    meaning: 'results page API: an evaluation asked for, but no `--truth` attached',
  },
} as const satisfies Record<string, ErrorSpec>;

/**
 * Codes made of a fixed part and a number or name, declared as patterns: the query API
 * client's other HTTP statuses, and a system call's errno in the CLI's last resort.
 */
export const ERROR_CODE_PATTERNS = {
  'query-api/http-<status>': {
    kind: 'client',
    exit: 1,
    meaning: 'the query API answered another HTTP status',
  },
  'system/<errno>': {
    kind: 'local',
    exit: 1,
    meaning:
      'any other failed system call (`EACCES`, `ENOSPC`, ...): one line with the call and path, exit 1',
  },
} as const satisfies Record<string, ErrorSpec>;

/** `query-api/http-418`: a status of the query API no fixed code covers. */
export type QueryApiHttpCode = `query-api/http-${number}`;

export type ErrorCode = keyof typeof ERROR_CODES | QueryApiHttpCode;

export function queryApiHttpCode(status: number): QueryApiHttpCode {
  return `query-api/http-${status}`;
}

/** `system/EACCES`: the CLI's one line for a system call it did not expect to fail. */
export function systemCode(errno: string): string {
  return `system/${errno}`;
}

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type Fixed = keyof typeof ERROR_CODES;
type FamilyOf<C> = C extends `${infer F}/${string}` ? F : never;
type NameOf<C> = C extends `${string}/${infer N}` ? N : never;

/** Every code by family and name in camelCase: `CODE.queryApi.badResponse` is `'query-api/bad-response'`. */
export type CodeTree = {
  readonly [F in FamilyOf<Fixed> as Camel<F>]: {
    readonly [C in Extract<Fixed, `${F}/${string}`> as Camel<NameOf<C>>]: C;
  };
};

const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function codeTree(): CodeTree {
  const tree: Record<string, Record<string, string>> = {};
  for (const code of Object.keys(ERROR_CODES)) {
    const [family = '', name = ''] = code.split('/');
    tree[camel(family)] ??= {};
    (tree[camel(family)] as Record<string, string>)[camel(name)] = code;
  }
  return tree as unknown as CodeTree;
}

export const CODE: CodeTree = codeTree();

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code) || /^query-api\/http-\d+$/.test(code);
}

/** The declaration of `code`; a pattern's for `query-api/http-<status>`. */
export function errorSpec(code: ErrorCode): ErrorSpec {
  return Object.hasOwn(ERROR_CODES, code)
    ? ERROR_CODES[code as Fixed]
    : ERROR_CODE_PATTERNS['query-api/http-<status>'];
}

/** What `labeler` exits with when an error of `code` ends a command. */
export function exitStatusOf(code: ErrorCode): number {
  return errorSpec(code).exit;
}

/**
 * What the query API and the results page answer for an error of `code`: its declared
 * status, else 500 (then as `internal/unexpected`, the details only logged).
 */
export function httpStatusOf(code: ErrorCode): number {
  return errorSpec(code).http ?? 500;
}
