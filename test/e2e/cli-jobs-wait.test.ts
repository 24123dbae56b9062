import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { WAIT_TIMED_OUT } from '../../cli/jobs-command.ts';
import { removeEndpoints, writeEndpoints } from '../../local/endpoints.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { LabelerProcess } from '../helpers/labeler-process.ts';

/**
 * How `jobs start --wait` ends when the job does not succeed. The stack's classify worker
 * holds a job's images until the job is cancelled, so a job stays `running` until then:
 * the timeout, Ctrl-C and cancel cases do not depend on how fast anything runs. Once
 * cancelled, the worker records the held images `cancelled` and the job ends.
 */
describe('labeler jobs start --wait: cancelled, failed, timed out, interrupted', () => {
  let dataDir: string;
  let stack: LocalStack;
  let stopping = false;
  const bucket = 'labeler-images';
  const prefix = 'datasets/never-labeled/';
  const jobs = (...args: string[]) => runCli(['jobs', ...args, '--data-dir', dataDir]);
  const statusOf = async (jobId: string) =>
    jsonLines((await jobs('status', jobId, '--format', 'json')).stdout)[0];
  const startWaiting = (...extra: string[]) =>
    new LabelerProcess([
      'jobs',
      'start',
      '--prefix',
      prefix,
      '--mode',
      'all',
      '--wait',
      '--data-dir',
      dataDir,
      ...extra,
    ]);
  const jobIdOf = async (run: LabelerProcess) => (await run.waitForOutput(/^(j-[0-9a-f]+)$/m))[1] as string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-jobs-wait-'));
    stack = await startLocalStack({
      worker: true,
      planner: true,
      wrapHandler: (handler) => async (event) => {
        const jobIds = new Set(
          event.Records.flatMap((r) => {
            const id = (JSON.parse(r.body) as { labelerJobId?: string }).labelerJobId;
            return id ? [id] : [];
          }),
        );
        for (const jobId of jobIds) {
          while (
            !stopping &&
            ['planning', 'running'].includes(String((await stack.jobs.get(jobId))?.status))
          ) {
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }
        return handler(event);
      },
      // Readable as far as the stack is told, yet missing: the job fails while listing.
      readableBuckets: ['no-such-bucket'],
      log: { info() {}, warn() {}, error() {} },
    });
    await writeEndpoints(dataDir, {
      region: stack.region,
      endpoints: stack.endpoints,
      names: { ...stack.names },
      readableBuckets: ['no-such-bucket'],
      pid: process.pid,
    });
    for (let i = 0; i < 3; i++) {
      const body = await solidImage(20, 20 + i, '#336699')
        .png()
        .toBuffer();
      await stack.clients.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${i}.png`, Body: body }),
      );
    }
  });
  after(async () => {
    stopping = true;
    await removeEndpoints(dataDir).catch(() => undefined);
    await stack?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it(`--timeout ends the wait with exit ${WAIT_TIMED_OUT}; the job goes on`, async () => {
    const run = await jobs(
      'start',
      '--prefix',
      prefix,
      '--mode',
      'all',
      '--wait',
      '--timeout',
      '2',
      '--format',
      'json',
    );
    assert.equal(run.code, WAIT_TIMED_OUT, run.stderr);
    const [first, last] = jsonLines(run.stdout);
    const jobId = String(first?.jobId);
    assert.equal(last?.jobId, jobId, 'the job as it was when the wait ended');
    assert.match(String(last?.status), /^(planning|running)$/);
    assert.match(run.stderr, /--timeout 2 s passed/);
    assert.match(run.stderr, new RegExp(`job ${jobId} is still (planning|running)`));
    assert.match(run.stderr, new RegExp(`labeler jobs status ${jobId}`));
    assert.match(
      String((await statusOf(jobId))?.status),
      /^(planning|running)$/,
      'not cancelled by the timeout',
    );
    assert.equal((await jobs('cancel', jobId)).code, 0);
  });

  it('Ctrl-C ends the wait with exit 130 and leaves the job running', async () => {
    const run = startWaiting();
    const jobId = await jobIdOf(run);
    run.kill('SIGINT');
    assert.equal(await run.exited, 130, run.output);
    assert.match(run.stderr, /interrupted: stopped waiting/);
    assert.match(run.stderr, new RegExp(`job ${jobId} is still (planning|running)`));
    assert.match(String((await statusOf(jobId))?.status), /^(planning|running)$/);
    assert.equal((await jobs('cancel', jobId)).code, 0);
  });

  it('a job cancelled while waited on exits 1', async () => {
    const run = startWaiting();
    const jobId = await jobIdOf(run);
    const cancel = await jobs('cancel', jobId);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(await run.exited, 1, run.output);
    // The wait ends once the job is cancelled with every object accounted for, not before.
    const summary = run.stderr.match(
      new RegExp(
        `job ${jobId} cancelled: (\\d+) labeled, (\\d+) failed, (\\d+) skipped, (\\d+) cancelled of (\\d+)`,
      ),
    );
    assert.ok(summary, run.stderr);
    const [labeled, failed, skipped, cancelled, total] = summary.slice(1).map(Number) as number[];
    assert.equal(total, 3);
    assert.equal(cancelled, 3, 'the held images were dropped, not labeled');
    assert.equal((labeled ?? 0) + (failed ?? 0) + (skipped ?? 0) + (cancelled ?? 0), total);
  });

  it('a job that fails (its bucket does not exist) exits 1', async () => {
    const run = await jobs(
      'start',
      '--bucket',
      'no-such-bucket',
      '--prefix',
      'x/',
      '--wait',
      '--format',
      'json',
    );
    assert.equal(run.code, 1, run.stderr);
    const [, last] = jsonLines(run.stdout);
    assert.equal(last?.status, 'failed');
    assert.equal((last?.error as { code?: string } | undefined)?.code, 'job/list-failed');
    assert.match(run.stderr, /job j-[0-9a-f]+ failed/);
    // The reason, not only "0 ... of 0": what "jobs status" shows.
    assert.match(
      run.stderr,
      /\[job\/list-failed\] s3:\/\/no-such-bucket\/x\/ cannot be listed: NoSuchBucket/,
    );
  });

  it('a bucket the stack cannot read is refused before anything is planned (exit 2)', async () => {
    const before = jsonLines((await jobs('list', '--format', 'json')).stdout).length;
    for (const args of [
      ['start', '--bucket', 'someone-elses-bucket', '--prefix', 'x/', '--target', 'lambda'],
      // auto would list the bucket to price the job: the refusal comes first.
      ['start', '--bucket', 'someone-elses-bucket', '--prefix', 'x/'],
      [
        'schedule',
        'add',
        'other',
        '--expression',
        'rate(1 hour)',
        '--bucket',
        'someone-elses-bucket',
        '--prefix',
        'x/',
      ],
    ]) {
      const run = await jobs(...args);
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        /\[job\/bucket-not-readable\] this stack cannot read s3:\/\/someone-elses-bucket/,
      );
      assert.match(run.stderr, /s3:\/\/labeler-images, s3:\/\/no-such-bucket/);
      assert.match(run.stderr, /"readableBuckets" list in cdk\.json/);
      assert.equal(run.stdout, '');
    }
    assert.equal(jsonLines((await jobs('list', '--format', 'json')).stdout).length, before, 'no job created');
  });

  it('--prefix: an s3:// URL is bucket + prefix; a prefix names a folder; one with no objects is refused', async () => {
    const before = jsonLines((await jobs('list', '--format', 'json')).stdout).length;
    const url = await jobs(
      'start',
      '--prefix',
      `s3://${bucket}/datasets/never-labeled`,
      '--target',
      'lambda',
      '--format',
      'json',
    );
    assert.equal(url.code, 0, url.stderr);
    const [started] = jsonLines(url.stdout);
    assert.equal(started?.bucket, bucket);
    assert.equal(started?.prefix, prefix, 'the folder, with its "/"');
    assert.equal((await jobs('cancel', String(started?.jobId))).code, 0);

    // datasets/never is the folder datasets/never/, not datasets/never-labeled/: nothing there.
    const empty = await jobs('start', '--prefix', 'datasets/never', '--target', 'lambda');
    assert.equal(empty.code, 1, empty.stderr);
    assert.match(
      empty.stderr,
      /\[job\/no-objects\] no objects under s3:\/\/labeler-images\/datasets\/never\/ .*s3:\/\/labeler-images\/datasets\/ holds never-labeled\//,
    );
    assert.equal(empty.stdout, '');

    const conflict = await jobs(
      'start',
      '--bucket',
      'no-such-bucket',
      '--prefix',
      `s3://${bucket}/datasets/`,
    );
    assert.equal(conflict.code, 2, conflict.stderr);
    assert.match(
      conflict.stderr,
      /\[job\/invalid-request\] --prefix "s3:\/\/labeler-images\/datasets\/" names bucket labeler-images but --bucket is no-such-bucket/,
    );
    assert.equal(
      jsonLines((await jobs('list', '--format', 'json')).stdout).length,
      before + 1,
      'only the first was started',
    );

    // export --prefix: the same s3:// reading, and the same refusal of a prefix with nothing under it.
    const exportOf = (p: string) =>
      runCli(['export', '--prefix', p, '--out', '-', '--format', 'jsonl', '--data-dir', dataDir]);
    const exported = await exportOf(`s3://${bucket}/${prefix}`);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout, '', 'none of them labeled: no rows');
    const nothing = await exportOf(`s3://${bucket}/datasets/never/`);
    assert.equal(nothing.code, 1, nothing.stderr);
    assert.match(
      nothing.stderr,
      /\[job\/no-objects\] no objects under s3:\/\/labeler-images\/datasets\/never\//,
    );
  });

  it('--timeout is checked before connecting', async () => {
    for (const [args, why] of [
      [['--timeout', '5'], /--timeout goes with --wait/],
      [['--wait', '--timeout', '0'], /--timeout must be a positive integer/],
      [['--wait', '--timeout', 'soon'], /--timeout must be a positive integer/],
    ] as const) {
      const run = await runCli([
        'jobs',
        'start',
        '--prefix',
        'p',
        ...args,
        '--data-dir',
        join(dataDir, 'none'),
      ]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, why);
    }
  });

  it('jobs start --help documents --timeout and the exit codes', async () => {
    const run = await runCli(['jobs', 'start', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /--timeout <s>/);
    assert.match(run.stdout, new RegExp(`${WAIT_TIMED_OUT} when --timeout passed`));
    assert.match(run.stdout, /130 on Ctrl-C/);
    assert.match(run.stdout, /Ctrl-C stops waiting,\s+not the job/);
    assert.match(
      run.stdout,
      /a "\/" is added if missing,\s+so datasets\/h1 is datasets\/h1\/ \(not datasets\/h1gpu\/\)/,
    );
    assert.match(run.stdout, /s3:\/\/<bucket>\/<prefix> URL is taken as bucket and prefix/);
  });
});
