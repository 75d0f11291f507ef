/**
 * The `weft` command: running jobs, its errors, and the progress bar.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LocalPoolExecutor, progress } from 'weftjs';
import { add, failPlain } from './fixtures/tasks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const weft = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });

function job(source: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'weft-cli-')), 'job.mjs');
  writeFileSync(file, source);
  return file;
}

describe('weft run', () => {
  it(
    'runs the demo on every local executor and prints what the job returns',
    { timeout: 120_000 },
    () => {
      for (const executor of ['local', 'synchronous', 'threads', 'processes']) {
        const run = weft(
          'run',
          'examples/monte-carlo.js',
          '--executor',
          executor,
          '--workers',
          '2',
        );
        expect(run.status, run.stderr).toBe(0);
        expect(run.stdout).toMatch(/π ≈ 3\.14\d+ from \d+M samples/);
      }
    },
  );

  it('runs a TypeScript job', { timeout: 60_000 }, () => {
    const run = weft('run', 'examples/typescript/job.ts', '--executor', 'threads');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('words');
  });

  it('exits non-zero naming the culprit for a missing file, no default export, a bad executor, a failing job', () => {
    const missing = weft('run', 'no/such/file.js');
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('no/such/file.js');

    const noDefault = weft('run', job('export const x = 1;'));
    expect(noDefault.status).not.toBe(0);
    expect(noDefault.stderr).toMatch(/no default export/);

    const badExecutor = weft('run', 'examples/monte-carlo.js', '--executor', 'dask');
    expect(badExecutor.status).not.toBe(0);
    expect(badExecutor.stderr).toContain('local, synchronous, threads, processes, distributed');

    const badWorkers = weft(
      'run',
      'examples/monte-carlo.js',
      '--executor',
      'threads',
      '--workers',
      'zero',
    );
    expect(badWorkers.status).not.toBe(0);
    expect(badWorkers.stderr).toMatch(/--workers/);

    const failing = weft(
      'run',
      job('export default async () => { throw new RangeError("job blew up"); };'),
    );
    expect(failing.status).toBe(1);
    expect(failing.stderr).toMatch(/failed: RangeError: job blew up/);
  });

  it('prints help for the command and its subcommands', () => {
    expect(weft('--help').stdout).toContain('run [options] <file>');
    expect(weft('run', '--help').stdout).toContain('--executor <name>');
    expect(weft('worker', '--help').stdout).toContain('--no-source');
  });

  it('weft worker without an address explains what it needs', () => {
    const run = weft('worker');
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('--address');
  });
});

describe('progress', () => {
  it(
    'draws done and failed counts for futures and never rejects for a failed task',
    { timeout: 30_000 },
    async () => {
      await new LocalPoolExecutor({ scheduler: 'threads', workers: 2 }).start(async (ex) => {
        const stream = new PassThrough() as unknown as NodeJS.WriteStream;
        let drawn = '';
        (stream as unknown as PassThrough).on('data', (d: Buffer) => (drawn += d.toString()));
        const futures = [...ex.map(add, [1, 2, 3], [1, 1, 1]), ex.submit(failPlain, 'x')];
        await progress(futures, { stream, force: true, label: 'demo' });
        expect(drawn).toContain('demo');
        expect(drawn).toMatch(/4\/4/);
        expect(drawn).toMatch(/failed 1/);
      });
    },
  );

  it('draws nothing when the stream is not a terminal', async () => {
    await new LocalPoolExecutor({ scheduler: 'synchronous' }).start(async (ex) => {
      const stream = new PassThrough() as unknown as NodeJS.WriteStream;
      let drawn = '';
      (stream as unknown as PassThrough).on('data', (d: Buffer) => (drawn += d.toString()));
      await progress(ex.map(add, [1], [2]), { stream });
      expect(drawn).toBe('');
    });
  });
});
