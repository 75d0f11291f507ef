// TypeScript task module: workers load it through tsx, enums and all.
import { task } from 'weftjs';

export enum Case {
  Lower = 'lower',
  Upper = 'upper',
}

export const countWords = task(function countWords(
  text: string,
  mode: Case,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const raw of text.split(/\W+/)) {
    if (!raw) continue;
    const word = mode === Case.Lower ? raw.toLowerCase() : raw.toUpperCase();
    counts[word] = (counts[word] ?? 0) + 1;
  }
  return counts;
});
