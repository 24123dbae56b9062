// What `npm run bench` keeps of the RESULTS.md it replaces: the parts other scripts write
// (GPU runs, the cost model, the jobs measurements, the footprint per image), which a bench run does not measure.
import { END_MARKER, START_MARKER } from '../cost-model.ts';
import { GPU_RUNS_HEADING } from '../gpu/record.ts';

/** `## ` sections kept whole, by the start of their heading line. */
export const KEPT_HEADINGS = [
  GPU_RUNS_HEADING,
  '## Jobs: planning rate',
  '## Feeding the GPU',
  '## Local stack: CPU by process',
  '## Footprint per image',
] as const;

/** The kept sections and the cost model's marked block of `previous`, to append to a new RESULTS.md. */
export function keptSections(previous: string): string {
  const kept: string[] = [];
  const start = previous.indexOf(START_MARKER);
  const end = previous.indexOf(END_MARKER);
  let rest = previous;
  if (start >= 0 && end > start) {
    kept.push(previous.slice(start, end + END_MARKER.length));
    rest = previous.slice(0, start) + previous.slice(end + END_MARKER.length);
  }
  const sections = rest.split(/\n(?=## )/);
  for (const section of sections) {
    if (KEPT_HEADINGS.some((h) => section.startsWith(h))) kept.unshift(section.trim());
  }
  // Sections first in their old order, then the cost model block.
  const ordered = [
    ...kept.filter((k) => !k.startsWith(START_MARKER)).reverse(),
    ...kept.filter((k) => k.startsWith(START_MARKER)),
  ];
  return ordered.length === 0 ? '' : `\n${ordered.map((k) => `${k.trim()}\n`).join('\n')}`;
}
