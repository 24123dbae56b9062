import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import type { NetworkProbe, ToolProbe } from './doctor.ts';

/** Runs the real tools (no shell), 20 s at most each. */
export const systemTools: ToolProbe = {
  run: (command, args) =>
    new Promise((resolve) => {
      execFile(command, [...args], { timeout: 20_000, encoding: 'utf8' }, (error, stdout, stderr) => {
        const text = (stdout || stderr || '').trim();
        // Not installed (ENOENT) or not runnable: no version to report.
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') resolve(undefined);
        else if (error && text === '') resolve(undefined);
        else resolve(text);
      });
    }),
};

export const systemNetwork: NetworkProbe = {
  canListen: (host, port) =>
    new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, host, () => server.close(() => resolve(true)));
    }),
};
