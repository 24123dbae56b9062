import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { errorMessage } from '../../shared/errors.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { BENCH_DIR, CACHE_DIR, parseResult, runChild, runNodeWorker } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { ensureImages } from '../lib/images.ts';
import { median } from '../lib/stats.ts';
import type { ColdStartData, ColdStartRow, HandlerInitRow } from '../lib/types.ts';
import type { ColdStartArgs, ColdStartResult } from '../workers/cold-start.ts';
import type { HandlerInitResult } from '../workers/handler-init.ts';

const HANDLER = join(PACKAGE_ROOT, 'functions', 'classify', 'handler.ts');
const BUNDLE = join(CACHE_DIR, 'cold-start.bundle.mjs');

const now = () => performance.timeOrigin + performance.now();

interface EsbuildLike {
  build(options: Record<string, unknown>): Promise<unknown>;
}

/**
 * Bundles the cold-start worker to one plain .mjs with esbuild (tsx's own dependency), the
 * way a deployed function runs: no TypeScript loader in the path. Undefined if esbuild is absent.
 */
async function bundleWorker(): Promise<string | undefined> {
  try {
    const name = 'esbuild';
    const esbuild = (await import(name)) as EsbuildLike;
    await esbuild.build({
      entryPoints: [join(BENCH_DIR, 'workers', 'cold-start.ts')],
      outfile: BUNDLE,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'silent',
    });
    return BUNDLE;
  } catch {
    return undefined;
  }
}

const HANDLER_BUNDLE = join(CACHE_DIR, 'handler', 'classify.mjs');

/** Bundles the classify handler the way functions/Dockerfile does (esbuild, native modules external). */
async function bundleHandler(): Promise<string | undefined> {
  try {
    const name = 'esbuild';
    const esbuild = (await import(name)) as EsbuildLike;
    await esbuild.build({
      entryPoints: [HANDLER],
      outfile: HANDLER_BUNDLE,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['onnxruntime-node', 'sharp'],
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      },
      logLevel: 'silent',
    });
    return HANDLER_BUNDLE;
  } catch {
    return undefined;
  }
}

/** Plain Node (no TypeScript loader): import the module given as argv[1] and report the times. */
const IMPORT_SCRIPT = `
const importStart = performance.timeOrigin + performance.now();
const mod = await import(process.argv[1]);
const imported = performance.timeOrigin + performance.now();
console.log('RESULT ' + JSON.stringify({ processStart: performance.timeOrigin, importStart, imported, exports: Object.keys(mod).sort() }));
`;

async function coldStartRuns(
  ctx: Context,
  name: string,
  args: ColdStartArgs,
  bundle: string | undefined,
  note?: string,
): Promise<ColdStartRow> {
  const imports: number[] = [];
  const loaded: number[] = [];
  const first: number[] = [];
  for (let i = 0; i < ctx.config.coldStartRuns; i++) {
    const spawnedAt = now();
    const timeoutMs = ctx.timeoutMs(60);
    const r = bundle
      ? parseResult<ColdStartResult>(
          name,
          await runChild(process.execPath, [bundle, JSON.stringify(args)], { timeoutMs }),
        )
      : await runNodeWorker<ColdStartResult>('cold-start', args, { timeoutMs });
    imports.push(r.importsDone - spawnedAt);
    loaded.push(r.modelLoaded - spawnedAt);
    first.push(r.firstLabel - spawnedAt);
  }
  const row: ColdStartRow = {
    name,
    runs: first.length,
    importsMs: median(imports),
    modelLoadedMs: median(loaded),
    firstLabelMs: median(first),
    allFirstLabelMs: first,
    ...(note ? { note } : {}),
  };
  ctx.log(`cold start ${name}: first label ${row.firstLabelMs.toFixed(0)} ms (median of ${row.runs})`);
  return row;
}

/** Process start -> model loaded -> first label in fresh processes, and the handler's import time. */
export async function coldStartSection(ctx: Context): Promise<ColdStartData> {
  const [image] = await ensureImages('small', 1, (m) => ctx.log(m));
  const bundle = await bundleWorker();
  const models: Array<{ name: string; dir: string | undefined }> = [
    {
      name: 'bundled model (models/fashion-efficientnet)',
      dir: existsSync(join(DEFAULT_MODEL_DIR, 'manifest.json')) ? DEFAULT_MODEL_DIR : undefined,
    },
    { name: 'EfficientNet-B0', dir: ctx.b0.dir },
  ];
  const rows: ColdStartRow[] = [];
  for (const model of models) {
    const variants: Array<{ how: string; bundle: string | undefined; note?: string }> = [
      { how: 'node --import tsx', bundle: undefined, note: 'TypeScript compiled on the fly by tsx' },
    ];
    if (bundle)
      variants.push({ how: 'esbuild bundle', bundle, note: 'plain JS, as a deployed function runs' });
    for (const variant of variants) {
      const name = `${model.name}, ${variant.how}`;
      if (!model.dir) {
        rows.push(emptyRow(name, 'not available: models/fashion-efficientnet has no manifest.json yet'));
        continue;
      }
      try {
        rows.push(
          await coldStartRuns(
            ctx,
            name,
            { modelDir: model.dir, image: image as string },
            variant.bundle,
            variant.note,
          ),
        );
      } catch (error) {
        ctx.log(`cold start ${name} failed: ${errorMessage(error)}`);
        rows.push(emptyRow(name, undefined, errorMessage(error)));
      }
    }
  }

  const path = 'functions/classify/handler.ts';
  if (!existsSync(HANDLER)) {
    return {
      rows,
      handler: { available: false, path, note: `not available: ${path} does not exist yet`, runs: [] },
    };
  }
  // The handler loads its model during INIT (module scope): measure it with each model,
  // through tsx and bundled as functions/Dockerfile bundles it.
  const handlerBundle = await bundleHandler();
  const hows: Array<{ how: string; bundle: string | undefined }> = [
    { how: 'node --import tsx', bundle: undefined },
  ];
  if (handlerBundle) hows.push({ how: 'esbuild bundle', bundle: handlerBundle });
  const runs: HandlerInitRow[] = [];
  const notes: string[] = [];
  for (const model of models) {
    if (!model.dir) continue;
    for (const { how, bundle: handlerFile } of hows) {
      const label = `${model.name}, ${how}`;
      try {
        const importMs: number[] = [];
        const total: number[] = [];
        for (let i = 0; i < ctx.config.coldStartRuns; i++) {
          // Placeholder names and keys: the init must not need real AWS access.
          const env = {
            MODEL_DIR: model.dir,
            RESULTS_TABLE: 'bench-results',
            RESULTS_BUCKET: 'bench-results',
            AWS_REGION: 'us-east-1',
            AWS_ACCESS_KEY_ID: 'bench',
            AWS_SECRET_ACCESS_KEY: 'bench',
          };
          const timeoutMs = ctx.timeoutMs(60);
          const spawnedAt = now();
          const r = handlerFile
            ? parseResult<HandlerInitResult>(
                label,
                await runChild(
                  process.execPath,
                  ['--input-type=module', '-e', IMPORT_SCRIPT, pathToFileURL(handlerFile).href],
                  { timeoutMs, env },
                ),
              )
            : await runNodeWorker<HandlerInitResult>(
                'handler-init',
                { handlerPath: HANDLER },
                { timeoutMs, env },
              );
          importMs.push(r.imported - r.importStart);
          total.push(r.imported - spawnedAt);
        }
        const row = {
          model: label,
          runs: importMs.length,
          importMs: median(importMs),
          spawnToImportedMs: median(total),
        };
        runs.push(row);
        ctx.log(
          `handler init, ${label}: import ${row.importMs.toFixed(0)} ms, spawn to ready ${row.spawnToImportedMs.toFixed(0)} ms`,
        );
      } catch (error) {
        notes.push(`${label}: import failed: ${errorMessage(error)}`);
        ctx.log(`handler init, ${label} failed: ${errorMessage(error)}`);
      }
    }
  }
  return {
    rows,
    handler: {
      available: runs.length > 0,
      path,
      runs,
      note:
        notes.length > 0
          ? `not available: ${notes.join('; ')}`
          : 'MODEL_DIR set per row, placeholder table and bucket names; the bundle is built like functions/Dockerfile builds it',
    },
  };
}

function emptyRow(name: string, note?: string, error?: string): ColdStartRow {
  return {
    name,
    runs: 0,
    importsMs: Number.NaN,
    modelLoadedMs: Number.NaN,
    firstLabelMs: Number.NaN,
    allFirstLabelMs: [],
    ...(note ? { note } : {}),
    ...(error ? { error } : {}),
  };
}
