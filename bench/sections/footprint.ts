import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { runNodeWorker } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { imageFolder } from '../lib/images.ts';
import type { FootprintData } from '../lib/types.ts';
import type { FootprintResult } from '../workers/footprint.ts';

/** Images per phase: counts, not speed, are measured, so a few batches suffice. */
const IMAGES = 10;

/**
 * What each image uses besides compute (issue 22): DynamoDB units, S3 and SQS requests, log
 * bytes, on the upload path and the job path, from the whole local stack with the real
 * handler and planner (bench/workers/footprint.ts).
 */
export async function footprintSection(ctx: Context): Promise<FootprintData> {
  const { dir } = await imageFolder('medium', IMAGES, (m) => ctx.log(m));
  const files = (await readdir(dir))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => join(dir, f));
  const command =
    `node --import tsx bench/workers/footprint.ts '{"modelDir":"${relative(PACKAGE_ROOT, ctx.b0.dir)}",` +
    `"files":[<the ${files.length} of ${relative(PACKAGE_ROOT, dir)}>]}'`;
  ctx.log(`footprint: ${files.length} images per phase`);
  const result = await runNodeWorker<FootprintResult>(
    'footprint',
    { modelDir: ctx.b0.dir, files },
    {
      timeoutMs: ctx.timeoutMs(900),
    },
  );
  return { command, ...result };
}
