import { runChild, SYSTEM_PYTHON } from './child.ts';
import type { SectionName } from './types.ts';

/** One tool the selected sections cannot run without, and the Debian packages that provide it. */
export interface Missing {
  readonly what: string;
  readonly neededBy: readonly string[];
  readonly packages: readonly string[];
}

interface Probe {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command; a command that cannot be started at all reads as exit code null. */
async function probe(command: string, args: readonly string[], timeoutMs: number): Promise<Probe> {
  try {
    const outcome = await runChild(command, args, { timeoutMs });
    return { code: outcome.timedOut ? null : outcome.code, output: `${outcome.stdout}\n${outcome.stderr}` };
  } catch (error) {
    return { code: null, output: String(error) };
  }
}

/** The Java major version `java -version` prints ("1.8.0_392" is 8, "17.0.9" is 17). */
export function javaMajor(versionOutput: string): number | undefined {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m?.[1]) return undefined;
  const first = Number(m[1]);
  return first === 1 && m[2] ? Number(m[2]) : first;
}

const PYTHON_SECTIONS: readonly SectionName[] = ['peers', 'decode'];
const TASKSET_SECTIONS: readonly SectionName[] = ['preprocess', 'decode', 'pipeline'];

/**
 * What the selected sections need from the machine and cannot find, checked before anything
 * is measured. `exportsB0`: the B0 export will run (no current export in bench/.cache/b0).
 */
export async function missingPrerequisites(
  sections: readonly SectionName[],
  exportsB0: boolean,
): Promise<Missing[]> {
  const missing: Missing[] = [];
  const wants = (names: readonly SectionName[]) => sections.filter((s) => names.includes(s));

  const torchUsers = [...(exportsB0 ? ['B0 export'] : []), ...wants(PYTHON_SECTIONS)];
  if (torchUsers.length > 0) {
    // Importing torch takes seconds on a busy machine: the limit is generous on purpose.
    const python = await probe(SYSTEM_PYTHON, ['-c', 'import torch, torchvision, PIL'], 180_000);
    if (python.code !== 0) {
      const noPython = python.code === null && /ENOENT/.test(python.output);
      missing.push({
        what: noPython ? `python3 (${SYSTEM_PYTHON})` : `torch and torchvision for ${SYSTEM_PYTHON}`,
        neededBy: torchUsers,
        packages: noPython
          ? ['python3', 'python3-torch', 'python3-torchvision']
          : ['python3-torch', 'python3-torchvision'],
      });
    }
  }
  if (sections.includes('fma') && (await probe('g++', ['--version'], 30_000)).code !== 0) {
    missing.push({ what: 'g++', neededBy: ['fma'], packages: ['g++'] });
  }
  const pinned = wants(TASKSET_SECTIONS);
  if (pinned.length > 0 && (await probe('taskset', ['--version'], 30_000)).code !== 0) {
    missing.push({ what: 'taskset', neededBy: pinned, packages: ['util-linux'] });
  }
  if (sections.includes('e2e')) {
    // DynamoDB Local, started by `labeler local run`, needs Java 17+ with its compiler (a JDK).
    const java = await probe('java', ['-version'], 60_000);
    const major = java.code === 0 ? javaMajor(java.output) : undefined;
    if (major === undefined || major < 17) {
      missing.push({
        what: major === undefined ? 'Java 17+' : `Java 17+ (found Java ${major})`,
        neededBy: ['e2e'],
        packages: ['default-jdk-headless'],
      });
    }
  }
  return missing;
}

/** The one line that names everything missing and the command that installs it. */
export function describeMissing(missing: readonly Missing[]): string {
  const what = missing.map((m) => `${m.what} (for ${m.neededBy.join(', ')})`).join('; ');
  const packages = [...new Set(missing.flatMap((m) => m.packages))].join(' ');
  return `missing prerequisites: ${what}. Install them with: apt-get install ${packages}`;
}
