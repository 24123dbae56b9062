import type { SectionName, SectionRecord } from './types.ts';

/**
 * Why a section's record is not a full result, one line per reason; empty when it is one.
 * Besides a failed or skipped section this counts what sections record inside their data
 * when part of them could not run: a row's `error`, a list of `errors`, and something
 * marked `available: false` (its `note` says why).
 */
export function sectionProblems(name: SectionName, record: SectionRecord | undefined): string[] {
  if (!record) return [`${name} did not run`];
  if (record.status !== 'ok') return [`${record.status}: ${record.error}`];
  const problems: string[] = [];
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        visit(item, `${path}[${i}]`);
      });
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const object = value as Record<string, unknown>;
    const where = path || name;
    if (typeof object.error === 'string') problems.push(`${where}: ${object.error}`);
    if (Array.isArray(object.errors)) {
      for (const e of object.errors) problems.push(`${where}: ${String(e)}`);
    }
    if (object.available === false) {
      problems.push(`${where}: ${typeof object.note === 'string' ? object.note : 'not available'}`);
    }
    for (const [key, child] of Object.entries(object)) {
      if (key !== 'errors') visit(child, path ? `${path}.${key}` : key);
    }
  };
  visit(record.data, '');
  return problems;
}
