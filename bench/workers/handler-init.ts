// The classify handler's init: the time to import its module in a fresh process (what
// Lambda bills as INIT when the handler loads its model at module scope).
import { pathToFileURL } from 'node:url';
import { workerMain } from '../lib/child.ts';

export interface HandlerInitArgs {
  readonly handlerPath: string;
}

export interface HandlerInitResult {
  readonly processStart: number;
  readonly importStart: number;
  readonly imported: number;
  readonly exports: string[];
}

const now = () => performance.timeOrigin + performance.now();

await workerMain<HandlerInitArgs, HandlerInitResult>(async (args) => {
  const importStart = now();
  const mod = (await import(pathToFileURL(args.handlerPath).href)) as Record<string, unknown>;
  const imported = now();
  return { processStart: performance.timeOrigin, importStart, imported, exports: Object.keys(mod).sort() };
});
