// Ten million images in an hour (issue 22, item 5). Writes the capacity table
// (bench/lib/jobs-scale-table.ts) into bench/SCALING-JOBS.md; with --local <objects>, also
// runs a job of that many objects on the local stack through the real planner and workers
// and records the planner's rate and the counts (a check of the planner and of exact
// counting, not of AWS's speed: the emulators and this machine's CPUs set the pace).
//
//   node --import tsx bench/jobs-scale.ts [--print] [--local 20000] [--invalid]
//
// --invalid uploads bodies that are not images: the workers fail each one at decode, so
// planning and counting are exercised at full size without an inference per object.
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../local/stack.ts';
import { mapLimit } from '../shared/labeling/image-labeler.ts';
import { PACKAGE_ROOT } from '../shared/paths.ts';
import { JOBS } from '../shared/settings.ts';
import { solidImage } from '../test/helpers/images.ts';
import { BENCH_DIR } from './lib/child.ts';
import {
  LOCAL_END,
  LOCAL_START,
  renderTenMillionTable,
  replaceBlock,
  TABLE_END,
  TABLE_START,
} from './lib/jobs-scale-table.ts';

const { values } = parseArgs({
  options: {
    print: { type: 'boolean' },
    local: { type: 'string' },
    invalid: { type: 'boolean' },
  },
});
const doc = join(BENCH_DIR, 'SCALING-JOBS.md');
const table = renderTenMillionTable();
if (values.print) process.stdout.write(`${table}\n`);
let markdown = await readFile(doc, 'utf8');
markdown = replaceBlock(markdown, TABLE_START, TABLE_END, table);

if (values.local !== undefined) {
  const objects = Number(values.local);
  if (!Number.isInteger(objects) || objects < 1)
    throw new Error(`--local takes a number of objects, got ${values.local}`);
  const measured = await localJob(objects, values.invalid === true);
  process.stdout.write(`${JSON.stringify(measured)}\n`);
  const started = new Date().toISOString().slice(0, 16).replace('T', ' ');
  markdown = replaceBlock(
    markdown,
    LOCAL_START,
    LOCAL_END,
    [
      `Local stack, ${started} UTC, ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), \`node --import tsx bench/jobs-scale.ts --local ${objects}${values.invalid ? ' --invalid' : ''}\`:`,
      '',
      '| objects | bodies | planning s | planner objects/s | job s | images/s | labeled | failed | skipped | cancelled | total | exact |',
      '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      `| ${objects} | ${measured.bodies} | ${measured.planningSeconds.toFixed(1)} | ${Math.round(measured.plannerObjectsPerSecond)} | ${measured.jobSeconds.toFixed(1)} | ${measured.imagesPerSecond.toFixed(1)} | ${measured.labeled} | ${measured.failed} | ${measured.skipped} | ${measured.cancelled} | ${measured.total} | ${measured.exact ? 'yes' : '**no**'} |`,
    ].join('\n'),
  );
}
await writeFile(doc, markdown);
// The repository's formatter pads the tables' columns; the committed file is its output.
spawnSync(
  process.execPath,
  [join(PACKAGE_ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'), 'format', '--write', doc],
  {
    stdio: 'ignore',
  },
);
process.stderr.write(`wrote ${doc}\n`);

async function localJob(objects: number, invalid: boolean) {
  const bucket = 'labeler-images';
  const quiet = { info: () => {}, warn: () => {}, error: () => {} };
  const stack = await startLocalStack({ log: quiet });
  try {
    const pngs = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        solidImage(32, 32, `#${i.toString(16)}0a0b0`)
          .png()
          .toBuffer(),
      ),
    );
    const prefix = `jobs-scale-${Date.now()}/`;
    await mapLimit(
      Array.from({ length: objects }, (_, i) => i),
      32,
      (i) =>
        stack.clients.s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `${prefix}${String(i).padStart(7, '0')}.png`,
            Body: invalid ? `not an image ${i}` : pngs[i % 16],
          }),
        ),
    );
    const t0 = performance.now();
    const job = await stack.jobs.start({ bucket, prefix, target: 'lambda', mode: 'all' });
    let planningSeconds = 0;
    for (;;) {
      const j = await stack.jobs.get(job.jobId);
      if (j?.planningDone && planningSeconds === 0) planningSeconds = (performance.now() - t0) / 1000;
      if (j && (j.status === 'succeeded' || j.status === 'failed' || j.status === 'cancelled')) {
        const jobSeconds = (performance.now() - t0) / 1000;
        const accounted = j.labeled + j.failed + j.skipped + j.cancelled;
        return {
          objects,
          bodies: invalid ? 'not images' : '32x32 PNG',
          status: j.status,
          pageSize: JOBS.pageSize,
          sendConcurrency: JOBS.sendConcurrency,
          planningSeconds,
          plannerObjectsPerSecond: objects / planningSeconds,
          jobSeconds,
          imagesPerSecond: objects / jobSeconds,
          labeled: j.labeled,
          failed: j.failed,
          skipped: j.skipped,
          cancelled: j.cancelled,
          total: j.total,
          exact: j.total === objects && accounted === objects,
        };
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await stack.stop();
  }
}
