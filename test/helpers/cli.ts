import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../../shared/paths.ts';

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The user an unprivileged run takes when the tests run as root: nobody. */
const NOBODY = 65534;

/**
 * Runs the real `labeler` entry point as a user would, in a child process; `unprivileged`
 * runs it as nobody when the tests run as root (check `unprivilegedSkip` first).
 */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { unprivileged?: boolean } = {},
): Promise<CliRun> {
  const asNobody = options.unprivileged === true && process.getuid?.() === 0;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin', 'labeler.mjs'), ...args], {
      cwd: PACKAGE_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // libuv drops the supplementary groups when it sets the ids.
      ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Why an unprivileged run cannot happen here, or false. As root, the run is nobody, who must
 * reach the checkout: a clone under root's own home folder (mode 0700) is out of its reach.
 */
export function unprivilegedSkip(): string | false {
  if (process.getuid?.() !== 0) return false;
  for (let dir = PACKAGE_ROOT; ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      return `running as root in a checkout under ${dir}, which other users cannot enter: the run as nobody could not start the CLI`;
    }
    if (dirname(dir) === dir) return false;
  }
}

export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
