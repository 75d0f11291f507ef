/**
 * A `weft run` job for the fault tests: maps `mark` over FAULT_TASKS items of FAULT_MS each,
 * recording starts and ends in FAULT_DIR.
 */
import type { Executor } from 'weftjs';
import { mark } from './fixtures.js';

export default async function (executor: Executor): Promise<number[]> {
  const dir = process.env.FAULT_DIR!;
  const n = Number(process.env.FAULT_TASKS ?? 40);
  const ms = Number(process.env.FAULT_MS ?? 1500);
  return executor.wait(
    executor.map(
      mark,
      Array<string>(n).fill(dir),
      Array.from({ length: n }, (_, i) => i),
      Array<number>(n).fill(ms),
    ),
  );
}
