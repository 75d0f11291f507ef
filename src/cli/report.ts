/**
 * How `weft run` shows what went wrong: an error with its stack, its own properties and its
 * whole cause chain (the errors of an `AggregateError` too), and a syntax error as the file,
 * line and column where it is, the source line and a caret under the spot.
 */
import { isAbsolute, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { isCompileError, locateSyntaxError } from './locate-syntax-error.js';
import type { SyntaxErrorLocation } from './locate-syntax-error.js';

/** Causes and nested errors deeper than this are cut off: a cause chain is not a data structure. */
const maxDepth = 8;

/** `RangeError: message`; a thrown non-Error as `inspect` shows it. */
export function formatError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return typeof error === 'string' ? error : inspect(error, { depth: 2, breakLength: Infinity });
}

/**
 * The error as a person debugging it wants it: `Name: message`, the stack frames (those of
 * Node, weft and its argument parser left out: see `stackFrames`), the error's own properties
 * (`code`, `upstream`, ...), then each error of an `AggregateError` indented under it and each
 * `cause` after `Caused by:`.
 */
export function formatFailure(error: unknown): string {
  return formatAt(error, '', new Set(), 0).join('\n');
}

function formatAt(
  error: unknown,
  indent: string,
  seen: Set<unknown>,
  depth: number,
  outerFrames: string[] = [],
): string[] {
  if (!(error instanceof Error)) return [indent + formatError(error)];
  if (seen.has(error)) return [`${indent}[the same ${error.name} again: a cycle]`];
  seen.add(error);

  const lines = [indent + formatError(error)];
  const frames = stackFrames(error);
  // As Node's inspect does: the frames a nested error shares with the one shown above it.
  const shared = sharedTail(frames, outerFrames);
  for (const frame of frames.slice(0, frames.length - shared)) lines.push(`${indent}    ${frame}`);
  if (shared > 0) lines.push(`${indent}    ... ${shared} more as above`);
  const properties = ownProperties(error);
  if (properties) lines.push(`${indent}    ${properties}`);

  if (depth >= maxDepth) {
    if (error instanceof AggregateError || error.cause !== undefined) {
      lines.push(`${indent}  [nested errors past ${maxDepth} levels left out]`);
    }
    return lines;
  }
  if (error instanceof AggregateError && Array.isArray(error.errors)) {
    const errors = error.errors as unknown[];
    errors.forEach((inner, i) => {
      const nested = formatAt(inner, `${indent}  `, seen, depth + 1, frames);
      nested[0] = `${indent}  [${i + 1}/${errors.length}] ${nested[0]!.trimStart()}`;
      lines.push(...nested);
    });
  }
  if (error.cause !== undefined) {
    const nested = formatAt(error.cause, indent, seen, depth + 1, frames);
    nested[0] = `${indent}Caused by: ${nested[0]!.trimStart()}`;
    lines.push(...nested);
  }
  return lines;
}

/** How many frames at the end of `frames` equal those at the end of `outer`. */
function sharedTail(frames: string[], outer: string[]): number {
  let n = 0;
  while (n < frames.length && n < outer.length && frames.at(-1 - n) === outer.at(-1 - n)) n++;
  return n;
}

/**
 * The `at ...` lines of the stack, trimmed, without the frames every failure shares and no user
 * can act on: Node's own modules, weft's (its scheduler, its worker loop, this CLI) and the
 * argument parser's. WEFT_DEBUG prints the error untrimmed as well.
 */
function stackFrames(error: Error): string[] {
  if (typeof error.stack !== 'string') return [];
  return error.stack
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at ') && !noise.some((part) => line.includes(part)));
}

/** dist/, the folder of weft's compiled modules, as a path and as a URL. */
const weftDist = new URL('..', import.meta.url);
const noise = [
  '(node:',
  'at node:',
  fileURLToPath(weftDist),
  weftDist.href,
  `${sep}node_modules${sep}commander${sep}`,
];

/** Own enumerable properties other than the ones already shown, e.g. `{ code: 'ENOENT' }`. */
function ownProperties(error: Error): string {
  const shown = new Set(['name', 'message', 'stack', 'cause', 'errors']);
  const rest = Object.fromEntries(Object.entries(error).filter(([key]) => !shown.has(key)));
  if (Object.keys(rest).length === 0) return '';
  return inspect(rest, { depth: 2, breakLength: Infinity, colors: false });
}

/**
 * A syntax error's place, as compilers show it:
 *
 * ```
 * SyntaxError: Unexpected identifier 'b'
 *   at lib/util.mjs:4:3 (imported by job.mjs → lib/index.mjs)
 *     4 |   b: 2
 *       |   ^
 * ```
 */
export function formatSyntaxError(location: SyntaxErrorLocation, cwd = process.cwd()): string {
  const show = (path: string): string => displayPath(path, cwd);
  const chain =
    location.importedBy.length === 0
      ? ''
      : ` (imported by ${location.importedBy.map(show).join(' → ')})`;
  const number = String(location.line);
  const gutter = ' '.repeat(number.length);
  const { text, column } = clip(location.sourceLine, location.column);
  return [
    `${location.name}: ${location.message}`,
    `  at ${show(location.file)}:${location.line}:${location.column}${chain}`,
    `    ${number} | ${text}`,
    `    ${gutter} | ${' '.repeat(Math.max(0, column - 1))}^`,
  ].join('\n');
}

/** A path relative to `cwd` when it is inside it, else as it is. */
export function displayPath(path: string, cwd = process.cwd()): string {
  const inside = relative(cwd, path);
  return inside && !inside.startsWith('..') && !isAbsolute(inside) ? inside : path;
}

/** Long lines (minified code) are cut to a window around the column, which moves with them. */
function clip(line: string, column: number): { text: string; column: number } {
  const width = 120;
  // Tabs would shift the caret by their display width; one space each keeps it under the spot.
  const text = line.replace(/\t/g, ' ');
  if (text.length <= width) return { text, column };
  const start = Math.max(0, Math.min(column - 1 - width / 2, text.length - width));
  const prefix = start > 0 ? '…' : '';
  const suffix = start + width < text.length ? '…' : '';
  return {
    text: prefix + text.slice(start, start + width) + suffix,
    column: column - start + prefix.length,
  };
}

/**
 * `formatFailure(error)`, and when the error (or one of its causes) is a syntax error in a module
 * the job at `entry` imports, where it is (see `formatSyntaxError`).
 */
export async function describeFailure(error: unknown, entry: string): Promise<string> {
  const text = formatFailure(error);
  const seen = new Set<unknown>();
  for (let at = error; at instanceof Error && !seen.has(at); at = at.cause) {
    seen.add(at);
    if (!isCompileError(at)) continue;
    const location = await locateSyntaxError(at, entry);
    // The place says more than Node's loader frames; leave those to WEFT_DEBUG.
    if (location)
      return at === error ? formatSyntaxError(location) : `${text}\n${formatSyntaxError(location)}`;
  }
  return text;
}
