// `npm run bench`: measures inference, preprocessing, the pipeline end to end, peers, the
// hardware limit, cold start and cost on this machine and writes bench/RESULTS.md and
// bench/results.json. It first checks that the machine has what the selected sections need
// (exit 3 and one line naming the packages when not). Each measurement runs in a fresh child
// process; a section that fails records its error and the rest still runs, but the run then
// exits 1 and leaves the committed results as they were (its own go to bench/.cache/failed-run/).
//
//   npm run bench                      the full run (<= 10 minutes on 2 cores)
//   npm run bench -- --quick           tiny counts for development (< 1 minute), written to bench/.cache/quick/
//   npm run bench -- --only inference  re-measure some sections (comma-separated), merged into the results
//   npm run bench -- --out-dir <dir>   read and write the results there instead
process.env.ORT_DISABLE_TELEMETRY = '1';

import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { errorMessage } from '../shared/errors.ts';
import { PACKAGE_ROOT } from '../shared/paths.ts';
import { BENCH_DIR, CACHE_DIR, runChild } from './lib/child.ts';
import { Context, FULL, QUICK, SkipSection } from './lib/context.ts';
import { keptSections } from './lib/kept-sections.ts';
import { currentB0Stamp, ensureB0 } from './lib/model.ts';
import { sectionProblems } from './lib/outcome.ts';
import { describeMissing, missingPrerequisites } from './lib/prerequisites.ts';
import { renderMarkdown } from './lib/report.ts';
import { machineInfo } from './lib/system.ts';
import { evaluateTargets } from './lib/targets.ts';
import {
  type Results,
  SECTION_NAMES,
  type SectionData,
  type SectionName,
  type SectionRecord,
} from './lib/types.ts';
import { classifierSection } from './sections/classifier.ts';
import { coldStartSection } from './sections/coldstart.ts';
import { costSection } from './sections/cost.ts';
import { decodeSection } from './sections/decode.ts';
import { e2eSection } from './sections/e2e.ts';
import { fmaSection } from './sections/fma.ts';
import { footprintSection } from './sections/footprint.ts';
import { inferenceSection } from './sections/inference.ts';
import { int8Section } from './sections/int8.ts';
import { peersSection } from './sections/peers.ts';
import { pipelineSection } from './sections/pipeline.ts';
import { preprocessSection } from './sections/preprocess.ts';
import { scalingSection } from './sections/scaling.ts';

const SECTIONS: { [K in SectionName]: (ctx: Context) => Promise<SectionData[K]> } = {
  fma: fmaSection,
  inference: inferenceSection,
  preprocess: preprocessSection,
  decode: decodeSection,
  pipeline: pipelineSection,
  e2e: e2eSection,
  peers: peersSection,
  coldstart: coldStartSection,
  cost: costSection,
  classifier: classifierSection,
  scaling: scalingSection,
  int8: int8Section,
  footprint: footprintSection,
};
/** Sections that need no B0 export. */
const WITHOUT_MODEL: readonly SectionName[] = ['fma', 'cost', 'scaling'];
/** The sections cost is derived from: re-measuring one of them recomputes cost. */
const COST_INPUTS: readonly SectionName[] = ['inference', 'preprocess', 'pipeline'];

const EXIT = { ok: 0, sectionFailed: 1, usage: 2, prerequisites: 3 } as const;

const HELP = `Usage: npm run bench -- [--quick] [--only <sections>] [--out-dir <dir>]

  --quick            tiny counts (< 1 minute); writes bench/.cache/quick/RESULTS.md, never bench/RESULTS.md
  --only <list>      comma-separated sections to (re)measure, merged into the existing results:
                     ${SECTION_NAMES.join(', ')}
  --out-dir <dir>    read and write results.json and RESULTS.md in <dir> instead

Exit status: 0 when every selected section measured; 1 when one failed (the results in the
output folder are left as they were; this run's go to <out>/failed-run/, or
bench/.cache/failed-run/ for bench/ itself); 2 for a usage error; 3 when the machine lacks a
prerequisite (one line names it and the packages to install). BENCH_PYTHON overrides
/usr/bin/python3.`;

interface Options {
  readonly quick: boolean;
  readonly only: SectionName[] | undefined;
  readonly outDir: string | undefined;
}

function parseArgs(argv: readonly string[]): Options {
  let quick = false;
  let only: SectionName[] | undefined;
  let outDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--out-dir' || arg?.startsWith('--out-dir=')) {
      const value = arg === '--out-dir' ? argv[++i] : arg.slice('--out-dir='.length);
      if (!value) throw new Error(`--out-dir takes a folder\n\n${HELP}`);
      outDir = resolve(value);
    } else if (arg === '--only' || arg?.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      const names = (value ?? '').split(',').filter(Boolean);
      const unknown = names.filter((x) => !(SECTION_NAMES as readonly string[]).includes(x));
      if (names.length === 0 || unknown.length > 0) {
        throw new Error(`--only takes ${SECTION_NAMES.join(', ')}; got "${value ?? ''}"`);
      }
      only = names as SectionName[];
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${arg}\n\n${HELP}`);
  }
  return { quick, only, outDir };
}

function commandLine(argv: readonly string[]): string {
  const rest = argv.length > 0 ? ` -- ${argv.join(' ')}` : '';
  return process.env.npm_lifecycle_event === 'bench'
    ? `npm run bench${rest}`
    : `node --import tsx bench/run.ts${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;
}

/** The committed results must pass `biome ci .` (it formats JSON and Markdown): let biome lay them out. */
async function formatWithBiome(ctx: Context, paths: readonly string[]): Promise<boolean> {
  const biome = join(PACKAGE_ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  const outcome = await runChild(process.execPath, [biome, 'format', '--write', ...paths], {
    timeoutMs: 60_000,
  }).catch((error: unknown) => ({ code: 1, stderr: errorMessage(error) }));
  if (outcome.code !== 0) ctx.log(`could not format the results with biome: ${outcome.stderr}`);
  return outcome.code === 0;
}

/**
 * Writes results.json and RESULTS.md next to their final names, formats them, then renames
 * them over the old ones: an interrupted run never leaves half-written results behind.
 */
async function publish(ctx: Context, results: Results, jsonPath: string, mdPath: string): Promise<boolean> {
  // The staged names keep their extensions so biome knows how to format them.
  const stagedJson = jsonPath.replace(/\.json$/, '.next.json');
  const stagedMd = mdPath.replace(/\.md$/, '.next.md');
  try {
    await writeFile(stagedJson, `${JSON.stringify(results, null, 2)}\n`);
    const previous = existsSync(mdPath) ? await readFile(mdPath, 'utf8') : '';
    await writeFile(stagedMd, `${renderMarkdown(results).trimEnd()}\n${keptSections(previous)}`);
    // Only results inside the repository are committed and checked by `biome ci .`; biome
    // refuses paths outside its root (an --out-dir in /tmp), so those stay as written.
    const committable = !relative(PACKAGE_ROOT, jsonPath).startsWith('..');
    if (!results.quick && committable && !(await formatWithBiome(ctx, [stagedJson, stagedMd]))) return false;
    await rename(stagedJson, jsonPath);
    await rename(stagedMd, mdPath);
    return true;
  } finally {
    await rm(stagedJson, { force: true });
    await rm(stagedMd, { force: true });
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`bench: ${errorMessage(error)}\n`);
    return EXIT.usage;
  }
  const { quick, only } = options;
  const config = quick ? QUICK : FULL;
  const outDir = options.outDir ?? (quick ? join(CACHE_DIR, 'quick') : BENCH_DIR);
  const failedDir = join(outDir === BENCH_DIR ? CACHE_DIR : outDir, 'failed-run');
  const jsonPath = join(outDir, 'results.json');
  const mdPath = join(outDir, 'RESULTS.md');

  const wanted = SECTION_NAMES.filter(
    (s) => !only || only.includes(s) || (s === 'cost' && only.some((o) => COST_INPUTS.includes(o))),
  );
  const needsB0 = wanted.some((s) => !WITHOUT_MODEL.includes(s));
  const missing = await missingPrerequisites(wanted, needsB0 && !(await currentB0Stamp()));
  if (missing.length > 0) {
    process.stderr.write(`bench: ${describeMissing(missing)}\n`);
    return EXIT.prerequisites;
  }

  await mkdir(outDir, { recursive: true });
  const previous =
    only && existsSync(jsonPath) ? (JSON.parse(await readFile(jsonPath, 'utf8')) as Results) : undefined;
  const machine = machineInfo();
  const ctx = new Context(config, machine, previous);
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  ctx.log(
    `${quick ? 'quick ' : ''}run on ${machine.cpuModel}, ${machine.availableParallelism} cores, ` +
      `load ${machine.loadAverageAtStart.join(' ')}; Node ${machine.versions.node}, ` +
      `onnxruntime-node ${machine.versions.onnxruntimeNode}, sharp ${machine.versions.sharp}`,
  );

  let model = previous?.model;
  let modelError: string | undefined;
  if (needsB0) {
    try {
      model = await ensureB0((m) => ctx.log(m));
      ctx.log(
        `B0 ${model.cached ? 'from cache' : `exported in ${model.exportSeconds?.toFixed(1)} s`}: ` +
          `${(model.macs / 1e9).toFixed(3)} GMAC per image, ${relative(PACKAGE_ROOT, model.dir)}`,
      );
    } catch (error) {
      modelError = errorMessage(error);
      ctx.log(`B0 export failed: ${modelError}`);
    }
  }
  ctx.setB0(model, modelError);

  const sections: Results['sections'] = { ...(previous?.sections ?? {}) };
  for (const name of wanted) {
    const started = performance.now();
    const base = { date, quick, seconds: 0 };
    ctx.log(`── ${name}`);
    let record: SectionRecord;
    try {
      const data = await SECTIONS[name](ctx);
      (ctx.current as Record<string, unknown>)[name] = data;
      record = { ...base, status: 'ok', data, seconds: (performance.now() - started) / 1000 };
    } catch (error) {
      const skipped = error instanceof SkipSection;
      ctx.log(`${name} ${skipped ? 'skipped' : 'failed'}: ${errorMessage(error)}`);
      record = {
        ...base,
        status: skipped ? 'skipped' : 'failed',
        error: errorMessage(error),
        seconds: (performance.now() - started) / 1000,
      };
    }
    (sections as Record<string, SectionRecord>)[name] = record;
  }

  const results: Results = {
    command: commandLine(argv),
    date,
    quick,
    wallSeconds: (performance.now() - ctx.startedAt) / 1000,
    machine,
    ...(model ? { model } : {}),
    ...(modelError ? { modelError } : {}),
    sections,
    targets: evaluateTargets(ctx),
  };
  for (const t of results.targets) ctx.log(`target ${t.name}: ${t.measured} -> ${t.verdict}`);
  const problems = wanted.flatMap((s) => sectionProblems(s, sections[s]).map((p) => `${s}: ${p}`));
  if (problems.length === 0 && (await publish(ctx, results, jsonPath, mdPath))) {
    ctx.log(`wrote ${shown(mdPath)} and ${shown(jsonPath)}`);
    return EXIT.ok;
  }
  // A failed run never replaces results: keep it aside for a look.
  await mkdir(failedDir, { recursive: true });
  await writeFile(join(failedDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(failedDir, 'RESULTS.md'), renderMarkdown(results));
  for (const p of problems) ctx.log(`failed: ${p}`);
  ctx.log(
    `${shown(mdPath)} and ${shown(jsonPath)} left as they were; this run's results are in ${shown(failedDir)}/`,
  );
  return EXIT.sectionFailed;
}

/** A path as the user would type it from the repository root. */
function shown(path: string): string {
  const rel = relative(PACKAGE_ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`bench: ${errorMessage(error)}\n`);
  process.exitCode = EXIT.sectionFailed;
}
