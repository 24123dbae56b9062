import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { threadCpuDelta, threadCpuMs } from '../../bench/lib/thread-cpu.ts';

/** Burns `ms` of this thread's CPU (counted by the kernel, so a busy machine only takes longer). */
function burnMainThread(ms: number): void {
  const start = process.cpuUsage();
  let x = 0;
  while (true) {
    for (let i = 0; i < 100_000; i++) x += Math.sqrt(i);
    const spent = process.cpuUsage(start);
    if ((spent.user + spent.system) / 1000 >= ms) break;
  }
  assert.ok(x > 0);
}

/**
 * Burns `ms` of CPU on a worker thread, measured by the worker's own clock, and returns it still
 * running: a thread that has ended is gone from /proc with its CPU time.
 */
async function burnWorkerThread(ms: number): Promise<Worker> {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const start = process.threadCpuUsage ? process.threadCpuUsage() : null;
    const spentMs = () => {
      const d = process.threadCpuUsage ? process.threadCpuUsage(start) : process.cpuUsage();
      return (d.user + d.system) / 1000;
    };
    const begin = spentMs();
    let x = 0;
    while (spentMs() - begin < workerData) for (let i = 0; i < 100000; i++) x += Math.sqrt(i);
    parentPort.postMessage(x);
    setInterval(() => {}, 1000);`;
  const worker = new Worker(source, { eval: true, workerData: ms });
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return worker;
}

describe('bench thread CPU', { skip: !existsSync('/proc/self/task') && 'no /proc (not Linux)' }, () => {
  it('counts the JavaScript thread’s work under main, not under the other threads', () => {
    const before = threadCpuMs();
    burnMainThread(300);
    const spent = threadCpuDelta(before, threadCpuMs());
    const main = spent.get('main') ?? 0;
    const others = [...spent].filter(([group]) => group !== 'main').reduce((sum, [, ms]) => sum + ms, 0);
    // Ticks of 10 ms, and the runtime's own threads may do a little meanwhile.
    assert.ok(main >= 250, `main spent ${main} ms`);
    assert.ok(others < main / 2, `other threads spent ${others} ms against main's ${main}`);
  });

  it('counts a worker thread’s work under its own name, not under main', async () => {
    const before = threadCpuMs();
    const worker = await burnWorkerThread(300);
    const spent = threadCpuDelta(before, threadCpuMs());
    await worker.terminate();
    const main = spent.get('main') ?? 0;
    const others = [...spent].filter(([group]) => group !== 'main').reduce((sum, [, ms]) => sum + ms, 0);
    assert.ok(others >= 250, `other threads spent ${others} ms`);
    assert.ok(main < others / 2, `main spent ${main} ms against the worker's ${others}`);
  });

  it('leaves out groups that spent nothing and keeps new ones', () => {
    const delta = threadCpuDelta(
      new Map([
        ['main', 100],
        ['V8Worker', 40],
      ]),
      new Map([
        ['main', 130],
        ['V8Worker', 40],
        ['WorkerThread', 20],
      ]),
    );
    assert.deepEqual(
      [...delta],
      [
        ['main', 30],
        ['WorkerThread', 20],
      ],
    );
  });
});
