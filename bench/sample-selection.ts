// What `jobs start --sample` costs in CPU and memory beyond its listings (decision 0036):
// the bound of a count sample (one SHA-256 per key, a bounded heap of n ranks) and the
// planner's per-key selection, over synthetic keys. Prints; asserts nothing.
//
//   node --import tsx bench/sample-selection.ts [--keys 1000000]
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { inSample, resolveSample } from '../shared/labeling/sample.ts';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' } } });
const total = Number(values.keys);
const keys = Array.from({ length: total }, (_, i) => `datasets/big/${String(i).padStart(8, '0')}.jpg`);
async function* pages() {
  for (let i = 0; i < total; i += 1000) yield keys.slice(i, i + 1000);
}

console.log(`${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, ${total} keys`);
for (const count of [1000, 100_000]) {
  const started = performance.now();
  const sample = await resolveSample({ count, seed: 0 }, pages);
  const boundMs = performance.now() - started;
  const selecting = performance.now();
  let selected = 0;
  for (const key of keys) if (inSample(sample, key)) selected++;
  const selectMs = performance.now() - selecting;
  console.log(
    `n=${count}: bound ${boundMs.toFixed(0)} ms (${((boundMs * 1000) / total).toFixed(2)} µs/key), ` +
      `selection ${selectMs.toFixed(0)} ms, selected ${selected}`,
  );
}
