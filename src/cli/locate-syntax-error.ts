/**
 * Finding where a syntax error is. Node 20 gives a SyntaxError thrown while compiling an ES
 * module no file or line in `.stack` (it keeps them in a private field that only its
 * uncaught-exception printer reads), so `import()` of a job whose third import is broken says
 * only "Unexpected identifier 'b'". This walks the job's imports (static, and `import()` and
 * `require()` of string literals) from the job down, parses each file with acorn to find the
 * broken one, and asks `node --check` about that file for V8's own message, line and column.
 * TypeScript's errors come from tsx's esbuild with their place in the message; the walk still
 * gives the imports that led there.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'acorn';
import { isTypeScript } from '../core/modules.js';

/** Where a syntax error is, and how the job reached that file. */
export interface SyntaxErrorLocation {
  /** Absolute path of the file with the error. */
  file: string;
  /** 1-based line and column. */
  line: number;
  column: number;
  /** The offending line of source, as it is in the file. */
  sourceLine: string;
  /** `SyntaxError`, or `TransformError` for TypeScript that esbuild (through tsx) refused. */
  name: string;
  /** What is wrong, e.g. `Unexpected identifier 'b'`. */
  message: string;
  /** The importers from the job down to the file's direct importer; empty for the job itself. */
  importedBy: string[];
}

/** A location before the walk has found how the job reached it. */
type Place = Omit<SyntaxErrorLocation, 'importedBy'>;

/** At most this many of the job's own modules are read: the walk stops well before a monorepo. */
const maxFiles = 200;
/** dist/, the folder of weft's compiled modules, which compile. */
const weftDist = fileURLToPath(new URL('..', import.meta.url));
/** Milliseconds one `node --check` may take. */
const checkTimeoutMs = 10_000;

/**
 * True for an error raised while compiling or linking a module: tsx's `TransformError` with a
 * place, or a SyntaxError above which Node printed the place or whose stack has no frame outside
 * Node's loader. (A SyntaxError from `JSON.parse` has the caller's frames: an ordinary failure.)
 */
export function isCompileError(error: unknown): error is Error {
  if (transformErrorPlace(error)) return true;
  if (!(error instanceof Error) || error.name !== 'SyntaxError') return false;
  if (arrowOf(error)) return true;
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  return frames.every((frame) => frame.includes('node:internal/'));
}

/**
 * Where `error` (a SyntaxError from importing `entry`, or from an `import()` the job ran) is, or
 * undefined when no module the job imports has it.
 */
export async function locateSyntaxError(
  error: Error,
  entry: string,
): Promise<SyntaxErrorLocation | undefined> {
  const graph = walkImports(entry);
  const withChain = (location: Place): SyntaxErrorLocation => ({
    ...location,
    importedBy: graph.chainTo(location.file),
  });

  // tsx's esbuild names the place in its message; Node does above the errors it decorates
  // itself (a missing export, a CommonJS module that does not compile).
  const transform = transformErrorPlace(error);
  if (transform) return withChain(transform);
  const arrow = arrowOf(error);
  if (arrow) return withChain({ ...arrow, message: error.message });

  // acorn's verdict is a hint (it knows newer syntax than Node 20's V8, and older quirks less
  // well); `node --check` has the final word. The files acorn refused come first; the others
  // are checked only when none of those fails. Prefer a file whose error reads like this one.
  for (const files of [graph.unparsable, graph.parsed]) {
    let found: Place | undefined;
    for (const file of files) {
      const checked = await checkSyntax(file);
      if (checked?.message === error.message) return withChain(checked);
      found ??= checked;
    }
    if (found) return withChain(found);
  }
  return undefined;
}

interface ImportGraph {
  /** Files acorn could not parse, in the order the walk met them. */
  unparsable: string[];
  /** Files acorn parsed, in the same order. */
  parsed: string[];
  /** The chain of importers from the entry to `file`'s importer. */
  chainTo(file: string): string[];
}

/** Breadth-first over the job's own modules (not node_modules, not built-ins). */
function walkImports(entry: string): ImportGraph {
  const importer = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  const unparsable: string[] = [];
  const parsed: string[] = [];
  while (queue.length > 0 && importer.size <= maxFiles) {
    const file = queue.shift()!;
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    // TypeScript's errors come from tsx with their place: its imports are read only for the
    // chain, by a pattern, since acorn cannot parse TypeScript (nor V8 check it).
    const specifiers = isTypeScript(file) ? typeScriptImports(source) : importsOf(source);
    if (specifiers === undefined) {
      unparsable.push(file);
      continue;
    }
    if (!isTypeScript(file)) parsed.push(file);
    for (const specifier of specifiers) {
      const target = resolveLocal(specifier, file);
      if (target === undefined || importer.has(target)) continue;
      importer.set(target, file);
      queue.push(target);
    }
  }
  return {
    unparsable,
    parsed,
    chainTo(file) {
      const chain: string[] = [];
      for (let at = importer.get(file); at !== undefined; at = importer.get(at)) chain.unshift(at);
      return chain;
    },
  };
}

/** The specifiers a module imports, or undefined when acorn cannot parse it as ESM nor CJS. */
function importsOf(source: string): string[] | undefined {
  let program: unknown;
  for (const sourceType of ['module', 'script'] as const) {
    try {
      program = parse(source, {
        ecmaVersion: 'latest',
        sourceType,
        allowHashBang: true,
        allowReturnOutsideFunction: sourceType === 'script',
      });
      break;
    } catch {
      // Try the other source type; neither parsing is the answer.
    }
  }
  if (program === undefined) return undefined;
  const specifiers: string[] = [];
  visit(program, (node) => {
    const source = importSource(node);
    if (source !== undefined) specifiers.push(source);
  });
  return specifiers;
}

type AstNode = { type: string; [key: string]: unknown };

function visit(node: unknown, callback: (node: AstNode) => void): void {
  if (Array.isArray(node)) {
    for (const child of node) visit(child, callback);
  } else if (
    typeof node === 'object' &&
    node !== null &&
    typeof (node as AstNode).type === 'string'
  ) {
    callback(node as AstNode);
    for (const value of Object.values(node)) {
      if (typeof value === 'object' && value !== null) visit(value, callback);
    }
  }
}

/** The string a node imports: `import ... from 'x'`, `export ... from 'x'`, `import('x')`, `require('x')`. */
function importSource(node: AstNode): string | undefined {
  const literal = (value: unknown): string | undefined => {
    const candidate = value as { type?: string; value?: unknown } | null | undefined;
    return candidate?.type === 'Literal' && typeof candidate.value === 'string'
      ? candidate.value
      : undefined;
  };
  switch (node.type) {
    case 'ImportDeclaration':
    case 'ExportAllDeclaration':
    case 'ExportNamedDeclaration':
    case 'ImportExpression':
      return literal(node.source);
    case 'CallExpression': {
      const callee = node.callee as { type?: string; name?: string };
      const args = node.arguments as unknown[];
      return callee.type === 'Identifier' && callee.name === 'require' && args.length === 1
        ? literal(args[0])
        : undefined;
    }
    default:
      return undefined;
  }
}

/** `from 'x'`, `import 'x'`, `import('x')`, `require('x')` in TypeScript source. */
function typeScriptImports(source: string): string[] {
  const pattern = /(?:\bfrom|\bimport|\bimport\s*\(|\brequire\s*\()\s*(['"])([^'"\n]+)\1/g;
  return [...source.matchAll(pattern)].map((match) => match[2]!);
}

/** The file a specifier names when it is the project's own JavaScript, else undefined. */
function resolveLocal(specifier: string, parent: string): string | undefined {
  if (specifier.startsWith('node:') || /^[a-z][a-z+.-]*:/i.test(specifier.replace(/^file:/, ''))) {
    return undefined;
  }
  let target: string | undefined;
  if (specifier.startsWith('file:') || specifier.startsWith('.') || isAbsolute(specifier)) {
    const path = fileURLToPath(new URL(specifier, pathToFileURL(parent)));
    // TypeScript imports name the .js a .ts file compiles to.
    const candidates = isTypeScript(parent)
      ? [path, path.replace(/\.([cm]?)js$/, '.$1ts')]
      : [path];
    target = candidates.find((file) => existsSync(file) && statSync(file).isFile());
  }
  if (target === undefined) {
    try {
      // Extensionless CommonJS paths, directory indexes, package.json "imports" (#lib/x).
      target = createRequire(parent).resolve(specifier);
    } catch {
      return undefined;
    }
  }
  if (!isAbsolute(target) || target.includes('/node_modules/')) return undefined;
  // weft's own modules (a project that imports itself by name, like this repository's examples).
  return target.startsWith(weftDist) ? undefined : target;
}

/**
 * The place in a `TransformError` of tsx's esbuild, whose message reads
 * `Transform failed with 1 error:\n/path/job.ts:4:2: ERROR: Expected "}" but found "b"`
 * (a 0-based column).
 */
function transformErrorPlace(error: unknown): Place | undefined {
  if (!(error instanceof Error) || error.name !== 'TransformError') return undefined;
  const place = /^(.+):(\d+):(\d+): ERROR: (.+)$/m.exec(error.message);
  if (!place) return undefined;
  const file = place[1]!;
  const line = Number(place[2]);
  let sourceLine = '';
  try {
    sourceLine = readFileSync(file, 'utf8').split('\n')[line - 1] ?? '';
  } catch {
    // The message still names the place; only the quoted line is missing.
  }
  return {
    file,
    line,
    column: Number(place[3]) + 1,
    sourceLine,
    name: error.name,
    message: place[4]!,
  };
}

/** Runs `node --check file`; its error's place and message, or undefined when the file parses. */
async function checkSyntax(file: string): Promise<Place | undefined> {
  const stderr = await new Promise<string | undefined>((resolve) => {
    execFile(
      process.execPath,
      ['--check', file],
      { timeout: checkTimeoutMs, encoding: 'utf8' },
      (error, _stdout, stderr) => resolve(error ? stderr : undefined),
    );
  });
  if (stderr === undefined) return undefined;
  return parseArrow(stderr, file);
}

/** The place Node printed above a SyntaxError: `file:line`, the source line, a caret line. */
function arrowOf(error: Error): Place | undefined {
  return typeof error.stack === 'string' ? parseArrow(error.stack) : undefined;
}

function parseArrow(text: string, expectedFile?: string): Place | undefined {
  const lines = text.split('\n');
  const head = /^(.+):(\d+)$/.exec(lines[0] ?? '');
  const caret = lines[2]?.indexOf('^') ?? -1;
  if (!head || caret < 0) return undefined;
  const where = head[1]!;
  const file = where.startsWith('file:') ? fileURLToPath(where) : where;
  if (expectedFile !== undefined && file !== expectedFile) return undefined;
  const message = lines.find((line) => line.startsWith('SyntaxError: '));
  return {
    file,
    line: Number(head[2]),
    column: caret + 1,
    sourceLine: lines[1] ?? '',
    name: 'SyntaxError',
    message: message === undefined ? 'invalid syntax' : message.slice('SyntaxError: '.length),
  };
}
