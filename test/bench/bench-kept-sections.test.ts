import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { END_MARKER, START_MARKER, withBlock } from '../../bench/cost-model.ts';
import { GPU_RUNS_HEADING, withRun } from '../../bench/gpu/record.ts';
import { keptSections } from '../../bench/lib/kept-sections.ts';

describe('npm run bench keeps what other scripts wrote into RESULTS.md', () => {
  it('keeps the GPU runs, the jobs measurements and the cost model block; drops measured sections', () => {
    let old =
      '# Benchmark results\n\n## 1. Inference\n\nold numbers\n\n## Jobs: planning rate and job throughput\n\njobs table\n';
    old = withRun(old, '### 2026-12-01: NVIDIA H100, 16 cores, provider cuda\n\nrun table\n');
    old = withBlock(old, '## When does a GPU pay? (cost model)\n\ncost table\n');
    const kept = keptSections(old);
    assert.doesNotMatch(kept, /old numbers/);
    assert.match(kept, /## Jobs: planning rate[\s\S]*jobs table/);
    assert.match(kept, new RegExp(`${GPU_RUNS_HEADING.replace(/[()`]/g, '\\$&')}[\\s\\S]*run table`));
    assert.ok(
      kept.includes(`${START_MARKER}\n\n## When does a GPU pay? (cost model)\n\ncost table\n\n${END_MARKER}`),
    );
    // A new RESULTS.md with them appended keeps them through the next run as well.
    const next = `# Benchmark results\n\n## 1. Inference\n\nnew numbers\n${kept}`;
    assert.equal(keptSections(next), kept);
  });

  it('adds nothing to a RESULTS.md without them', () => {
    assert.equal(keptSections('# Benchmark results\n\n## 1. Inference\n\nx\n'), '');
    assert.equal(keptSections(''), '');
  });
});
