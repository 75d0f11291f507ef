/**
 * `task()`: wraps a function with options and records where it was defined, so a worker thread,
 * a child process or a remote worker can import that module and find the same task by name.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { TaskDefinitionError } from './errors.js';
import { checkOptionKeys, describeValue, optionDefaults, optionKeys } from './options.js';
import { parseTaskResources } from './resources.js';
import type { AnyFunction, ResolvedTaskOptions, Task, TaskOptions } from './types.js';

/** Brand shared by every copy of weft's modules (a tsx-loaded task module may get its own). */
export const taskSymbol = Symbol.for('weft.task');

/** What weft knows about a task, attached to the `Task` under `taskSymbol`. */
export interface TaskDefinition {
  fn: AnyFunction;
  options: ResolvedTaskOptions;
  /** `file:` URL of the defining module, without query or hash; absent for plain functions. */
  moduleUrl: string | undefined;
}

interface RegistryEntry {
  definition: TaskDefinition;
  /** Where in the module it was defined: a re-evaluation of the same line is not a duplicate. */
  site: string;
}

const registrySymbol = Symbol.for('weft.taskRegistry');
const globals = globalThis as unknown as Record<symbol, Map<string, Map<string, RegistryEntry>>>;
/** Tasks by module URL and name, filled as modules that call `task()` are evaluated. */
const registry: Map<string, Map<string, RegistryEntry>> = (globals[registrySymbol] ??= new Map());

/**
 * Defines a task: a function plus how to run it (retries, timeout, resources, priority).
 * Defined at the top level of a module, it can run on every executor: workers import the module
 * and find the task by name. Calling the task runs the function inline.
 * @example
 * export const resize = task(async function resize(path: string, width: number) { ... },
 *   { retries: 2, timeoutMs: 30_000, tags: ['resource:GPU=1'] });
 */
export function task<F extends AnyFunction>(fn: F, options?: TaskOptions): Task<F>;
export function task<F extends AnyFunction>(options: TaskOptions, fn: F): Task<F>;
export function task<F extends AnyFunction>(a: F | TaskOptions, b?: TaskOptions | F): Task<F> {
  const [fn, options] = typeof a === 'function' ? [a, b] : [b, a];
  if (typeof fn !== 'function') {
    throw new TaskDefinitionError(
      `task() needs a function, but got ${describeValue(fn)}. Pass the function to run: task(fn, options) or task(options, fn).`,
    );
  }
  if (isTask(fn)) return fn as Task<F>;
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TaskDefinitionError(
      `task() options must be an object, but got ${describeValue(options)}.`,
    );
  }
  const site = callerSite();
  const resolved = resolveTaskOptions(fn, options ?? {}, site);
  const definition: TaskDefinition = { fn, options: resolved, moduleUrl: site?.url };
  if (site) register(definition, site);

  const wrapper = function (this: unknown, ...args: unknown[]): unknown {
    return fn.apply(this, args);
  };
  Object.defineProperties(wrapper, {
    name: { value: resolved.name },
    taskName: { value: resolved.name, enumerable: true },
    options: { value: Object.freeze(resolved), enumerable: true },
    [taskSymbol]: { value: definition },
  });
  return wrapper as unknown as Task<F>;
}

/** True for a value made by `task()` (from any copy of weft). */
export function isTask(value: unknown): value is Task {
  return typeof value === 'function' && taskSymbol in value;
}

/** The definition behind a task, or an ad-hoc one for a plain function. */
export function definitionOf(fn: AnyFunction): TaskDefinition {
  const existing = (fn as unknown as Record<symbol, TaskDefinition | undefined>)[taskSymbol];
  if (existing) return existing;
  return { fn, options: resolveTaskOptions(fn, {}, undefined), moduleUrl: undefined };
}

/** Finds a task defined in a module that has been evaluated in this thread or process. */
export function lookupTask(moduleUrl: string, name: string): TaskDefinition | undefined {
  const byName = registry.get(stripQuery(moduleUrl));
  if (!byName) return undefined;
  const exact = byName.get(name)?.definition;
  if (exact) return exact;
  // A caller whose code went through esbuild without keepNames (vitest, some bundlers) sees
  // `task(function add() {})` assigned to `const add` as `add2`: esbuild renames the shadowing
  // function. The worker loads the module through tsx, which keeps names. Match the original.
  const stripped = /^(.*?)\d+$/.exec(name)?.[1];
  return stripped ? byName.get(stripped)?.definition : undefined;
}

/** Names of the tasks known in one module, for error messages. */
export function taskNamesIn(moduleUrl: string): string[] {
  return [...(registry.get(stripQuery(moduleUrl))?.keys() ?? [])];
}

function register(definition: TaskDefinition, site: { url: string; position: string }): void {
  let byName = registry.get(site.url);
  if (!byName) registry.set(site.url, (byName = new Map()));
  const name = definition.options.name;
  const existing = byName.get(name);
  if (existing && existing.site !== site.position) {
    throw new TaskDefinitionError(
      `Two tasks are named '${name}' in ${site.url} (at ${existing.site} and ${site.position}). Workers find tasks by module and name, so names must be unique within a module: pass a distinct { name } to one of them.`,
    );
  }
  byName.set(name, { definition, site: site.position });
}

const taskKeys = optionKeys<TaskOptions>({
  name: true,
  retries: true,
  retryDelayMs: true,
  timeoutMs: true,
  tags: true,
  resources: true,
  priority: true,
});

/** Applies defaults, validates every option and merges `resource:KEY=NUM` tags into `resources` (see `parseTaskResources`). */
export function resolveTaskOptions(
  fn: AnyFunction,
  options: TaskOptions,
  site: { url: string; position: string } | undefined,
): ResolvedTaskOptions {
  const fail = (what: string): never => {
    throw new TaskDefinitionError(`Task '${options.name ?? fn.name ?? '?'}': ${what}`);
  };
  const shownName = String(options.name ?? fn.name);
  checkOptionKeys(options, taskKeys, shownName ? `Task '${shownName}'` : 'task()', 'task');
  let name = options.name ?? fn.name;
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    fail(`name must be a non-empty string, got ${describeValue(options.name)}.`);
  }
  if (!name) {
    // An anonymous function: name it after where it was defined, which is stable across workers.
    name = site
      ? `task@${site.url.slice(site.url.lastIndexOf('/') + 1)}:${site.position}`
      : 'anonymous';
  }
  const retries = options.retries ?? optionDefaults.retries;
  if (!Number.isInteger(retries) || retries < 0) {
    fail(`retries must be a non-negative integer, got ${describeValue(options.retries)}.`);
  }
  const retryDelayMs = options.retryDelayMs ?? optionDefaults.retryDelayMs;
  if (typeof retryDelayMs !== 'number' || !Number.isFinite(retryDelayMs) || retryDelayMs < 0) {
    fail(
      `retryDelayMs must be a non-negative number of milliseconds, got ${describeValue(options.retryDelayMs)}.`,
    );
  }
  const timeoutMs = options.timeoutMs;
  if (
    timeoutMs !== undefined &&
    (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs))
  ) {
    fail(`timeoutMs must be a positive number of milliseconds, got ${describeValue(timeoutMs)}.`);
  }
  const priority = options.priority ?? optionDefaults.priority;
  if (typeof priority !== 'number' || !Number.isFinite(priority)) {
    fail(`priority must be a finite number, got ${describeValue(options.priority)}.`);
  }
  const tags = options.tags ?? [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) {
    fail(`tags must be an array of strings, got ${describeValue(options.tags)}.`);
  }
  const resources = parseTaskResources(
    tags,
    options.resources,
    String(options.name ?? fn.name ?? '?'),
  );
  return {
    name,
    retries,
    retryDelayMs,
    timeoutMs,
    tags: Object.freeze([...tags]),
    resources,
    priority,
  };
}

const ownFile = import.meta.url;

/** The module and position that called `task()`, read from V8's structured stack. */
function callerSite(): { url: string; position: string } | undefined {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- saved to be restored, never called
  const original = Error.prepareStackTrace;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    Error.prepareStackTrace = (_e, frames) => frames;
    Error.captureStackTrace(holder, task);
    const frames = holder.stack ?? [];
    for (const frame of frames) {
      const file = frame.getFileName();
      if (!file || file === ownFile || file.startsWith('node:')) continue;
      const url = toFileUrl(file);
      if (!url) return undefined;
      return { url, position: `${frame.getLineNumber() ?? 0}:${frame.getColumnNumber() ?? 0}` };
    }
    return undefined;
  } finally {
    Error.prepareStackTrace = original;
  }
}

function toFileUrl(file: string): string | undefined {
  if (file.startsWith('file:')) return stripQuery(file);
  if (isAbsolute(file)) return stripQuery(pathToFileURL(file).href);
  return undefined; // eval, REPL, data: URLs: the module cannot be re-imported elsewhere
}

export function stripQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}

/** Path of a module URL for messages. */
export function displayModule(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}

/** Moved to options.ts (resources.ts needs it without importing this file); re-exported for callers of task.js. */
export { describeValue };

/** The nearest directory at or above `from` holding a package.json (else `from`). */
export function projectRoot(from: string): string {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return resolve(from);
    dir = parent;
  }
}

/** A module's path relative to its project, so a worker in another checkout can find it. */
export function projectPathOf(moduleUrl: string): string | undefined {
  try {
    const file = fileURLToPath(moduleUrl);
    return relative(projectRoot(dirname(file)), file)
      .split('\\')
      .join('/');
  } catch {
    return undefined;
  }
}
