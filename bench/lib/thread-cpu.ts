// CPU time of this process's threads, grouped by what they are, so a benchmark can say which
// thread spent the CPU: the JavaScript thread, V8's GC helpers, libuv's pool, the inference
// worker, libvips. Linux only (/proc); elsewhere the map is empty.
import { readdirSync, readFileSync } from 'node:fs';

/** The kernel reports thread times in ticks of USER_HZ, which is 100 on Linux. */
const MS_PER_TICK = 10;

/**
 * CPU-ms (user + system) so far of each group of this process's threads: `main` is the
 * JavaScript thread, the others go by their thread name (Node 22 and later name theirs
 * `V8Worker`, `libuv-worker`, `WorkerThread`; Node 20 leaves its own as `node`).
 */
export function threadCpuMs(): Map<string, number> {
  const byGroup = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return byGroup;
  }
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    // Fields after the name, which sits in parentheses and may itself hold spaces.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const group = Number(tid) === process.pid ? 'main' : stat.slice(stat.indexOf('(') + 1, close);
    byGroup.set(group, (byGroup.get(group) ?? 0) + ticks * MS_PER_TICK);
  }
  return byGroup;
}

/** What each group spent between two readings; groups that spent nothing are left out. */
export function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [group, ms] of after) {
    const spent = ms - (before.get(group) ?? 0);
    if (spent > 0) delta.set(group, spent);
  }
  return delta;
}
