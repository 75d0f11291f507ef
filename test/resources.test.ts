/**
 * core/resources.ts on its own: parsing (executor option, task tags and option, the worker's
 * --resources list) with the messages users see, the canonical signature, the rule for
 * "enough", the texts messages use, and ResourceLedger's accounting and admission queue.
 */
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  LocalPoolExecutor,
  ResourceUnavailableError,
  TaskDefinitionError,
  task,
} from 'weftjs';
import {
  ResourceLedger,
  describeOffer,
  describeOffers,
  formatResources,
  hasResources,
  noResources,
  parseResourceList,
  parseResourceSignature,
  parseResources,
  parseTaskResources,
  resourceSignature,
  resourcesLiteral,
  satisfies,
} from '../dist/core/resources.js';
import { thrown } from './helpers/util.js';

function messageOf(fn: () => unknown): string {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(Error);
  return (error as Error).message;
}

describe('parseResources (an executor option)', () => {
  it('copies an object of non-negative numbers; undefined stays undefined', () => {
    const given = { GPU: 2, mem: 0.5, idle: 0 };
    const parsed = parseResources(given, 'X resources');
    expect(parsed).toEqual({ GPU: 2, mem: 0.5, idle: 0 });
    expect(parsed).not.toBe(given);
    expect(parseResources(undefined, 'X resources')).toBeUndefined();
  });

  it('refuses what is not an object, and bad amounts, naming the option and key', () => {
    for (const [value, shown] of [
      [5, '5'],
      [null, 'null'],
      [[1], '1'],
      ['GPU=1', 'GPU=1'],
    ] as const) {
      const error = thrown(() => parseResources(value, 'LocalPoolExecutor resources'));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toBe(
        `LocalPoolExecutor resources must be an object like { GPU: 1 }, got ${shown}.`,
      );
    }
    for (const [amount, shown] of [
      [-1, '-1'],
      [Number.NaN, 'NaN'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
      ['1', '1'],
    ] as const) {
      expect(messageOf(() => parseResources({ ok: 1, GPU: amount }, 'P resources'))).toBe(
        `P resources.GPU must be a non-negative number, got ${shown}.`,
      );
    }
  });

  it('is what LocalPoolExecutor checks its resources option with', () => {
    const error = thrown(() => new LocalPoolExecutor({ resources: { GPU: -1 } }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toBe(
      'LocalPoolExecutor resources.GPU must be a non-negative number, got -1.',
    );
  });
});

describe('parseResourceList (weft worker --resources)', () => {
  it('parses KEY=NUM parts, trimming blanks and skipping empty parts', () => {
    expect(parseResourceList('GPU=2,mem=16')).toEqual({ GPU: 2, mem: 16 });
    expect(parseResourceList(' GPU = 2 , , mem=0.5 ,')).toEqual({ GPU: 2, mem: 0.5 });
    expect(parseResourceList('GPU=1,GPU=3')).toEqual({ GPU: 3 });
    expect(parseResourceList(' , ')).toEqual({});
  });

  it('refuses a part that is not KEY=NUM with a non-negative number, naming the part', () => {
    for (const part of ['GPU', '=1', 'GPU=x', 'GPU=-1', 'GPU=Infinity']) {
      const error = thrown(() => parseResourceList(`mem=1,${part}`));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toBe(
        `--resources: '${part}' is not KEY=NUM with a non-negative number; write e.g. --resources GPU=2,mem=16.`,
      );
    }
  });
});

describe('parseTaskResources (resource: tags and the resources option)', () => {
  it('merges tags with the option (the option wins), ignores other tags, drops zeros, freezes', () => {
    const parsed = parseTaskResources(
      ['resource:GPU=1', 'fast', 'resource: mem = 0.5 ', 'resource:disk=0', 'resource:TPU=4'],
      { TPU: 2, net: 0 },
      'resize',
    );
    expect(parsed).toEqual({ GPU: 1, mem: 0.5, TPU: 2 });
    expect(Object.isFrozen(parsed)).toBe(true);
  });

  it('gives every task that needs nothing the one shared noResources', () => {
    expect(parseTaskResources([], undefined, 't')).toBe(noResources);
    expect(parseTaskResources(['plain', 'resource:GPU=0'], { mem: 0 }, 't')).toBe(noResources);
    expect(task(function needsNothing() {}).options.resources).toBe(noResources);
    expect(task(function needsGpu() {}, { tags: ['resource:GPU=1'] }).options.resources).toEqual({
      GPU: 1,
    });
  });

  it('refuses a malformed tag with TaskDefinitionError naming the task and the tag', () => {
    for (const tag of ['resource:GPU', 'resource:GPU=x', 'resource:GPU=-1', 'resource:=1']) {
      const error = thrown(() => parseTaskResources(['plain', tag], undefined, 'resize'));
      expect(error).toBeInstanceOf(TaskDefinitionError);
      expect((error as Error).message).toBe(
        `Task 'resize': malformed resource tag '${tag}'. Write resource:KEY=NUM with a non-negative number, e.g. 'resource:GPU=1' or 'resource:mem=0.5'.`,
      );
    }
  });

  it('refuses a resources option that is not an object of non-negative numbers', () => {
    expect(messageOf(() => parseTaskResources([], [1], 'resize'))).toBe(
      `Task 'resize': resources must be an object like { GPU: 1 }, got an array.`,
    );
    expect(messageOf(() => parseTaskResources([], 'GPU', 'resize'))).toBe(
      `Task 'resize': resources must be an object like { GPU: 1 }, got the string "GPU".`,
    );
    expect(messageOf(() => parseTaskResources([], { GPU: '1' }, 'resize'))).toBe(
      `Task 'resize': resource 'GPU' must be a non-negative number, got the string "1".`,
    );
    expect(messageOf(() => parseTaskResources([], { GPU: -2 }, 'resize'))).toBe(
      `Task 'resize': resource 'GPU' must be a non-negative number, got number -2.`,
    );
    // Through task(), the name is the task's.
    const error = thrown(() => task(function blur() {}, { resources: { GPU: -1 } }));
    expect(error).toBeInstanceOf(TaskDefinitionError);
    expect((error as Error).message).toMatch(/^Task 'blur': resource 'GPU'/);
  });
});

describe('signatures, satisfies and the texts messages use', () => {
  it('writes a canonical signature: keys sorted, whatever their order', () => {
    expect(resourceSignature({ mem: 4, GPU: 1, b: 2 })).toBe('GPU=1,b=2,mem=4');
    expect(resourceSignature({ b: 2, GPU: 1, mem: 4 })).toBe('GPU=1,b=2,mem=4');
    expect(resourceSignature({})).toBe('');
    expect(resourceSignature(noResources)).toBe('');
    expect(parseResourceSignature('GPU=1,b=2,mem=0.5')).toEqual({ GPU: 1, b: 2, mem: 0.5 });
    expect(parseResourceSignature('')).toEqual({});
  });

  it('satisfies: enough of every needed resource, with slack for rounding only', () => {
    expect(satisfies({ GPU: 2, mem: 8 }, { GPU: 2 })).toBe(true);
    expect(satisfies({ GPU: 2, mem: 8 }, { GPU: 2, mem: 9 })).toBe(false);
    expect(satisfies({ GPU: 2 }, { TPU: 1 })).toBe(false);
    expect(satisfies({}, {})).toBe(true);
    expect(satisfies({}, noResources)).toBe(true);
    expect(satisfies({ mem: 0.3 }, { mem: 0.1 + 0.2 })).toBe(true);
    expect(satisfies({ mem: 0.3 }, { mem: 0.3001 })).toBe(false);
    // A resource named like an Object.prototype member is offered only when the offer says so.
    expect(satisfies({}, { constructor: 1 })).toBe(false);
    expect(satisfies({ constructor: 1 }, { constructor: 1 })).toBe(true);
    expect(hasResources(noResources)).toBe(false);
    expect(hasResources({})).toBe(false);
    expect(hasResources({ GPU: 1 })).toBe(true);
  });

  it('describes offers the way messages show them', () => {
    expect(describeOffer({ mem: 4, GPU: 1 })).toBe('GPU=1,mem=4');
    expect(describeOffer({})).toBe('no resources');
    expect(describeOffer({}, 'none')).toBe('none');
    expect(
      describeOffers([
        { name: 'gpu-1', resources: { GPU: 1 } },
        { name: 'cpu-1', resources: {} },
      ]),
    ).toBe('gpu-1: GPU=1; cpu-1: none');
    expect(describeOffers([])).toBe('no worker is connected');
    expect(formatResources({ mem: 4, GPU: 1 }, ', ')).toBe('mem=4, GPU=1');
    expect(formatResources({ mem: 4, GPU: 1 }, ',', true)).toBe('GPU=1,mem=4');
    expect(resourcesLiteral({ GPU: 1, mem: 0.5 })).toBe('{ GPU: 1, mem: 0.5 }');
  });
});

describe('ResourceLedger', () => {
  it('takes and releases amounts; fits only while enough is free', () => {
    const totals = { GPU: 2, mem: 8 };
    const ledger = new ResourceLedger(totals);
    totals.GPU = 100; // copied: the ledger keeps what it was given
    expect(ledger.totals).toEqual({ GPU: 2, mem: 8 });
    const need = { GPU: 1, mem: 3 };
    expect(ledger.fits(need)).toBe(true);
    ledger.take(need);
    ledger.take(need);
    expect(ledger.free('GPU')).toBe(0);
    expect(ledger.free('mem')).toBe(2);
    expect(ledger.fits(need)).toBe(false);
    expect(ledger.fits({ mem: 2 })).toBe(true);
    expect(ledger.fits(noResources)).toBe(true);
    ledger.release(need);
    expect(ledger.free('GPU')).toBe(1);
    expect(ledger.fits(need)).toBe(true);
    expect(ledger.freeSlots).toBe(Number.POSITIVE_INFINITY);
  });

  it('adds fractional amounts back without drifting short', () => {
    const ledger = new ResourceLedger({ mem: 1 });
    const tenth = { mem: 0.1 };
    for (let i = 0; i < 10; i++) ledger.take(tenth);
    for (let i = 0; i < 10; i++) ledger.release(tenth);
    expect(ledger.fits({ mem: 1 })).toBe(true);
    expect(ledger.free('mem')).toBeCloseTo(1, 12);
  });

  it('names the first resource the totals could never cover (shortfall)', () => {
    const ledger = new ResourceLedger({ GPU: 1, mem: 4 });
    ledger.take({ GPU: 1 });
    // Taken now, but within the totals: it could run later.
    expect(ledger.shortfall({ GPU: 1 })).toBeUndefined();
    expect(ledger.shortfall(noResources)).toBeUndefined();
    expect(ledger.shortfall({ GPU: 1, mem: 5 })).toEqual({ resource: 'mem', need: 5, offered: 4 });
    expect(ledger.shortfall({ TPU: 1e-12 })).toEqual({
      resource: 'TPU',
      need: 1e-12,
      offered: undefined,
    });
    expect(ledger.offered('TPU')).toBeUndefined();
    expect(ledger.offered('constructor')).toBeUndefined();
    expect(ledger.free('constructor')).toBe(0);
  });

  it('lists what a blocked need is short of, with totals and free amounts (for explain)', () => {
    const ledger = new ResourceLedger({ GPU: 1, mem: 8 });
    ledger.take({ GPU: 1, mem: 2 });
    expect(ledger.shortages({ GPU: 1, mem: 4, TPU: 1 })).toEqual([
      { resource: 'GPU', need: 1, offered: 1, free: 0 },
      { resource: 'TPU', need: 1, offered: undefined, free: 0 },
    ]);
    expect(ledger.shortages({ mem: 6 })).toEqual([]);
  });

  it('counts slots when asked: a need fits only while a slot is free', () => {
    const ledger = new ResourceLedger({ GPU: 4 }, { slots: 2 });
    ledger.take({ GPU: 1 });
    ledger.take(noResources);
    expect(ledger.freeSlots).toBe(0);
    expect(ledger.fits(noResources)).toBe(false);
    expect(ledger.fits({ GPU: 1 })).toBe(false);
    ledger.release(noResources);
    expect(ledger.fits({ GPU: 3 })).toBe(true);
    expect(ledger.fits({ GPU: 4 })).toBe(false);
  });

  it('admits waiters first come first served, each as soon as it fits', async () => {
    const ledger = new ResourceLedger({ GPU: 2 }, { slots: 3 });
    const order: string[] = [];
    const admit = (name: string, need: Record<string, number>): Promise<void> =>
      ledger.admit(need).then(() => void order.push(name));
    const a = admit('a', { GPU: 2 });
    await a;
    expect(ledger.free('GPU')).toBe(0);
    const b = admit('b', { GPU: 2 });
    const c = admit('c', { GPU: 1 });
    // d would fit a slot on its own, but others came first: it waits behind them.
    const d = admit('d', noResources);
    await Promise.resolve();
    expect(order).toEqual(['a']);
    expect(ledger.waiting).toBe(3);
    // b needs both GPUs: it stays while c (one GPU) and d go ahead, in arrival order.
    ledger.take({ GPU: 1 });
    ledger.release({ GPU: 2 });
    await Promise.all([c, d]);
    expect(order).toEqual(['a', 'c', 'd']);
    expect(ledger.waiting).toBe(1);
    expect(ledger.freeSlots).toBe(0);
    ledger.release({ GPU: 1 });
    ledger.release({ GPU: 1 });
    ledger.release(noResources);
    await b;
    expect(order).toEqual(['a', 'c', 'd', 'b']);
    expect(ledger.free('GPU')).toBe(0);
    expect(ledger.waiting).toBe(0);
  });
});

describe('the scheduler refuses at submit what its ledger could never cover', () => {
  it('with the message naming the task, the resource, the executor and its offer', async () => {
    // Named explicitly: vitest's esbuild renames a function shadowed by its const (`needsTwo2`).
    const needsTwo = task(function needsTwo() {}, { name: 'needsTwo', resources: { GPU: 2 } });
    const needsTpu = task(function needsTpu() {}, { tags: ['resource:TPU=1'] });
    const fits = task(() => 'ran', { name: 'fits', resources: { GPU: 1 } });
    await new LocalPoolExecutor({ scheduler: 'synchronous', resources: { mem: 4, GPU: 1 } }).start(
      async (pool) => {
        const error = thrown(() => pool.submit(needsTwo));
        expect(error).toBeInstanceOf(ResourceUnavailableError);
        expect((error as Error).message).toBe(
          "Task 'needsTwo' needs resource GPU=2, but LocalPoolExecutor (synchronous) offers GPU=1 (it offers mem=4, GPU=1), so it could never run. Pass resources: { GPU: 2 } to the executor, or lower the task's requirement.",
        );
        expect(messageOf(() => pool.submit(needsTpu))).toContain(
          'offers no TPU (it offers mem=4, GPU=1)',
        );
        expect(await pool.submit(fits)).toBe('ran');
      },
    );
    await new LocalPoolExecutor({ scheduler: 'synchronous' }).start(async (pool) => {
      expect(messageOf(() => pool.submit(needsTpu))).toContain(
        'offers no TPU (it offers no resources)',
      );
    });
  });
});
