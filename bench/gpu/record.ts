// Records one GPU run (the results folder bench/gpu/run.sh wrote, copied back) in
// bench/RESULTS.md under "GPU runs", newest first, with its machine.
//
//   node --import tsx bench/gpu/record.ts <results-dir> [--markdown bench/RESULTS.md]
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR } from '../lib/child.ts';
import { type GpuRunResults, renderMarkdown } from './measure.ts';

export const GPU_RUNS_HEADING = '## GPU runs (bench/gpu/, not part of `npm run bench`)';

/** Inserts `entry` as the newest run (before the first run) under the GPU runs heading, adding the heading if absent. */
export function withRun(markdown: string, entry: string): string {
  const at = markdown.indexOf(GPU_RUNS_HEADING);
  if (at < 0) return `${markdown.trimEnd()}\n\n${GPU_RUNS_HEADING}\n\n${entry.trimEnd()}\n`;
  const firstRun = markdown.indexOf('\n### ', at);
  const nextSection = markdown.indexOf('\n## ', at + GPU_RUNS_HEADING.length);
  const where =
    firstRun >= 0 && (nextSection < 0 || firstRun < nextSection)
      ? firstRun + 1
      : nextSection >= 0
        ? nextSection + 1
        : markdown.length;
  const joined = `${markdown.slice(0, where).trimEnd()}\n\n${entry.trimEnd()}\n\n${markdown.slice(where).trimStart()}`;
  return `${joined.trimEnd()}\n`;
}

export function runEntry(results: GpuRunResults): string {
  const title = `### ${results.date.slice(0, 10)}: ${results.machine.gpu ?? 'no GPU'}, ${results.machine.cores} cores, provider ${results.provider}`;
  return `${title}\n\n${renderMarkdown(results)}`;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { markdown: { type: 'string', default: join(BENCH_DIR, 'RESULTS.md') } },
  });
  const dir = positionals[0];
  if (!dir) throw new Error('usage: bench/gpu/record.ts <results-dir>');
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as GpuRunResults;
  const markdown = await readFile(values.markdown, 'utf8');
  await writeFile(values.markdown, withRun(markdown, runEntry(results)));
  process.stderr.write(
    `recorded the ${results.machine.gpu ?? 'CPU'} run of ${results.date} in ${values.markdown}\n`,
  );
}

if (/record\.ts$/.test(process.argv[1] ?? '')) {
  main().catch((error: unknown) => {
    process.stderr.write(`record: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
