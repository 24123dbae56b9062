import { join } from 'node:path';
import { errorMessage } from '../../shared/errors.ts';
import { BENCH_DIR, gist, parseJsonLine, runChild, runNodeWorker, SYSTEM_PYTHON } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { ensureImages, IMAGE_KINDS, photoPaths } from '../lib/images.ts';
import type { DecodeData, DecodeRow } from '../lib/types.ts';
import type { DecodeCompareArgs, DecodeCompareResult, DecodePath } from '../workers/decode-compare.ts';

const PARTS: readonly DecodePath[] = [
  'header',
  'headerLibvips',
  'fullDecode',
  'fullDecodeWithProfile',
  'decodeResize',
  'tensorFill',
];

/** Goals (issue 25): preprocessing CPU per image over PIL's full decode of the same file. */
export const DECODE_GOALS = { photos: 1.5, medium: 1.3 } as const;
const CORE = '0';

interface PilResult {
  readonly pil: string;
  readonly fullCpuMs: number;
  readonly draftCpuMs: number;
}

/**
 * preprocessInto against libjpeg-turbo as torchvision's reference decode uses it (PIL's
 * convert('RGB')), both pinned to the same core in the same run, PIL before and after ours so
 * a change in the machine's load lands on both; preprocessInto in a process of its own, then the
 * previous preprocessInto and preprocessInto's parts taking turns in another. CPU time, not
 * wall: what Lambda bills per core; the median pass over the files.
 */
export async function decodeSection(ctx: Context): Promise<DecodeData> {
  const cfg = ctx.config.decode;
  const sets: Array<{ name: string; files: string[]; goal: number }> = [];
  const photos = await photoPaths();
  if (photos.length > 0) {
    sets.push({
      name: `real photos (${photos.length}, 0.5-0.8 MP)`,
      files: photos,
      goal: DECODE_GOALS.photos,
    });
  }
  const medium = await ensureImages('medium', cfg.mediumFiles, (m) => ctx.log(m));
  sets.push({ name: IMAGE_KINDS.medium.label, files: medium, goal: DECODE_GOALS.medium });

  let pilVersion = '';
  const rows: DecodeRow[] = [];
  const pil = async (files: readonly string[]): Promise<PilResult> => {
    const args = { files, seconds: cfg.seconds, minPasses: cfg.minPasses };
    const outcome = await runChild(
      'taskset',
      ['-c', CORE, SYSTEM_PYTHON, join(BENCH_DIR, 'peers', 'pil_decode.py'), JSON.stringify(args)],
      { timeoutMs: ctx.timeoutMs(2 * cfg.seconds + 60) },
    );
    if (outcome.code !== 0)
      throw new Error(`PIL decode exited with ${outcome.code}: ${gist(outcome.stderr)}`);
    return parseJsonLine<PilResult>(outcome.stdout);
  };
  for (const set of sets) {
    try {
      const before = await pil(set.files);
      const node = (paths: readonly DecodePath[]) => {
        const args: DecodeCompareArgs = {
          modelDir: ctx.b0.dir,
          files: set.files,
          seconds: cfg.seconds,
          minPasses: cfg.minPasses,
          paths,
        };
        return runNodeWorker<DecodeCompareResult>('decode-compare', args, {
          timeoutMs: ctx.timeoutMs(cfg.seconds * 2 + 60),
          cpus: CORE,
        });
      };
      // preprocessInto alone in its process, as the labeler runs it: taking turns with the
      // lcms paths moved its figure by up to 40 % between runs (allocator and cache state).
      const ours = await node(['preprocess']);
      const others = await node(['previous', ...PARTS]);
      const after = await pil(set.files);
      pilVersion = after.pil;
      const pilCpuMs = (before.fullCpuMs + after.fullCpuMs) / 2;
      const preprocess = ours.cpuMsPerImage.preprocess ?? 0;
      const { previous = 0, ...parts } = others.cpuMsPerImage;
      const row: DecodeRow = {
        set: set.name,
        files: set.files.length,
        megapixels: ours.megapixels,
        preprocessCpuMs: preprocess,
        previousCpuMs: previous,
        pilCpuMs,
        pilDraftCpuMs: (before.draftCpuMs + after.draftCpuMs) / 2,
        ratio: preprocess / pilCpuMs,
        goal: set.goal,
        parts,
      };
      rows.push(row);
      ctx.log(
        `decode ${set.name}: preprocessInto ${preprocess.toFixed(2)} CPU-ms (previous ${previous.toFixed(2)}), ` +
          `PIL ${pilCpuMs.toFixed(2)} (${before.fullCpuMs.toFixed(2)} / ${after.fullCpuMs.toFixed(2)}) = ${row.ratio.toFixed(2)}x`,
      );
    } catch (error) {
      ctx.log(`decode ${set.name} failed: ${errorMessage(error)}`);
      rows.push({
        set: set.name,
        files: set.files.length,
        megapixels: 0,
        preprocessCpuMs: 0,
        previousCpuMs: 0,
        pilCpuMs: 0,
        pilDraftCpuMs: 0,
        ratio: 0,
        goal: set.goal,
        parts: {},
        error: errorMessage(error),
      });
    }
  }
  return { core: CORE, pil: pilVersion, rows };
}
