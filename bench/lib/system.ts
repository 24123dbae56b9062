import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { PACKAGE_ROOT } from '../../shared/paths.ts';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly logicalCpus: number;
  readonly availableParallelism: number;
  readonly vectorIsa: string;
  readonly hypervisor: boolean;
  readonly memoryGb: number;
  readonly kernel: string;
  readonly loadAverageAtStart: readonly number[];
  readonly versions: {
    readonly node: string;
    readonly onnxruntimeNode: string;
    readonly sharp: string;
    readonly libvips: string;
  };
}

function packageVersion(name: string): string {
  try {
    const json = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'node_modules', name, 'package.json'), 'utf8'));
    return String(json.version);
  } catch {
    return 'unknown';
  }
}

function cpuFlags(): Set<string> {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => l.startsWith('flags'));
    return new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

export function machineInfo(): MachineInfo {
  const flags = cpuFlags();
  const isa = flags.has('avx512f')
    ? [
        'avx512f',
        ...['avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile'].filter((f) => flags.has(f)),
      ].join(' ')
    : flags.has('avx2')
      ? `avx2${flags.has('fma') ? ' fma' : ''}`
      : 'sse';
  const versions = sharp.versions as Record<string, string | undefined>;
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    logicalCpus: cpus().length,
    availableParallelism: availableParallelism(),
    vectorIsa: isa,
    hypervisor: flags.has('hypervisor'),
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    versions: {
      node: process.version,
      onnxruntimeNode: packageVersion('onnxruntime-node'),
      sharp: versions.sharp ?? packageVersion('sharp'),
      libvips: versions.vips ?? 'unknown',
    },
  };
}
