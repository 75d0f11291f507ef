// weft run examples/typescript/job.ts --executor threads
import type { Executor } from 'weftjs';
import { Case, countWords } from './tasks.js';

const lines = [
  'It is the TypeScript heir of Prefect Executors',
  'tasks run on threads, processes or a cluster',
  'the same code runs on every executor',
];

export default async function (executor: Executor): Promise<string> {
  const counts = await executor.wait(
    executor.map(
      countWords,
      lines,
      lines.map(() => Case.Lower),
    ),
  );
  const total: Record<string, number> = {};
  for (const c of counts) for (const [w, n] of Object.entries(c)) total[w] = (total[w] ?? 0) + n;
  const top = Object.entries(total)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3);
  return `${Object.keys(total).length} distinct words; most frequent: ${top.map(([w, n]) => `${w} (${n})`).join(', ')}`;
}
