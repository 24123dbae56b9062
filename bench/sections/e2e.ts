import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { errorMessage } from '../../shared/errors.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { gist, runChild, runNodeWorker } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { imageFolder } from '../lib/images.ts';
import type { E2eData, HandlerOverheadData, LocalRunSummary } from '../lib/types.ts';
import type { HandlerOverheadResult } from '../workers/handler-overhead.ts';

const SUMMARY = /(?:^|\s)summary (\{.*\})\s*$/;

/** The last `summary {...}` line the local stack printed on stderr. */
export function parseSummary(stderr: string): LocalRunSummary | undefined {
  let found: LocalRunSummary | undefined;
  for (const line of stderr.split('\n')) {
    const m = SUMMARY.exec(line);
    if (!m?.[1]) continue;
    try {
      const json = JSON.parse(m[1]) as Partial<LocalRunSummary>;
      if (typeof json.imagesPerSecond === 'number' && typeof json.ok === 'number') {
        found = json as LocalRunSummary;
      }
    } catch {
      // not the summary line after all
    }
  }
  return found;
}

/**
 * Medium JPEGs through the whole local stack (S3 -> SQS -> handler -> DynamoDB emulators) with
 * `labeler local run`. When the command is missing or fails, the section says so and the
 * rest of the bench goes on.
 */
export async function e2eSection(ctx: Context): Promise<E2eData> {
  const count = ctx.config.e2eImages;
  const { dir } = await imageFolder('medium', count, (m) => ctx.log(m));
  const bin = join(PACKAGE_ROOT, 'bin', 'labeler.mjs');
  const args = [bin, 'local', 'run', dir, '--model', ctx.b0.dir];
  const command = `node ${args.map((a) => relative(PACKAGE_ROOT, a) || a).join(' ')}`;
  if (!existsSync(bin)) {
    return { available: false, command, images: count, note: 'not available: bin/labeler.mjs is missing' };
  }
  ctx.log(`end to end: ${command}`);
  const outcome = await runChild(process.execPath, args, {
    timeoutMs: ctx.timeoutMs(ctx.config.e2eTimeoutSeconds),
  });
  const summary = parseSummary(outcome.stderr);
  if (outcome.code !== 0 || !summary) {
    const why = outcome.timedOut
      ? `timed out after ${(outcome.wallMs / 1000).toFixed(0)} s`
      : outcome.code !== 0
        ? `exited with ${outcome.code ?? outcome.signal}`
        : 'printed no `summary {...}` line on stderr';
    const note = `not available: \`labeler local run\` ${why}: ${gist(outcome.stderr || outcome.stdout)}`;
    ctx.log(`end to end: ${note}`);
    return { available: false, command, images: count, note };
  }
  ctx.log(
    `end to end: ${summary.ok}/${summary.files} ok, ${summary.imagesPerSecond.toFixed(1)} images/s, ` +
      `${summary.wallSeconds.toFixed(1)} s wall`,
  );
  return {
    available: true,
    command,
    images: count,
    summary,
    parentWallSeconds: outcome.wallMs / 1000,
    handlerOverhead: await handlerOverhead(ctx, dir),
  };
}

/** The handler's CPU per image against the in-process pipeline's, both in one process (decision 0021). */
async function handlerOverhead(ctx: Context, dir: string): Promise<HandlerOverheadData> {
  const { images, rounds, timeoutSeconds } = ctx.config.handlerOverhead;
  const files = (await readdir(dir))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, images)
    .map((f) => join(dir, f));
  const args = { modelDir: ctx.b0.dir, files, rounds };
  const command =
    `node --import tsx bench/workers/handler-overhead.ts '{"modelDir":"${relative(PACKAGE_ROOT, ctx.b0.dir)}",` +
    `"rounds":${rounds},"files":[<the first ${files.length} of ${relative(PACKAGE_ROOT, dir)}>]}'`;
  ctx.log(`handler overhead: ${files.length} images, ${rounds} rounds per path`);
  try {
    const result = await runNodeWorker<HandlerOverheadResult>('handler-overhead', args, {
      timeoutMs: ctx.timeoutMs(timeoutSeconds),
    });
    return {
      command,
      images: result.images,
      rounds: result.rounds,
      cpuMsPerImage: result.cpuMsPerImage,
      cpuMsByThread: result.cpuMsByThread,
    };
  } catch (error) {
    const note = `not available: ${gist(errorMessage(error))}`;
    ctx.log(`handler overhead: ${note}`);
    return { command, images: files.length, rounds, note };
  }
}
