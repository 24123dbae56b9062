import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { Job } from '../../shared/labeling/jobs.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

const JOB_DEADLINE_MS = Number(process.env.JOB_DEADLINE_MS ?? 300_000);
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * A model version change relabels a dataset: `--mode stale` under the new version finds
 * no result of its own. The second stack runs `--target gpu` through the GPU worker's
 * entry point (a child process on the CPU provider) on the bulk queue.
 */
describe('labeling jobs: a new model version relabels, on the GPU worker path (decision 0014)', () => {
  let dir: string;
  let v2ModelDir: string;
  let stack: LocalStack | undefined;
  const bucket = 'labeler-images';
  const bodies: Buffer[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-jobs-'));
    v2ModelDir = join(dir, 'model-v2');
    await cp(DEFAULT_MODEL_DIR, v2ModelDir, { recursive: true });
    const manifestPath = join(v2ModelDir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    await writeFile(manifestPath, JSON.stringify({ ...manifest, version: `${manifest.version}-retrained` }));
    for (let i = 0; i < 8; i++)
      bodies.push(
        await solidImage(40, 30 + i, `#${i}0${i}0${i}0`)
          .png()
          .toBuffer(),
      );
  });
  after(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const upload = async (s: LocalStack) => {
    for (const [i, body] of bodies.entries()) {
      await s.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `ds/${i}.png`, Body: body }));
    }
  };
  const run = async (s: LocalStack, request: Parameters<LocalStack['jobs']['start']>[0]): Promise<Job> => {
    const started = await s.jobs.start(request);
    return waitFor(
      `job ${started.jobId}`,
      async () => {
        const job = await s.jobs.get(started.jobId);
        return job?.status === 'succeeded' ? job : undefined;
      },
      JOB_DEADLINE_MS,
    );
  };

  it('labels under v1, skips under v1 --mode stale, relabels all under v2 with --target gpu', async () => {
    const dataDir = join(dir, 'dynamodb');
    await mkdir(dataDir);
    stack = await startLocalStack({ dataDir, log: quiet });
    await upload(stack);
    const first = await run(stack, { bucket, prefix: 'ds/', target: 'lambda', mode: 'all' });
    assert.deepEqual([first.total, first.labeled, first.skipped], [8, 8, 0]);
    const stale = await run(stack, { bucket, prefix: 'ds/', target: 'lambda', mode: 'stale' });
    assert.deepEqual([stale.total, stale.labeled, stale.skipped], [8, 0, 8]);
    await stack.stop();
    stack = undefined;

    // Same results table, new model version; S3 is in memory, so the same bytes (same eTags) go back in.
    stack = await startLocalStack({
      dataDir,
      modelDir: v2ModelDir,
      worker: false,
      planner: true,
      gpuWorker: true,
      log: quiet,
    });
    await upload(stack);
    const relabel = await run(stack, { bucket, prefix: 'ds/', target: 'gpu', mode: 'stale' });
    assert.deepEqual([relabel.total, relabel.labeled, relabel.skipped], [8, 8, 0]);
    assert.match(relabel.model.version, /-retrained$/);
    const again = await run(stack, { bucket, prefix: 'ds/', target: 'gpu', mode: 'stale' });
    assert.deepEqual([again.total, again.labeled, again.skipped], [8, 0, 8]);
    const results = [];
    for await (const r of stack.jobs.results(relabel.jobId)) results.push(r);
    assert.equal(results.length, 8);
    assert.ok(results.every((r) => r.model.version === relabel.model.version));
  });
});
