import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { BENCH_DIR, CACHE_DIR, parseExportOutput, runChild, SYSTEM_PYTHON, tail } from './child.ts';

export const B0_DIR = join(CACHE_DIR, 'b0');
const EXPORT_SCRIPT = join(BENCH_DIR, 'export_b0.py');
const STAMP = join(B0_DIR, 'export-stamp.json');

export interface B0Info {
  readonly dir: string;
  readonly stateDict: string;
  readonly macs: number;
  readonly flops: number;
  readonly flopsSource: string;
  readonly params: number;
  readonly sha256: string;
  readonly torch: string;
  readonly torchvision: string;
  readonly exportSeconds: number | null;
  readonly cached: boolean;
}

interface Stamp {
  scriptSha256: string;
  torch: string;
  torchvision: string;
  seconds: number;
}

async function exportScriptSha256(): Promise<string> {
  return createHash('sha256')
    .update(await readFile(EXPORT_SCRIPT))
    .digest('hex');
}

/** The stamp of an export from the current script that still passes loadModelBundle's checksum. */
export async function currentB0Stamp(): Promise<Stamp | undefined> {
  if (!existsSync(STAMP)) return undefined;
  try {
    const old = JSON.parse(await readFile(STAMP, 'utf8')) as Stamp;
    if (old.scriptSha256 !== (await exportScriptSha256())) return undefined;
    await loadModelBundle(B0_DIR);
    return old;
  } catch {
    // stale or damaged: export again
    return undefined;
  }
}

/**
 * Exports EfficientNet-B0 into bench/.cache/b0 with Debian's python3 unless an export from
 * the same script is already there and still passes loadModelBundle's checksum.
 */
export async function ensureB0(progress: (m: string) => void): Promise<B0Info> {
  const scriptSha256 = await exportScriptSha256();
  let stamp = await currentB0Stamp();
  const cached = stamp !== undefined;
  if (!stamp) {
    progress(`exporting EfficientNet-B0 with ${SYSTEM_PYTHON} bench/export_b0.py (random weights)`);
    await rm(STAMP, { force: true });
    const outcome = await runChild(SYSTEM_PYTHON, [EXPORT_SCRIPT, B0_DIR], { timeoutMs: 180_000 });
    if (outcome.code !== 0) {
      throw new Error(`bench/export_b0.py failed (${outcome.code}): ${tail(outcome.stderr, 800)}`);
    }
    const out = parseExportOutput(outcome.stdout);
    stamp = { scriptSha256, torch: out.torch, torchvision: out.torchvision, seconds: out.seconds };
    await writeFile(STAMP, `${JSON.stringify(stamp, null, 2)}\n`);
  }
  const bundle = await loadModelBundle(B0_DIR);
  const flops = JSON.parse(await readFile(join(B0_DIR, 'flops.json'), 'utf8')) as {
    macs: number;
    flops: number;
    params: number;
    source: string;
  };
  return {
    dir: B0_DIR,
    stateDict: join(B0_DIR, 'state_dict.pt'),
    macs: flops.macs,
    flops: flops.flops,
    flopsSource: flops.source,
    params: flops.params,
    sha256: bundle.manifest.sha256,
    torch: stamp.torch,
    torchvision: stamp.torchvision,
    exportSeconds: cached ? null : stamp.seconds,
    cached,
  };
}
