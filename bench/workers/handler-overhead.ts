// The classify handler's own CPU per image against the in-process pipeline's, in one
// process with one labeler (the local stack's settings), taking turns round by round: the
// handler's path reads each image from S3 and writes its result to DynamoDB and S3
// (classifyRecords with the real stores), the in-process path reads the same files from
// disk. The emulators run in other processes, so this process's CPU is the handler's alone.
// Variants switch off the two cuts of decision 0021 to measure what each saves.
import { type ChildProcess, fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { basename } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { setLabelingHeapGrowth } from '../../shared/aws/classify-handler.ts';
import { createAwsClients, LOCAL_CREDENTIALS } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { S3ExportStore, S3ImageStore } from '../../shared/aws/s3-stores.ts';
import { resultsTableDefinition } from '../../shared/aws/table-definitions.ts';
import { classifyRecords, type QueueRecord } from '../../shared/labeling/classify-records.ts';
import { createImageLabeler } from '../../shared/labeling/create-labeler.ts';
import type { ImageStore, ResultsStore } from '../../shared/labeling/results.ts';
import { s3EventBody } from '../../shared/labeling/s3-event.ts';
import { CLASSIFY, IMAGE_LIMITS, LABELING } from '../../shared/settings.ts';
import { workerMain } from '../lib/child.ts';
import { cpuSecondsSince, median } from '../lib/stats.ts';
import { threadCpuDelta, threadCpuMs } from '../lib/thread-cpu.ts';

export interface HandlerOverheadArgs {
  readonly modelDir: string;
  readonly files: readonly string[];
  /** Rounds per path; each round labels every file once. */
  readonly rounds: number;
  /** The paths to run (all when omitted): one alone, to profile it. */
  readonly paths?: readonly HandlerPath[];
}

/**
 * inProcess: labelAll over the files. handler: classifyRecords with the real stores, as
 * deployed. handlerPerImageWrites: one transaction per result (before decision 0021).
 * handlerChecksums: the SDK's default response checksums (before decision 0021).
 * handlerFileImages: the handler with images read from disk, so handler minus it is the
 * S3 GET. handlerRawGet: the images by a bare HTTP GET without the SDK, the floor of
 * moving the bytes over HTTP.
 */
export type HandlerPath =
  | 'inProcess'
  | 'handler'
  | 'handlerPerImageWrites'
  | 'handlerChecksums'
  | 'handlerFileImages'
  | 'handlerRawGet';

export interface HandlerOverheadResult {
  readonly images: number;
  readonly rounds: number;
  /** CPU-ms per image of each path: the median round. */
  readonly cpuMsPerImage: Record<HandlerPath, number>;
  /** Every round's CPU-ms per image, in the order run. */
  readonly roundsMs: Record<HandlerPath, number[]>;
  /**
   * CPU-ms per image of each path by thread (lib/thread-cpu.ts), the mean over its rounds:
   * which threads spend the handler's extra. Empty where /proc is not there.
   */
  readonly cpuMsByThread: Record<HandlerPath, Record<string, number>>;
}

const BUCKET = 'images';
const TABLE = 'results';

/** fauxqs (S3 + SQS) in a child process of its own, so its CPU is not counted here. */
async function startS3Emulator(): Promise<{ endpoint: string; child: ChildProcess }> {
  const child = fork(new URL('../lib/fauxqs-process.ts', import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve(String(m)));
    child.once('exit', (code) => reject(new Error(`the S3 emulator exited (${code})`)));
  });
  return { endpoint, child };
}

function eventRecord(key: string, eTag: string, size: number, id: number): QueueRecord {
  const body = s3EventBody([
    { region: 'us-east-1', bucket: BUCKET, key, size, eTag, sequencer: '0062E99A88DC407460' },
  ]);
  return { messageId: `m${id}`, body, attributes: { ApproximateReceiveCount: '1' } };
}

setFlagsFromString('--expose-gc');
// As the deployed handler's process runs (createClassifyDeps sets it); every path shares it.
setLabelingHeapGrowth();
/** Collects the garbage of a round's setup (its uploads), so the round does not pay for it. */
const collectGarbage = runInNewContext('gc') as () => void;

await workerMain<HandlerOverheadArgs, HandlerOverheadResult>(async (args) => {
  const dynamo = await startDynamoDbLocal();
  const s3Emulator = await startS3Emulator();
  try {
    const endpoints = { s3: s3Emulator.endpoint, dynamodb: dynamo.endpoint };
    const clients = createAwsClients({ region: 'us-east-1', endpoints, local: true });
    // The SDK's default: ask for checksums and verify them (the emulator sends none, so this
    // measures only the middleware's own cost, not the CRC over the body that S3 would add).
    const checksumS3 = new S3Client({
      region: 'us-east-1',
      endpoint: s3Emulator.endpoint,
      forcePathStyle: true,
      credentials: LOCAL_CREDENTIALS,
    });
    await clients.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await clients.dynamo.send(new CreateTableCommand(resultsTableDefinition(TABLE)));
    const labeler = await createImageLabeler({
      modelDir: args.modelDir,
      intraOpThreads: 1,
      batchSize: CLASSIFY.batchSize,
      concurrency: 2,
      topK: LABELING.topK,
    });
    const bytes = await Promise.all(args.files.map((f) => readFile(f)));

    const results = new DynamoResultsStore(clients.db, TABLE);
    // The store before decision 0021: one transaction per result.
    const perImage: ResultsStore = {
      findExisting: (images, model) => results.findExisting(images, model),
      put: (result, previous) => results.put(result, previous),
      getByImage: (bucket, key) => results.getByImage(bucket, key),
      queryByLabel: (query) => results.queryByLabel(query),
      putAll: (writes) =>
        Promise.all(
          writes.map((w) =>
            results.put(w.result, w.previous).then(
              (value) => ({ status: 'fulfilled', value }) as const,
              (reason: unknown) => ({ status: 'rejected', reason }) as const,
            ),
          ),
        ),
    };
    const byName = new Map(args.files.map((f) => [basename(f), f]));
    const agent = new http.Agent({ keepAlive: true });
    const imageStore = (variant: HandlerPath, s3: S3Client): ImageStore => {
      if (variant === 'handlerFileImages') {
        return { get: (ref) => readFile(byName.get(basename(ref.key)) as string) };
      }
      if (variant !== 'handlerRawGet') return new S3ImageStore(s3, IMAGE_LIMITS.maxBytes);
      return {
        get: (ref) =>
          new Promise<Uint8Array>((resolve, reject) => {
            const url = `${s3Emulator.endpoint}/${ref.bucket}/${encodeURIComponent(ref.key)}`;
            http
              .get(url, { agent }, (response) => {
                const chunks: Buffer[] = [];
                response.on('data', (chunk: Buffer) => chunks.push(chunk));
                response.on('end', () => resolve(Buffer.concat(chunks)));
                response.on('error', reject);
              })
              .on('error', reject);
          }),
      };
    };
    const roundsMs: Record<HandlerPath, number[]> = {
      inProcess: [],
      handler: [],
      handlerPerImageWrites: [],
      handlerChecksums: [],
      handlerFileImages: [],
      handlerRawGet: [],
    };
    const byThread = new Map<HandlerPath, Map<string, number>>();
    /** Runs one round of a path and records its CPU per image, whole and by thread. */
    const measured = async (path: HandlerPath, work: () => Promise<void>): Promise<void> => {
      collectGarbage();
      const cpu = process.cpuUsage();
      const threads = threadCpuMs();
      await work();
      roundsMs[path].push((cpuSecondsSince(cpu) * 1000) / args.files.length);
      const sums = byThread.get(path) ?? new Map<string, number>();
      for (const [group, ms] of threadCpuDelta(threads, threadCpuMs()))
        sums.set(group, (sums.get(group) ?? 0) + ms);
      byThread.set(path, sums);
    };
    let uploads = 0;
    const handlerRound = async (variant: HandlerPath): Promise<void> => {
      // Fresh keys each round, so nothing is a duplicate.
      const prefix = `r${uploads++}`;
      const records = await Promise.all(
        args.files.map(async (file, i) => {
          const key = `${prefix}/${basename(file)}`;
          const body = bytes[i] as Buffer;
          const put = await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
          return eventRecord(key, (put.ETag ?? '').replace(/"/g, ''), body.length, i);
        }),
      );
      const s3 = variant === 'handlerChecksums' ? checksumS3 : clients.s3;
      const deps = {
        labeler,
        images: imageStore(variant, s3),
        results: variant === 'handlerPerImageWrites' ? perImage : results,
        exports: new S3ExportStore(s3, BUCKET),
        log: { info: () => {}, warn: () => {}, error: () => {} },
      };
      await measured(variant, async () => {
        for (let at = 0; at < records.length; at += CLASSIFY.batchSize) {
          const report = await classifyRecords(records.slice(at, at + CLASSIFY.batchSize), deps);
          if (report.failedMessageIds.length > 0) throw new Error(`${variant}: a batch failed`);
        }
      });
    };
    const inProcessRound = () =>
      measured('inProcess', async () => {
        let lines = 0;
        for await (const run of labeler.labelAll(
          args.files.map((_, i) => i),
          (i) => readFile(args.files[i] as string),
        )) {
          for (const { outcome } of run) lines += JSON.stringify(outcome).length > 0 ? 1 : 0;
        }
        if (lines !== args.files.length) throw new Error('inProcess: an image had no outcome');
      });

    const paths = args.paths ?? (Object.keys(roundsMs) as HandlerPath[]);
    const round = (path: HandlerPath) => (path === 'inProcess' ? inProcessRound() : handlerRound(path));
    // A warm-up of each path (JIT, first requests, first runs), not counted.
    for (const path of paths) await round(path);
    for (const path of paths) roundsMs[path].length = 0;
    byThread.clear();
    for (let r = 0; r < args.rounds; r++) for (const path of paths) await round(path);
    const cpuMsPerImage = Object.fromEntries(paths.map((path) => [path, median(roundsMs[path])])) as Record<
      HandlerPath,
      number
    >;
    const imagesLabeled = args.files.length * args.rounds;
    const cpuMsByThread = Object.fromEntries(
      paths.map((path) => [
        path,
        Object.fromEntries([...(byThread.get(path) ?? [])].map(([group, ms]) => [group, ms / imagesLabeled])),
      ]),
    ) as Record<HandlerPath, Record<string, number>>;
    await labeler.classifier.release();
    return { images: args.files.length, rounds: args.rounds, cpuMsPerImage, roundsMs, cpuMsByThread };
  } finally {
    s3Emulator.child.kill();
    await dynamo.stop();
  }
});
