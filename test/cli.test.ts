/**
 * The `weft` command: running jobs, what it prints when they fail or do not compile, usage
 * errors, and the progress bar. Every run is an async spawn with a deadline.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LocalPoolExecutor, progress } from 'weftjs';
import { add, failPlain } from './fixtures/tasks.js';
import { formatFailure, formatSyntaxError } from '../dist/cli/report.js';
import { node } from './helpers/spawn.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const weft = (...args: string[]) => node([cli, ...args], { cwd: root, timeoutMs: 60_000 });

/** Writes `files` (relative path → source) into a fresh temp directory; returns its path. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'));
  for (const [name, source] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), source);
  }
  return dir;
}

function job(source: string): string {
  return join(project({ 'job.mjs': source }), 'job.mjs');
}

describe('weft run', () => {
  it(
    'runs the demo on every local executor and prints what the job returns',
    { timeout: 120_000 },
    async () => {
      for (const executor of ['local', 'synchronous', 'threads', 'processes']) {
        const run = await weft(
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

  it('runs a TypeScript job', { timeout: 60_000 }, async () => {
    const run = await weft('run', 'examples/typescript/job.ts', '--executor', 'threads');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('words');
  });

  it('exits non-zero naming the culprit for a missing file, no default export, a bad executor, a failing job', async () => {
    const [missing, noDefault, badExecutor, failing] = await Promise.all([
      weft('run', 'no/such/file.js'),
      weft('run', job('export const x = 1;')),
      weft('run', 'examples/monte-carlo.js', '--executor', 'dask'),
      weft('run', job('export default async () => { throw new RangeError("job blew up"); };')),
    ]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no/such/file.js');
    expect(noDefault.status).toBe(2);
    expect(noDefault.stderr).toMatch(/no default export/);
    expect(badExecutor.status).toBe(2);
    expect(badExecutor.stderr).toContain('local, synchronous, threads, processes, distributed');
    expect(failing.status).toBe(1);
    expect(failing.stderr).toMatch(/failed: RangeError: job blew up/);
  });

  it('prints help for the command and its subcommands', async () => {
    const [top, run, worker] = await Promise.all([
      weft('--help'),
      weft('run', '--help'),
      weft('worker', '--help'),
    ]);
    expect(top.status).toBe(0);
    expect(top.stdout).toContain('run [options] <file>');
    expect(run.stdout).toContain('--executor <name>');
    expect(run.stdout).toContain('--concurrency <n>');
    expect(worker.stdout).toContain('--no-source');
  });

  it('weft worker without an address explains what it needs', async () => {
    const run = await weft('worker');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--address');
  });

  it(
    'runs examples/crawl.js with --concurrency as the README shows',
    { timeout: 60_000 },
    async () => {
      const run = await weft(
        ...['run', 'examples/crawl.js', '--executor', 'threads', '--workers', '2'],
        ...['--concurrency', '100'],
      );
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^2000 pages \(\d+ bytes\) in [\d.]+ s/);
    },
  );

  it('--concurrency caps the tasks the executor keeps in flight', { timeout: 60_000 }, async () => {
    const file = job(`
      export default async (executor) => {
        let running = 0;
        let most = 0;
        const sleepy = async () => {
          most = Math.max(most, ++running);
          await new Promise((resolve) => setTimeout(resolve, 20));
          running--;
        };
        await executor.wait(Array.from({ length: 12 }, () => executor.submit(sleepy)));
        return \`at most \${most} at once\`;
      };
    `);
    const [capped, free] = await Promise.all([
      weft('run', file, '--concurrency', '3'),
      weft('run', file),
    ]);
    expect(capped.status, capped.stderr).toBe(0);
    expect(capped.stdout.trim()).toBe('at most 3 at once');
    expect(free.stdout.trim()).toBe('at most 12 at once');
  });
});

describe('weft run: what a failure prints', () => {
  it("prints a failed job's stack and its whole cause chain, AggregateError's errors included", async () => {
    const file = job(
      [
        'function load() {',
        '  const inner = new TypeError("bad header", { cause: new Error("root of it") });',
        '  throw new AggregateError([new Error("first"), inner], "two reads failed");',
        '}',
        'export default async function job() {',
        '  try {',
        '    load();',
        '  } catch (error) {',
        '    throw new RangeError("job blew up", { cause: error });',
        '  }',
        '}',
      ].join('\n'),
    );
    const run = await weft('run', file);
    expect(run.status).toBe(1);
    const lines = run.stderr.split('\n');
    expect(lines[0]).toBe(`weft run: ${file} failed: RangeError: job blew up`);
    expect(lines[1]).toMatch(/^ {4}at job \(file:\/\/.*job\.mjs:9:11\)$/);
    expect(run.stderr).toMatch(
      /^Caused by: AggregateError: two reads failed\n {4}at load \(.*job\.mjs:3:9\)/m,
    );
    expect(run.stderr).toMatch(/^ {2}\[1\/2\] Error: first$/m);
    expect(run.stderr).toMatch(/^ {2}\[2\/2\] TypeError: bad header$/m);
    expect(run.stderr).toMatch(/^ {2}Caused by: Error: root of it$/m);
    // weft's own frames (this CLI, commander) are noise in a job's stack.
    expect(run.stderr).not.toMatch(/dist\/cli|commander/);
  });

  it('prints the cause of an UpstreamTaskError: the task that failed, with its stack', async () => {
    const file = job(`
      export default async function (executor) {
        const parsed = executor.submit(function parse(text) {
          try {
            return JSON.parse(text);
          } catch (error) {
            throw new Error(\`cannot parse \${text}\`, { cause: error });
          }
        }, '{oops');
        return executor.wait(executor.submit((value) => value, parsed));
      }
    `);
    const run = await weft('run', file);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/failed: UpstreamTaskError: .*upstream task parse-/);
    expect(run.stderr).toMatch(/code: 'UPSTREAM_TASK', upstream: 'parse-/);
    expect(run.stderr).toMatch(
      /^Caused by: Error: cannot parse \{oops\n {4}at .*parse.* \(.*job\.mjs:7:19\)/m,
    );
    expect(run.stderr).toMatch(/^Caused by: SyntaxError: .*JSON/m);
  });

  it('shows file, line, source and caret of a syntax error in a module the job imports, and the imports that led there', async () => {
    const dir = project({
      'job.mjs': 'import { total } from "./lib/index.mjs";\nexport default async () => total;\n',
      'lib/index.mjs': 'export { total } from "./sum.mjs";\n',
      'lib/sum.mjs': 'export const total = 1;\nconst table = {\n  a: 1\n  b: 2\n};\n',
    });
    const run = await weft('run', join(dir, 'job.mjs'));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("SyntaxError: Unexpected identifier 'b'");
    expect(run.stderr).toContain(
      `at ${join(dir, 'lib/sum.mjs')}:4:3 (imported by ${join(dir, 'job.mjs')} → ${join(dir, 'lib/index.mjs')})`,
    );
    expect(run.stderr).toContain('    4 |   b: 2\n      |   ^\n');
  });

  it('shows the place of a syntax error in a TypeScript module the job imports (through tsx)', async () => {
    const dir = project({
      'job.ts':
        'import { total } from "./sum.js";\nexport default async (): Promise<number> => total;\n',
      'sum.ts': 'export const total: number = 1;\nconst table = {\n  a: 1\n  b: 2\n};\n',
    });
    const run = await weft('run', join(dir, 'job.ts'));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      `at ${join(dir, 'sum.ts')}:4:3 (imported by ${join(dir, 'job.ts')})`,
    );
    expect(run.stderr).toContain('    4 |   b: 2\n      |   ^\n');
  });

  it('shows the place of a syntax error in the job itself, a missing export, a broken CommonJS module, an import() the job runs', async () => {
    const dir = project({
      'self.mjs': 'export default async () => {\n  return 1 +;\n};\n',
      'link.mjs': 'import { nope } from "./lib.mjs";\nexport default () => nope;\n',
      'lib.mjs': 'export const yes = 1;\n',
      'cjs.mjs': 'import "./broken.cjs";\nexport default () => 1;\n',
      'broken.cjs': 'module.exports = {\n  a: 1\n  b: 2\n};\n',
      'dynamic.mjs': 'export default async () => (await import("./deep/late.mjs")).value;\n',
      'deep/late.mjs': 'export const value = (;\n',
    });
    const load = (name: string) => weft('run', join(dir, `${name}.mjs`));
    const [self, link, cjs, dynamic] = await Promise.all([
      load('self'),
      load('link'),
      load('cjs'),
      load('dynamic'),
    ]);
    expect(self.stderr).toContain(
      `at ${join(dir, 'self.mjs')}:2:13\n    2 |   return 1 +;\n      |             ^`,
    );
    expect(link.stderr).toContain("does not provide an export named 'nope'");
    expect(link.stderr).toContain(`at ${join(dir, 'link.mjs')}:1:10\n`);
    expect(cjs.stderr).toContain(
      `at ${join(dir, 'broken.cjs')}:3:3 (imported by ${join(dir, 'cjs.mjs')})`,
    );
    // Node 20 also rejects a promise of its own with that error; it must not print twice.
    expect(cjs.stderr).not.toContain('Node.js v');
    expect(dynamic.stderr).toMatch(/failed: SyntaxError: Unexpected token/);
    expect(dynamic.stderr).toContain(
      `at ${join(dir, 'deep/late.mjs')}:1:23 (imported by ${join(dir, 'dynamic.mjs')})`,
    );
    for (const run of [self, link, cjs, dynamic]) expect(run.status, run.stderr).toBe(1);
  });
});

describe('weft run: the failure report', () => {
  it('survives a cause cycle, non-Error values and a cause chain past its depth', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    const cycle = formatFailure(a);
    expect(cycle).toMatch(/^Error: a$/m);
    expect(cycle).toMatch(/^Caused by: Error: b$/m);
    expect(cycle).toMatch(/^Caused by: \[the same Error again: a cycle\]$/m);

    expect(formatFailure(new Error('x', { cause: { status: 503 } }))).toMatch(
      /^Caused by: \{ status: 503 \}$/m,
    );
    expect(formatFailure('plain text')).toBe('plain text');

    let deep: Error = new Error('root');
    for (let i = 0; i < 20; i++) deep = new Error(`level ${i}`, { cause: deep });
    const text = formatFailure(deep);
    expect(text).toContain('[nested errors past 8 levels left out]');
    expect(text).not.toContain('root');
  });

  it('keeps the caret under the spot on a long line, and shows paths relative to the working directory', () => {
    const sourceLine = `${'x'.repeat(500)}!${'y'.repeat(500)}`;
    const text = formatSyntaxError(
      {
        file: join(process.cwd(), 'lib', 'min.js'),
        line: 1,
        column: 501,
        sourceLine,
        name: 'SyntaxError',
        message: "Invalid or unexpected token '!'",
        importedBy: [join(process.cwd(), 'job.mjs')],
      },
      process.cwd(),
    );
    const [, where, code, caret] = text.split('\n');
    expect(where).toBe(`  at ${join('lib', 'min.js')}:1:501 (imported by job.mjs)`);
    expect(code!.length).toBeLessThan(140);
    expect(code![caret!.indexOf('^')]).toBe('!');
  });
});

describe('weft: usage errors exit 2', () => {
  it('an unknown flag, on every command, names the flag and the closest valid one', async () => {
    const cases = [
      {
        args: ['run', 'examples/monte-carlo.js', '--workres', '2'],
        flag: '--workres',
        closest: '--workers',
      },
      { args: ['worker', '--concurency', '2'], flag: '--concurency', closest: '--concurrency' },
      {
        args: ['dashboard', '--adress', 'redis://127.0.0.1:6379'],
        flag: '--adress',
        closest: '--address',
      },
      { args: ['--verison'], flag: '--verison', closest: '--version' },
    ];
    const runs = await Promise.all(cases.map(({ args }) => weft(...args)));
    runs.forEach((run, i) => {
      const { flag, closest } = cases[i]!;
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(`unknown option '${flag}'`);
      expect(run.stderr).toContain(`Did you mean ${closest}?`);
    });
    const command = await weft('rn', 'job.js');
    expect(command.status).toBe(2);
    expect(command.stderr).toContain("unknown command 'rn'");
  });

  it('a bad flag value is a ConfigurationError naming the flag', async () => {
    const address = ['--address', 'redis://127.0.0.1:1'];
    const cases = [
      { args: ['run', 'examples/monte-carlo.js', '--workers', 'abc'], flag: '--workers' },
      { args: ['run', 'examples/monte-carlo.js', '--concurrency', '0'], flag: '--concurrency' },
      {
        args: [
          'run',
          'examples/monte-carlo.js',
          '--executor',
          'threads',
          '--concurrency',
          'Infinity',
        ],
        flag: '--concurrency',
      },
      {
        args: ['run', 'examples/monte-carlo.js', '--executor', 'synchronous', '--concurrency', '4'],
        flag: '--concurrency',
      },
      { args: ['run', 'examples/monte-carlo.js', '--dashboard', '--port', 'x'], flag: '--port' },
      { args: ['worker', ...address, '--concurrency', '0'], flag: '--concurrency' },
      { args: ['worker', ...address, '--pool-size', 'abc'], flag: '--pool-size' },
      { args: ['worker', ...address, '--pool', 'fibers'], flag: '--pool' },
      { args: ['dashboard', ...address, '--port', 'x'], flag: '--port' },
      { args: ['run', 'examples/monte-carlo.js'], flag: '' },
    ];
    // The last case: a bad WEFT_CONCURRENCY, which weft run reads too.
    const runs = await Promise.all(
      cases.map(({ args }, i) =>
        node([cli, ...args], {
          cwd: root,
          timeoutMs: 30_000,
          env: { ...process.env, ...(i === cases.length - 1 ? { WEFT_CONCURRENCY: '-1' } : {}) },
        }),
      ),
    );
    runs.forEach((run, i) => {
      expect(run.status, `${cases[i]!.args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toContain('ConfigurationError: ');
      expect(run.stderr).toContain(cases[i]!.flag || 'WEFT_CONCURRENCY');
    });
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
