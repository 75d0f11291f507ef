/**
 * Smoke test of the published shape: `npm pack`, install the tarball in a fresh project, import
 * 'weftjs' by name, run tasks on threads and processes (so the worker entry files must be in the
 * package), and run the `weft` binary from node_modules/.bin. Broken `exports`, `files` or `bin`
 * fail here.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('the packed package', () => {
  it(
    'installs and works by its name, with its bin and worker entry files',
    { timeout: 120_000 },
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'weft-pack-'));
      const packed = execFileSync('npm', ['pack', '--pack-destination', dir, '--silent'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      })
        .trim()
        .split('\n')
        .pop()!;
      expect(packed).toMatch(/^weftjs-.*\.tgz$/);
      const app = join(dir, 'app');
      mkdirSync(app);
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }),
      );
      execFileSync(
        'npm',
        ['install', '--no-audit', '--no-fund', '--prefer-offline', '--silent', join(dir, packed)],
        { cwd: app, stdio: ['ignore', 'ignore', 'inherit'], timeout: 90_000 },
      );
      writeFileSync(
        join(app, 'tasks.js'),
        `import { task } from 'weftjs';\nexport const square = task(function square(x) { return x * x; });\n`,
      );
      writeFileSync(
        join(app, 'main.js'),
        `import { LocalPoolExecutor, LocalExecutor, WorkerCrashedError } from 'weftjs';
         import { square } from './tasks.js';
         const out = [];
         for (const scheduler of ['threads', 'processes']) {
           out.push(await new LocalPoolExecutor({ scheduler, workers: 2 }).start(async (ex) => {
             const values = await ex.wait(ex.map(square, [1, 2, 3]));
             const plain = await ex.submit((a, b) => a - b, 10, 4);
             return [...values, plain];
           }));
         }
         out.push(await new LocalExecutor().start((ex) => ex.submit(square, 4)));
         out.push(typeof WorkerCrashedError);
         console.log(JSON.stringify(out));`,
      );
      const output = execFileSync(process.execPath, ['main.js'], {
        cwd: app,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(output.trim()).toBe('[[1,4,9,6],[1,4,9,6],16,"function"]');
      const help = execFileSync(join(app, 'node_modules/.bin/weft'), ['--help'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      for (const command of ['run', 'worker']) expect(help).toContain(command);
      expect(help).toMatch(/usage/i);
    },
  );
});
