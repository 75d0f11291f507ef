/**
 * Finding where a syntax error is. Node 20 gives a SyntaxError thrown while compiling an ES
 * module no file or line in `.stack` (it keeps them in a private field that only its
 * uncaught-exception printer reads), so `import()` of a job whose third import is broken says
 * only "Unexpected identifier 'b'". This walks the job's imports (static, and `import()` and
 * `require()` of string literals) from the job down, parses each file with acorn to find the
 * broken one, and asks `node --check` about that file for V8's own message, line and column.
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
  /** V8's message, e.g. `Unexpected identifier 'b'`. */
  message: string;
  /** The importers from the job down to the file's direct importer; empty for the job itself. */
  importedBy: string[];
}

/** At most this many of the job's own modules are read: the walk stops well before a monorepo. */
const maxFiles = 200;
/** Milliseconds one `node --check` may take. */
const checkTimeoutMs = 10_000;

/**
 * True for a SyntaxError raised while compiling or linking a module: Node either printed its
 * place above the message, or the stack has no frame outside Node's loader. (A SyntaxError from
 * `JSON.parse` has the caller's frames and is an ordinary failure.)
 */
export function isCompileError(error: unknown): error is SyntaxError {
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
  error: SyntaxError,
  entry: string,
): Promise<SyntaxErrorLocation | undefined> {
  const graph = walkImports(entry);
  const withChain = (location: Omit<SyntaxErrorLocation, 'importedBy'>): SyntaxErrorLocation => ({
    ...location,
    importedBy: graph.chainTo(location.file),
  });

  // Errors that Node decorates itself (a missing export, a CommonJS module) carry the place.
  const arrow = arrowOf(error);
  if (arrow) return withChain({ ...arrow, message: error.message });

  // acorn's verdict is a hint (it knows newer syntax than Node 20's V8, and older quirks less
  // well); `node --check` has the final word. Prefer a file whose error reads like this one.
  let found: Omit<SyntaxErrorLocation, 'importedBy'> | undefined;
  for (const file of [...graph.unparsable, ...graph.parsed]) {
    const checked = await checkSyntax(file);
    if (!checked) continue;
    if (checked.message === error.message) return withChain(checked);
    found ??= checked;
  }
  return found && withChain(found);
}

interface ImportGraph {
  /** Files acorn could not parse, in the order the walk met them. */
  unparsable: string[];
  /** Files acorn parsed, in the same order. */
  parsed: string[];
  /** The chain of importers from the entry to `file`'s importer. */
  chainTo(file: string): string[];
}

/** Breadth-first over the job's own modules (not node_modules, not built-ins, not TypeScript). */
function walkImports(entry: string): ImportGraph {
  const importer = new Map<string, string | undefined>([[entry, undefined]]);
  // TypeScript loads through tsx, whose errors carry their place; acorn and V8 cannot read it.
  const queue = isTypeScript(entry) ? [] : [entry];
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
    const specifiers = importsOf(source);
    if (specifiers === undefined) {
      unparsable.push(file);
      continue;
    }
    parsed.push(file);
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

/** The file a specifier names when it is the project's own JavaScript, else undefined. */
function resolveLocal(specifier: string, parent: string): string | undefined {
  if (specifier.startsWith('node:') || /^[a-z][a-z+.-]*:/i.test(specifier.replace(/^file:/, ''))) {
    return undefined;
  }
  let target: string | undefined;
  if (specifier.startsWith('file:') || specifier.startsWith('.') || isAbsolute(specifier)) {
    const url = new URL(specifier, pathToFileURL(parent));
    const path = fileURLToPath(url);
    if (existsSync(path) && statSync(path).isFile()) target = path;
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
  return isTypeScript(target) ? undefined : target;
}

/** Runs `node --check file`; its error's place and message, or undefined when the file parses. */
async function checkSyntax(
  file: string,
): Promise<Omit<SyntaxErrorLocation, 'importedBy'> | undefined> {
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
function arrowOf(error: Error): Omit<SyntaxErrorLocation, 'importedBy'> | undefined {
  return typeof error.stack === 'string' ? parseArrow(error.stack) : undefined;
}

function parseArrow(
  text: string,
  expectedFile?: string,
): Omit<SyntaxErrorLocation, 'importedBy'> | undefined {
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
    message: message === undefined ? 'invalid syntax' : message.slice('SyntaxError: '.length),
  };
}
