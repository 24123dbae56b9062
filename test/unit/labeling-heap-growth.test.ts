import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLASSIFY } from '../../shared/settings.ts';

const MARK = 'labeling heap growth set';

// Sets the heap growth as a labeling process does, then keeps allocating until V8 has run
// a few full GCs; V8 prints each new old-generation limit under --trace-gc-verbose.
const SCRIPT = `
import { setLabelingHeapGrowth } from './shared/aws/classify-handler.ts';
setLabelingHeapGrowth();
console.log(${JSON.stringify(MARK)});
const kept = [];
for (let i = 0; i < 400; i++) {
  kept.push(Buffer.alloc(1 << 19, i % 251).toString('latin1'));
  await new Promise((resolve) => setImmediate(resolve));
}
console.log('kept', kept.length);
`;

interface Limit {
  readonly oldKb: number;
  readonly newKb: number;
  readonly factor?: number;
}

function limitsAfterMark(output: string): Limit[] {
  const after = output.slice(output.indexOf(MARK));
  return [
    ...after.matchAll(
      /\[HeapController\] Limit: old size: (\d+) KB, new limit: (\d+) KB(?: \((\d+(?:\.\d+)?)\))?/g,
    ),
  ].map((m) => ({
    oldKb: Number(m[1]),
    newKb: Number(m[2]),
    ...(m[3] ? { factor: Number(m[3]) } : {}),
  }));
}

describe('labeling heap growth', () => {
  it('makes V8 set each next heap limit at the configured factor of the live heap', () => {
    const run = spawnSync(
      process.execPath,
      ['--trace-gc-verbose', '--import', 'tsx', '--input-type=module', '-e', SCRIPT],
      {
        encoding: 'utf8',
        env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
        timeout: 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.stdout.includes('kept 400'), 'the allocation loop ran to its end');
    const factor = 1 + CLASSIFY.heapGrowingPercent / 100;
    // Large enough that V8's new-space allowance does not blur the ratio.
    const limits = limitsAfterMark(run.stdout).filter((l) => l.oldKb >= 64 * 1024);
    assert.ok(limits.length > 0, 'V8 set a heap limit after a full GC');
    for (const limit of limits) {
      // Node 20 prints the factor; later V8 prints only the sizes, whose ratio adds new space.
      if (limit.factor !== undefined) assert.equal(limit.factor, factor, JSON.stringify(limit));
      const ratio = limit.newKb / limit.oldKb;
      assert.ok(
        ratio >= factor && ratio < factor + 0.5,
        `limit ${JSON.stringify(limit)}: ratio ${ratio.toFixed(2)}`,
      );
    }
  });
});
