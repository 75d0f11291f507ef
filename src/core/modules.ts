/**
 * Loading modules by URL the way every part of weft needs it: TypeScript through tsx (Node 20
 * cannot load `.ts` itself; tsx's `tsImport` works in threads, processes and the caller alike),
 * everything else with a plain `import()`.
 */

const typeScript = /\.[mc]?tsx?$/;

/** True for a `.ts`, `.mts`, `.cts` or `.tsx` path or URL. */
export function isTypeScript(pathOrUrl: string): boolean {
  return typeScript.test(pathOrUrl);
}

/**
 * Imports the module at `url`. For TypeScript, `missingTsx(cause)` builds the error thrown when
 * tsx is not installed, so each caller can say what to do in its own terms.
 */
export async function importModule(
  url: string,
  missingTsx: (cause: unknown) => Error,
): Promise<unknown> {
  if (!isTypeScript(url)) return import(url);
  let api: { tsImport: (specifier: string, parent: string) => Promise<unknown> };
  try {
    api = await import('tsx/esm/api');
  } catch (cause) {
    throw missingTsx(cause);
  }
  return api.tsImport(url, import.meta.url);
}

/** True for anything with a `then` method (a task's result that must be awaited). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}
