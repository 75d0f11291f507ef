/**
 * Resources, in one place: parsing them (an executor's `resources` option, a task's
 * `resource:KEY=NUM` tags and `resources` option, `weft worker --resources GPU=2,mem=16`), the
 * canonical signature a cluster routes tasks by (`GPU=1,mem=4`), the one rule for "enough", the text
 * messages show, and `ResourceLedger`, which accounts for what is free.
 *
 * Resources are abstract amounts by name: weft never measures a GPU, it only counts. A task
 * holds its resources from the start of an attempt to its end.
 */
import { ConfigurationError, TaskDefinitionError } from './errors.js';
import { describeValue } from './options.js';

/** Amounts by resource name, e.g. `{ GPU: 1, mem: 16 }`. Amounts are finite and non-negative. */
export type Resources = Readonly<Record<string, number>>;

/**
 * What a task that needs nothing holds: every such task of this copy of weft shares this object,
 * so the scheduler's per-task checks cost one comparison in the common case.
 */
export const noResources: Resources = Object.freeze({});

/**
 * Slack in every comparison of amounts: fractional amounts taken and given back in another order
 * do not add up exactly (0.1 + 0.2 > 0.3), and a task must not wait forever for 1e-17 of a GPU.
 */
const epsilon = 1e-9;

// ---- parsing --------------------------------------------------------------------------------

/**
 * Validates a `resources` option of an executor: an object of finite, non-negative numbers.
 * Returns a copy (undefined when `value` is); throws `ConfigurationError` naming `source`
 * (`LocalPoolExecutor resources`) and the bad key.
 */
export function parseResources(value: unknown, source: string): Record<string, number> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigurationError(
      `${source} must be an object like { GPU: 1 }, got ${String(value)}.`,
    );
  }
  const out: Record<string, number> = {};
  for (const [key, amount] of Object.entries(value)) {
    if (!isAmount(amount)) {
      throw new ConfigurationError(
        `${source}.${key} must be a non-negative number, got ${String(amount)}.`,
      );
    }
    out[key] = amount;
  }
  return out;
}

/**
 * Parses `weft worker --resources` text, `GPU=2,mem=16`, into `{ GPU: 2, mem: 16 }` (blank parts
 * are skipped, a repeated key keeps its last amount); throws `ConfigurationError` naming the part
 * that is not `KEY=NUM` with a non-negative number.
 */
export function parseResourceList(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? '' : part.slice(0, eq).trim();
    const amount = eq < 0 ? NaN : Number(part.slice(eq + 1));
    if (!key || !isAmount(amount)) {
      throw new ConfigurationError(
        `--resources: '${part}' is not KEY=NUM with a non-negative number; write e.g. --resources GPU=2,mem=16.`,
      );
    }
    out[key] = amount;
  }
  return out;
}

const resourceTag = /^resource:(.*)$/;

/**
 * A task's resources: its `resource:KEY=NUM` tags merged with its `resources` option (the option
 * wins over a tag of the same key), zero amounts dropped, frozen; `noResources` when nothing is
 * left. Other tags are ignored. Throws `TaskDefinitionError` starting `Task '<taskName>': `,
 * naming the malformed tag or the bad key.
 * @example parseTaskResources(['resource:GPU=1', 'fast'], { mem: 4 }, 'resize') // { GPU: 1, mem: 4 }
 */
export function parseTaskResources(
  tags: readonly string[],
  option: unknown,
  taskName: string,
): Resources {
  const fail = (what: string): never => {
    throw new TaskDefinitionError(`Task '${taskName}': ${what}`);
  };
  const resources: Record<string, number> = {};
  for (const tag of tags) {
    const match = resourceTag.exec(tag);
    if (!match) continue;
    const body = match[1] ?? '';
    const eq = body.indexOf('=');
    const key = eq < 0 ? '' : body.slice(0, eq).trim();
    const raw = eq < 0 ? '' : body.slice(eq + 1).trim();
    const amount = raw === '' ? NaN : Number(raw);
    if (!key || !isAmount(amount)) {
      fail(
        `malformed resource tag '${tag}'. Write resource:KEY=NUM with a non-negative number, e.g. 'resource:GPU=1' or 'resource:mem=0.5'.`,
      );
    }
    resources[key] = amount;
  }
  if (option !== undefined) {
    if (typeof option !== 'object' || option === null || Array.isArray(option)) {
      fail(`resources must be an object like { GPU: 1 }, got ${describeValue(option)}.`);
    }
    for (const [key, amount] of Object.entries(option as object)) {
      if (!isAmount(amount)) {
        fail(`resource '${key}' must be a non-negative number, got ${describeValue(amount)}.`);
      }
      resources[key] = amount as number;
    }
  }
  let any = false;
  for (const key of Object.keys(resources)) {
    if (resources[key] === 0) delete resources[key];
    else any = true;
  }
  return any ? Object.freeze(resources) : noResources;
}

function isAmount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

// ---- comparing and describing ---------------------------------------------------------------

/** True when `resources` names at least one resource. */
export function hasResources(resources: Resources): boolean {
  if (resources === noResources) return false;
  for (const _ in resources) return true;
  return false;
}

/**
 * The canonical signature of an amount set: keys sorted, `KEY=NUM` joined by commas
 * (`GPU=1,mem=4`); '' for none. A cluster names a task queue by the signature of what its tasks
 * need, so two tasks needing the same amounts share a queue.
 */
export function resourceSignature(resources: Resources): string {
  if (resources === noResources) return '';
  return formatResources(resources, ',', true);
}

/** The inverse of `resourceSignature`: `GPU=1,mem=4` to `{ GPU: 1, mem: 4 }`; '' to `{}`. */
export function parseResourceSignature(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!text) return out;
  for (const part of text.split(',')) {
    const eq = part.lastIndexOf('=');
    out[part.slice(0, eq)] = Number(part.slice(eq + 1));
  }
  return out;
}

/** True when `offer` has at least `need` of every resource (within a rounding slack of 1e-9). */
export function satisfies(offer: Resources, need: Resources): boolean {
  if (need === noResources) return true;
  for (const key in need) if (amountIn(offer, key) + epsilon < need[key]!) return false;
  return true;
}

/**
 * `KEY=NUM` pairs joined by `separator`, in the object's own key order unless `sorted`:
 * `formatResources({ mem: 4, GPU: 1 }, ', ')` is `mem=4, GPU=1`. '' for none.
 */
export function formatResources(resources: Resources, separator = ',', sorted = false): string {
  const keys = Object.keys(resources);
  if (sorted) keys.sort();
  return keys.map((k) => `${k}=${resources[k]}`).join(separator);
}

/** What one offer amounts to in a message: its `resourceSignature`, or `none` when it offers nothing. */
export function describeOffer(offer: Resources, none = 'no resources'): string {
  return resourceSignature(offer) || none;
}

/**
 * What a set of workers offers, for messages: `gpu-1: GPU=1; cpu-1: none`, or
 * `no worker is connected` for an empty set.
 */
export function describeOffers(workers: readonly { name: string; resources: Resources }[]): string {
  return (
    workers.map((w) => `${w.name}: ${describeOffer(w.resources, 'none')}`).join('; ') ||
    'no worker is connected'
  );
}

/** Resources as an options literal for a hint in a message: `{ GPU: 1, mem: 4 }`. */
export function resourcesLiteral(resources: Resources): string {
  return `{ ${Object.entries(resources)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')} }`;
}

function amountIn(offer: Resources, key: string): number {
  // Own keys only: a resource named `constructor` is not Object.prototype's.
  return Object.hasOwn(offer, key) ? offer[key]! : 0;
}

// ---- accounting -----------------------------------------------------------------------------

/** A resource a task needs more of than its ledger has: what explain says it waits for. */
export interface ResourceShortage {
  resource: string;
  /** What the task needs. */
  need: number;
  /** The ledger's total of it; undefined when the ledger does not offer it at all. */
  offered: number | undefined;
  /** What is free now. */
  free: number;
}

export interface ResourceLedgerOptions {
  /**
   * How many holders may take from the ledger at once, whatever they need (a positive integer:
   * a cluster worker's concurrency); every `take` uses one slot and every `release` gives one
   * back. Default:
   * unlimited, for an owner that counts its slots elsewhere (the scheduler asks its runtime).
   */
  slots?: number;
}

/**
 * The totals an owner offers and what is free of them, taken by tasks as they start and given
 * back as they end. The scheduler asks `fits` before it starts a task and holds the task back
 * when it does not; a cluster worker, which must wait, uses `admit`: a first-come-first-served
 * queue that admits each waiter as soon as it fits.
 *
 * Amounts go negative only if the owner takes what does not fit; `fits` is the owner's check.
 * `noResources`, what every task without resources needs (the common case), costs one
 * comparison in `fits`, `take` and `release`.
 * @example
 * const ledger = new ResourceLedger({ GPU: 1 });
 * if (ledger.fits(need)) { ledger.take(need); run(task).finally(() => ledger.release(need)); }
 */
export class ResourceLedger {
  readonly #totals: Resources;
  /** Free amount by resource; a Map so that no resource name can hit Object.prototype. */
  readonly #free = new Map<string, number>();
  /** Slots not taken, when counted; untouched otherwise (a double Infinity costs ~10 ns a write). */
  #slots: number;
  readonly #countsSlots: boolean;
  /** Waiters of `admit`, in arrival order; each is admitted (and takes) as soon as it fits. */
  readonly #waiters: { need: Resources; admitted: () => void }[] = [];

  /** `totals` is copied: changing the object later changes nothing here. */
  constructor(totals: Resources, options: ResourceLedgerOptions = {}) {
    this.#totals = Object.freeze({ ...totals });
    for (const key of Object.keys(totals)) this.#free.set(key, totals[key]!);
    this.#countsSlots = options.slots !== undefined;
    this.#slots = options.slots ?? 0;
  }

  /** What the ledger offers in all (a frozen copy, in the order given). */
  get totals(): Resources {
    return this.#totals;
  }

  /** Slots not taken (Infinity when slots are not counted). */
  get freeSlots(): number {
    return this.#countsSlots ? this.#slots : Number.POSITIVE_INFINITY;
  }

  /** Waiters of `admit` not admitted yet. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** The total of `resource`; undefined when the ledger does not offer it. */
  offered(resource: string): number | undefined {
    return Object.hasOwn(this.#totals, resource) ? this.#totals[resource] : undefined;
  }

  /** What is free of `resource` now (0 for one the ledger does not offer). */
  free(resource: string): number {
    return this.#free.get(resource) ?? 0;
  }

  /**
   * The first resource of `need` the totals could never cover, with what is offered of it;
   * undefined when the task could run once enough is free. Submit-time checks throw on it.
   */
  shortfall(
    need: Resources,
  ): { resource: string; need: number; offered: number | undefined } | undefined {
    if (need === noResources) return undefined;
    for (const resource in need) {
      const offered = this.offered(resource);
      if (offered === undefined || offered + epsilon < need[resource]!)
        return { resource, need: need[resource]!, offered };
    }
    return undefined;
  }

  /** True when a slot and enough of every resource of `need` are free now. */
  fits(need: Resources): boolean {
    if (this.#countsSlots && this.#slots < 1) return false;
    if (need === noResources) return true;
    for (const key in need) if ((this.#free.get(key) ?? 0) + epsilon < need[key]!) return false;
    return true;
  }

  /** Takes a slot and `need`; the caller checked `fits`. */
  take(need: Resources): void {
    if (this.#countsSlots) this.#slots--;
    if (need === noResources) return;
    for (const key in need) this.#free.set(key, (this.#free.get(key) ?? 0) - need[key]!);
  }

  /** Gives back a slot and `need` (what one `take` took); admits waiters of `admit` that now fit. */
  release(need: Resources): void {
    if (this.#countsSlots) this.#slots++;
    if (need !== noResources)
      for (const key in need) this.#free.set(key, (this.#free.get(key) ?? 0) + need[key]!);
    if (this.#waiters.length > 0) this.#admitWaiters();
  }

  /**
   * Resolves once `need` and a slot are taken for the caller, who must `release(need)` when
   * done. First come, first served: while others wait, a newcomer waits too, even if it fits;
   * when something is released, every waiter that fits is admitted, in arrival order (a large
   * need does not hold back smaller ones behind it). Call only with needs `shortfall` accepts:
   * one the totals can never cover waits forever.
   */
  admit(need: Resources): Promise<void> {
    return new Promise((admitted) => {
      if (this.#waiters.length === 0 && this.fits(need)) {
        this.take(need);
        admitted();
      } else this.#waiters.push({ need, admitted });
    });
  }

  /**
   * The resources of `need` that are short now, with their totals and free amounts (what
   * `explain` says a blocked task waits for); empty when `need` fits.
   */
  shortages(need: Resources): ResourceShortage[] {
    const out: ResourceShortage[] = [];
    if (need === noResources) return out;
    for (const resource in need) {
      const free = this.free(resource);
      if (free + epsilon >= need[resource]!) continue;
      out.push({ resource, need: need[resource]!, offered: this.offered(resource), free });
    }
    return out;
  }

  #admitWaiters(): void {
    for (let i = 0; i < this.#waiters.length;) {
      const waiter = this.#waiters[i]!;
      if (this.fits(waiter.need)) {
        this.#waiters.splice(i, 1);
        this.take(waiter.need);
        waiter.admitted();
      } else i++;
    }
  }
}
