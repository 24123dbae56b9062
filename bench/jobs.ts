// Planning rate and job throughput of labeling jobs on the local stack (decision 0014).
// Usage: node --import tsx bench/jobs.ts [objects=5000] [images=300]

import { performance } from 'node:perf_hooks';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../local/stack.ts';
import { mapLimit } from '../shared/labeling/image-labeler.ts';
import type { JobTarget } from '../shared/labeling/jobs.ts';
import { solidImage } from '../test/helpers/images.ts';

const objects = Number(process.argv[2] ?? 5000);
const images = Number(process.argv[3] ?? 300);
const bucket = 'labeler-images';
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const stack = await startLocalStack({ log: quiet, gpuWorker: true });
try {
  await mapLimit(
    Array.from({ length: objects }, (_, i) => i),
    16,
    (i) => stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `plan/${i}.bin`, Body: 'x' })),
  );
  const until = async (jobId: string, done: (j: { planningDone: boolean; status: string }) => boolean) => {
    for (;;) {
      const job = await stack.jobs.get(jobId);
      if (job && done(job)) return job;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // Planning alone: the objects are not images, the target queue is drained by nobody we time.
  let t = performance.now();
  const planned = await stack.jobs.start({ bucket, prefix: 'plan/', target: 'gpu', mode: 'all' });
  await until(planned.jobId, (j) => j.planningDone);
  const planS = (performance.now() - t) / 1000;
  console.log(
    JSON.stringify({ measure: 'planning', objects, seconds: planS, objectsPerSecond: objects / planS }),
  );
  await stack.jobs.cancel(planned.jobId);

  const pngs = await Promise.all(
    Array.from({ length: 16 }, (_, i) =>
      solidImage(224, 224, `#${i.toString(16)}0a0b0`)
        .png()
        .toBuffer(),
    ),
  );
  for (const target of ['lambda', 'gpu'] as JobTarget[]) {
    await mapLimit(
      Array.from({ length: images }, (_, i) => i),
      16,
      (i) =>
        stack.clients.s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: `label-${target}/${i}.png`, Body: pngs[i % 16] }),
        ),
    );
    t = performance.now();
    const job = await stack.jobs.start({ bucket, prefix: `label-${target}/`, target, mode: 'all' });
    const done = await until(job.jobId, (j) => j.status === 'succeeded' || j.status === 'failed');
    const s = (performance.now() - t) / 1000;
    console.log(
      JSON.stringify({
        measure: 'job',
        target,
        images,
        status: done.status,
        seconds: s,
        imagesPerSecond: images / s,
      }),
    );
  }
} finally {
  await stack.stop();
}
