// `npm run bench`: measures inference, preprocessing, the pipeline end to end, peers, the
// hardware limit, cold start and cost on this machine and writes bench/RESULTS.md and
// bench/results.json. Each measurement runs in a fresh child process; a section that
// fails records its error and the rest still runs.
//
//   npm run bench                      the full run (<= 10 minutes on 2 cores)
//   npm run bench -- --quick           tiny counts for development (< 1 minute), written to bench/.cache/quick/
//   npm run bench -- --only inference  re-measure some sections (comma-separated), merged into the results
process.env.ORT_DISABLE_TELEMETRY = '1';

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { errorMessage } from '../shared/errors.ts';
import { PACKAGE_ROOT } from '../shared/paths.ts';
import { BENCH_DIR, CACHE_DIR, runChild } from './lib/child.ts';
import { Context, FULL, QUICK, SkipSection } from './lib/context.ts';
import { ensureB0 } from './lib/model.ts';
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
import { coldStartSection } from './sections/coldstart.ts';
import { costSection } from './sections/cost.ts';
import { e2eSection } from './sections/e2e.ts';
import { fmaSection } from './sections/fma.ts';
import { inferenceSection } from './sections/inference.ts';
import { peersSection } from './sections/peers.ts';
import { pipelineSection } from './sections/pipeline.ts';
import { preprocessSection } from './sections/preprocess.ts';

const SECTIONS: { [K in SectionName]: (ctx: Context) => Promise<SectionData[K]> } = {
  fma: fmaSection,
  inference: inferenceSection,
  preprocess: preprocessSection,
  pipeline: pipelineSection,
  e2e: e2eSection,
  peers: peersSection,
  coldstart: coldStartSection,
  cost: costSection,
};
/** Sections that need no B0 export. */
const WITHOUT_MODEL: readonly SectionName[] = ['fma', 'cost'];

const HELP = `Usage: npm run bench -- [--quick] [--only <sections>]

  --quick            tiny counts (< 1 minute); writes bench/.cache/quick/RESULTS.md, never bench/RESULTS.md
  --only <list>      comma-separated sections to (re)measure, merged into the existing results:
                     ${SECTION_NAMES.join(', ')}`;

function parseArgs(argv: readonly string[]): { quick: boolean; only: SectionName[] | undefined } {
  let quick = false;
  let only: SectionName[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--only' || arg?.startsWith('--only=')) {
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
  return { quick, only };
}

function commandLine(argv: readonly string[]): string {
  const rest = argv.length > 0 ? ` -- ${argv.join(' ')}` : '';
  return process.env.npm_lifecycle_event === 'bench'
    ? `npm run bench${rest}`
    : `node --import tsx bench/run.ts${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;
}

/** The committed results must pass `biome ci .` (it formats JSON and Markdown): let biome lay them out. */
async function formatWithBiome(ctx: Context, paths: readonly string[]): Promise<void> {
  const biome = join(PACKAGE_ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  const outcome = await runChild(process.execPath, [biome, 'format', '--write', ...paths], {
    timeoutMs: 60_000,
  }).catch((error: unknown) => ({ code: 1, stderr: errorMessage(error) }));
  if (outcome.code !== 0) ctx.log(`could not format the results with biome: ${outcome.stderr}`);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { quick, only } = parseArgs(argv);
  const config = quick ? QUICK : FULL;
  const outDir = quick ? join(CACHE_DIR, 'quick') : BENCH_DIR;
  const jsonPath = join(outDir, 'results.json');
  const mdPath = join(outDir, 'RESULTS.md');
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

  // Cost is derived from the others: recompute it whenever anything ran.
  const wanted = SECTION_NAMES.filter((s) => !only || only.includes(s) || s === 'cost');
  let model = previous?.model;
  let modelError: string | undefined;
  if (wanted.some((s) => !WITHOUT_MODEL.includes(s))) {
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
  await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(mdPath, renderMarkdown(results));
  if (!quick) await formatWithBiome(ctx, [jsonPath, mdPath]);
  ctx.log(`wrote ${relative(PACKAGE_ROOT, mdPath)} and ${relative(PACKAGE_ROOT, jsonPath)}`);
  for (const t of results.targets) ctx.log(`target ${t.name}: ${t.measured} -> ${t.verdict}`);
  const failed = wanted.filter((s) => sections[s]?.status !== 'ok');
  if (failed.length > 0) ctx.log(`sections without results: ${failed.join(', ')}`);
  return 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`bench: ${errorMessage(error)}\n`);
  process.exitCode = 2;
}
