/**
 * Options: unknown keys are errors naming the closest valid key, every option is validated in
 * the constructor (the dashboard's included), `concurrency` on every executor and in
 * `WEFT_CONCURRENCY`, `WEFT_DEBUG` parsed one way, and `LocalExecutor({ concurrency })` keeping
 * queued tasks pending until a slot frees.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DistributedExecutor,
  LocalExecutor,
  LocalPoolExecutor,
  TaskDefinitionError,
  defaultExecutor,
  progress,
  task,
  type DashboardOption,
  type LocalExecutorOptions,
  type ProgressOptions,
} from 'weftjs';
import { readEnvironment } from '../dist/core/config.js';
import { closestName, editDistance, optionDefaults } from '../dist/core/options.js';
import { add } from './fixtures/tasks.js';
import { rejection, thrown } from './helpers/util.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const saved = { ...process.env };

/** Runs an ES module snippet with node in the repository (so `weftjs` resolves); stderr and code. */
function runSnippet(
  source: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 60_000,
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
afterEach(() => {
  process.env = { ...saved };
});

/** The error a constructor call throws, checked to be a ConfigurationError. */
function configurationError(call: () => unknown): string {
  const error = thrown(call);
  expect(error).toBeInstanceOf(ConfigurationError);
  expect((error as ConfigurationError).code).toBe('CONFIGURATION');
  return (error as Error).message;
}

describe('unknown option keys', () => {
  it('LocalPoolExecutor({ schedular }) names the key and suggests `scheduler`', () => {
    const message = configurationError(
      () => new LocalPoolExecutor({ schedular: 'processes' } as never),
    );
    expect(message).toContain('`schedular`');
    expect(message).toContain('did you mean `scheduler`?'.replace('did', 'Did'));
  });

  it('DistributedExecutor({ adress }) suggests `address` instead of starting a local cluster', () => {
    const message = configurationError(
      () => new DistributedExecutor({ adress: 'redis://127.0.0.1:6379' } as never),
    );
    expect(message).toContain('`adress`');
    expect(message).toContain('Did you mean `address`?');
  });

  it('LocalExecutor, the dashboard option and resourceLimits refuse unknown keys', () => {
    expect(configurationError(() => new LocalExecutor({ concurency: 2 } as never))).toContain(
      'Did you mean `concurrency`?',
    );
    expect(
      configurationError(() => new LocalExecutor({ dashboard: { prot: 8080 } } as never)),
    ).toContain('Did you mean `port`?');
    expect(
      configurationError(
        () => new LocalPoolExecutor({ dashboard: { hots: '127.0.0.1' } } as never),
      ),
    ).toContain('Did you mean `host`?');
    expect(
      configurationError(
        () => new LocalPoolExecutor({ resourceLimits: { maxOldGenerationSizeMB: 64 } } as never),
      ),
    ).toContain('Did you mean `maxOldGenerationSizeMb`?');
    expect(configurationError(() => new DistributedExecutor({ wokers: 2 } as never))).toContain(
      'Did you mean `workers`?',
    );
  });

  it('a key with no close match lists the valid ones', () => {
    const message = configurationError(() => new LocalExecutor({ zzzzzzzz: 1 } as never));
    expect(message).not.toContain('Did you mean');
    expect(message).toContain('concurrency, dashboard');
  });

  it('task(fn, { retry: 3 }) throws TaskDefinitionError suggesting `retries`', () => {
    const error = thrown(() => task((x: number) => x, { retry: 3 } as never));
    expect(error).toBeInstanceOf(TaskDefinitionError);
    expect((error as Error).message).toContain('`retry`');
    expect((error as Error).message).toContain('Did you mean `retries`?');
    const timeout = thrown(() => task({ timeout: 5 } as never, (x: number) => x));
    expect((timeout as Error).message).toContain('Did you mean `timeoutMs`?');
  });

  it('progress() rejects with ConfigurationError for an unknown key or a bad value', async () => {
    const ex = await new LocalExecutor().start();
    try {
      const futures = [ex.submit(add, 1, 2)];
      const unknown = await rejection(progress(futures, { lable: 'x' } as ProgressOptions));
      expect(unknown).toBeInstanceOf(ConfigurationError);
      expect((unknown as Error).message).toContain('Did you mean `label`?');
      const badLabel = await rejection(progress(futures, { label: 5 as never }));
      expect(badLabel).toBeInstanceOf(ConfigurationError);
      const badSignal = await rejection(progress(futures, { signal: 'stop' as never }));
      expect(badSignal).toBeInstanceOf(ConfigurationError);
    } finally {
      await ex.shutdown();
    }
  });

  it('the edit distance counts insertions, deletions, substitutions and transpositions', () => {
    expect(editDistance('adress', 'address')).toBe(1);
    expect(editDistance('schedular', 'scheduler')).toBe(1);
    expect(editDistance('sceduler', 'scheduler')).toBe(1);
    expect(editDistance('wrokers', 'workers')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
    expect(closestName('retry', ['name', 'retries', 'retryDelayMs'])).toBe('retries');
    expect(closestName('qqqq', ['name', 'retries'])).toBeUndefined();
  });
});

describe('option values are validated in the constructor', () => {
  it('dashboard: port an integer 0..65535, host a string', () => {
    const bad: DashboardOption[] = [
      { port: 70_000 },
      { port: -1 },
      { port: 1.5 },
      { port: '8080' as never },
      { host: 42 as never },
      { host: 'not a host' },
      'yes' as never,
    ];
    for (const dashboard of bad) {
      configurationError(() => new LocalExecutor({ dashboard }));
      configurationError(() => new LocalPoolExecutor({ dashboard }));
      configurationError(() => new DistributedExecutor({ dashboard }));
    }
    expect(() => new LocalExecutor({ dashboard: { port: 8787, host: 'localhost' } })).not.toThrow();
    expect(() => new LocalExecutor({ dashboard: false })).not.toThrow();
  });

  it('DistributedExecutor: debug and localProcesses are booleans, prefix a string', () => {
    configurationError(() => new DistributedExecutor({ debug: 'yes' as never }));
    configurationError(() => new DistributedExecutor({ localProcesses: 1 as never }));
    configurationError(() => new DistributedExecutor({ prefix: 42 as never }));
  });

  it('the grace period has one default', () => {
    expect(optionDefaults.graceMs).toBe(1000);
  });
});

describe('concurrency', () => {
  it('is a positive integer (Infinity too on LocalExecutor); anything else names the option and range', () => {
    for (const concurrency of [0, -1, 1.5, Number.NaN, '2' as never, null as never]) {
      expect(configurationError(() => new LocalExecutor({ concurrency }))).toMatch(
        /LocalExecutor concurrency must be a positive integer or Infinity/,
      );
      expect(configurationError(() => new LocalPoolExecutor({ concurrency }))).toMatch(
        /LocalPoolExecutor concurrency must be a positive integer/,
      );
      expect(configurationError(() => new DistributedExecutor({ concurrency }))).toMatch(
        /DistributedExecutor concurrency must be a positive integer/,
      );
    }
    expect(configurationError(() => new LocalPoolExecutor({ concurrency: Infinity }))).toContain(
      'positive integer',
    );
    expect(configurationError(() => new DistributedExecutor({ concurrency: Infinity }))).toContain(
      'positive integer',
    );
    const options: LocalExecutorOptions = { concurrency: Infinity };
    expect(() => new LocalExecutor(options)).not.toThrow();
    expect(() => new LocalPoolExecutor({ workers: 2, concurrency: 50 })).not.toThrow();
    expect(() => new DistributedExecutor({ concurrency: 8 })).not.toThrow();
  });

  it("the 'synchronous' scheduler takes only concurrency 1", () => {
    expect(
      configurationError(() => new LocalPoolExecutor({ scheduler: 'synchronous', concurrency: 2 })),
    ).toMatch(/synchronous.*one task at a time/);
    expect(() => new LocalPoolExecutor({ scheduler: 'synchronous', concurrency: 1 })).not.toThrow();
  });

  it(
    'LocalExecutor({ concurrency: 2 }): the rest wait pending and start in priority, then submission, order',
    { timeout: 20_000 },
    async () => {
      const ex = await new LocalExecutor({ concurrency: 2 }).start();
      const started: string[] = [];
      const release = new Map<string, () => void>();
      const hold = (name: string): Promise<string> =>
        new Promise((resolve) => {
          started.push(name);
          release.set(name, () => resolve(name));
        });
      const urgent = task(
        function urgent(name: string) {
          return hold(name);
        },
        { priority: 5 },
      );
      try {
        const a = ex.submit(hold, 'a');
        const b = ex.submit(hold, 'b');
        const c = ex.submit(hold, 'c');
        const d = ex.submit(hold, 'd');
        const u = ex.submit(urgent, 'u');
        expect([a, b, c, d, u].map((f) => f.status)).toEqual([
          'running',
          'running',
          'pending',
          'pending',
          'pending',
        ]);
        expect(started).toEqual(['a', 'b']);

        release.get('a')!();
        expect(await a).toBe('a');
        // The freed slot goes to the highest priority, not the oldest submission.
        expect(started).toEqual(['a', 'b', 'u']);
        expect([c.status, d.status, u.status]).toEqual(['pending', 'pending', 'running']);

        release.get('b')!();
        await b;
        expect(started).toEqual(['a', 'b', 'u', 'c']);
        release.get('u')!();
        await u;
        expect(started).toEqual(['a', 'b', 'u', 'c', 'd']);
        release.get('c')!();
        release.get('d')!();
        expect(await ex.wait([c, d])).toEqual(['c', 'd']);
      } finally {
        for (const open of release.values()) open();
        await ex.shutdown();
      }
    },
  );

  it('a synchronous task on LocalExecutor({ concurrency: 1 }) still settles inside submit', async () => {
    await new LocalExecutor({ concurrency: 1 }).start((ex) => {
      const f = ex.submit(add, 2, 3);
      expect(f.status).toBe('finished');
      const g = ex.submit(add, 4, 5);
      expect(g.status).toBe('finished');
    });
  });

  it('LocalPoolExecutor({ concurrency }) runs its tasks', { timeout: 30_000 }, async () => {
    const sums = await new LocalPoolExecutor({ workers: 1, concurrency: 4 }).start((ex) =>
      ex.wait(ex.map(add, [1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60])),
    );
    expect(sums).toEqual([11, 22, 33, 44, 55, 66]);
  });
});

describe('environment', () => {
  it("WEFT_CONCURRENCY sets defaultExecutor()'s concurrency; a bad value is a ConfigurationError", async () => {
    process.env.WEFT_CONCURRENCY = '2';
    delete process.env.WEFT_EXECUTOR;
    const ex = defaultExecutor();
    expect(ex).toBeInstanceOf(LocalExecutor);
    await ex.start();
    try {
      const gates: (() => void)[] = [];
      const hold = (): Promise<void> => new Promise((resolve) => gates.push(resolve));
      const futures = [ex.submit(hold), ex.submit(hold), ex.submit(hold)];
      expect(futures.map((f) => f.status)).toEqual(['running', 'running', 'pending']);
      gates[0]!();
      await futures[0];
      expect(futures[2]!.status).toBe('running');
      for (const open of gates) open();
      await ex.wait(futures);
    } finally {
      await ex.shutdown();
    }

    for (const bad of ['0', '-3', '1.5', 'lots', '2x']) {
      process.env.WEFT_CONCURRENCY = bad;
      const message = configurationError(() => defaultExecutor());
      expect(message).toContain('WEFT_CONCURRENCY');
      expect(message).toContain(JSON.stringify(bad));
    }
    process.env.WEFT_CONCURRENCY = 'Infinity';
    expect(defaultExecutor()).toBeInstanceOf(LocalExecutor);
    process.env.WEFT_EXECUTOR = 'threads';
    expect(configurationError(() => defaultExecutor())).toContain('WEFT_CONCURRENCY');
    process.env.WEFT_EXECUTOR = 'synchronous';
    process.env.WEFT_CONCURRENCY = '4';
    expect(configurationError(() => defaultExecutor())).toContain('WEFT_CONCURRENCY');
    process.env.WEFT_CONCURRENCY = '1';
    expect(defaultExecutor()).toBeInstanceOf(LocalPoolExecutor);
    process.env.WEFT_EXECUTOR = 'processes';
    process.env.WEFT_CONCURRENCY = '8';
    expect(defaultExecutor()).toBeInstanceOf(LocalPoolExecutor);
  });

  it('WEFT_DEBUG: 0/false/no/off/empty are off, 1/true/yes/on are on, anything else is an error', () => {
    for (const off of ['0', 'false', 'FALSE', 'no', 'off', '', ' ']) {
      expect(readEnvironment({ WEFT_DEBUG: off }).debug).toBe(false);
    }
    expect(readEnvironment({}).debug).toBe(false);
    for (const on of ['1', 'true', 'True', 'yes', 'on', ' on ']) {
      expect(readEnvironment({ WEFT_DEBUG: on }).debug).toBe(true);
    }
    for (const bad of ['2', 'enabled', 'verbose']) {
      expect(() => readEnvironment({ WEFT_DEBUG: bad })).toThrow(/WEFT_DEBUG/);
    }
    process.env.WEFT_DEBUG = 'maybe';
    expect(configurationError(() => new DistributedExecutor())).toContain('WEFT_DEBUG');
    // An explicit option wins and never reads the variable.
    expect(() => new DistributedExecutor({ debug: false })).not.toThrow();
  });
  it(
    'WEFT_DEBUG=0 keeps local-cluster workers quiet (threads and processes); WEFT_DEBUG=1 makes them log; they get the concurrency',
    { timeout: 120_000 },
    async () => {
      for (const localProcesses of [false, true]) {
        const source = `import { DistributedExecutor } from 'weftjs';
          const n = await new DistributedExecutor({ workers: 1, concurrency: 3, localProcesses: ${localProcesses} })
            .start((ex) => ex.submit((a) => a + 1, 1));
          if (n !== 2) process.exit(3);`;
        const off = await runSnippet(source, { WEFT_DEBUG: '0' });
        expect(off.code, off.stderr).toBe(0);
        expect(off.stderr).not.toContain('[weft]');
        const on = await runSnippet(source, { WEFT_DEBUG: '1' });
        expect(on.code, on.stderr).toBe(0);
        // The worker's own line, not only the executor's; it got the executor's concurrency.
        expect(on.stderr).toMatch(/\[weft\] worker local-1 joined .*concurrency 3\b/);
      }
    },
  );
});
