/**
 * Shipping plain functions by source. Before a plain function leaves the caller, its source is
 * parsed (acorn) and scope-analysed (eslint-scope) for free variables: a closure over an outer
 * variable would fail later inside the worker, so it fails here, naming the variable.
 */
import { parse, type Node } from 'acorn';
import { analyze } from 'eslint-scope';
import { TaskDefinitionError } from './errors.js';
import type { AnyFunction } from './types.js';

/**
 * Helpers that TypeScript tooling injects into compiled functions (esbuild's `keepNames`), which
 * the worker defines before evaluating shipped source.
 */
export const injectedHelpers = ['__name'] as const;

/** A function's source, checked and ready to evaluate in a worker: `(${source})` is an expression. */
export interface ShippedSource {
  source: string;
}

const cache = new Map<string, ShippedSource | TaskDefinitionError>();
const cacheLimit = 2_000;

/** Returns the shippable source of a plain function, or throws `TaskDefinitionError`. */
export function shippableSource(fn: AnyFunction, label: string): ShippedSource {
  const text = Function.prototype.toString.call(fn);
  let result = cache.get(text);
  if (!result) {
    result = analyse(text, label);
    if (cache.size >= cacheLimit) cache.clear();
    cache.set(text, result);
  }
  if (result instanceof TaskDefinitionError) throw result;
  return result;
}

function analyse(text: string, label: string): ShippedSource | TaskDefinitionError {
  if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
    return new TaskDefinitionError(
      `${label} is a native or bound function, whose source cannot be sent to a worker. Wrap the call in a plain function, or define it with task() at the top level of a module.`,
    );
  }
  if (/^class\b/.test(text)) {
    return new TaskDefinitionError(
      `${label} is a class, not a function; submit a function that uses it.`,
    );
  }
  let source = text;
  let ast: Node;
  try {
    ast = parse(`(${source})`, { ecmaVersion: 'latest', sourceType: 'module', ranges: true });
  } catch {
    // Method shorthand (`run(x) { ... }`) is not an expression on its own; wrap it in an object.
    try {
      source = `({${text}})[Object.keys({${text}})[0]]`;
      ast = parse(`(${source})`, { ecmaVersion: 'latest', sourceType: 'module', ranges: true });
    } catch (err) {
      return new TaskDefinitionError(
        `${label}: its source could not be parsed to send it to a worker (${(err as Error).message}). Define it with task() at the top level of a module instead.`,
      );
    }
  }
  const scopes = analyze(ast as never, { ecmaVersion: 2022, sourceType: 'module' });
  const missing = new Set<string>();
  for (const ref of scopes.globalScope?.through ?? []) {
    const name = ref.identifier.name;
    if (
      name in globalThis ||
      (injectedHelpers as readonly string[]).includes(name) ||
      name === 'require'
    )
      continue;
    missing.add(name);
  }
  if (missing.size > 0) {
    const names = [...missing].map((n) => `'${n}'`).join(', ');
    const error = new TaskDefinitionError(
      `${label} uses ${names} from an enclosing scope, which does not exist in the worker that runs it (plain functions are sent by source, without their closure). Pass ${missing.size > 1 ? 'them' : 'it'} as an argument, import ${missing.size > 1 ? 'them' : 'it'} inside the function, or define the task with task() at the top level of a module.`,
    );
    Object.defineProperty(error, 'missing', { value: [...missing], enumerable: true });
    return error;
  }
  return { source };
}
