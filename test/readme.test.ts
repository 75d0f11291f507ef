/**
 * README.md's snippets run as written on Node 20, in the file type they show.
 *
 * - A block fenced ` ```js runnable ` is written to a temp project whose `node_modules/weftjs`
 *   links to this package (built by `npm test`) and run with `node`; it must exit 0. With
 *   `file=NAME` it is written under that name first, so that later blocks can import it.
 * - A `// → text` comment on a `console.log` line is output the run must print (compared with
 *   runs of white space collapsed).
 * - Every other `js` block (fragments, or code that needs a remote cluster) is checked with
 *   `node --check` as an ES module; `ts` blocks are parsed by TypeScript for syntax errors, and
 *   `sh` blocks by `bash -n`.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { node, run } from './helpers/spawn.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Snippet {
  /** 1-based line of the opening fence in README.md. */
  line: number;
  language: string;
  runnable: boolean;
  /** The name `file=NAME` gives it, if any. */
  file: string | undefined;
  code: string;
}

const javascript = new Set(['js', 'javascript', 'mjs']);
const typescript = new Set(['ts', 'typescript']);

function snippets(markdown: string): Snippet[] {
  const found: Snippet[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (const match of markdown.matchAll(fence)) {
    const [language = '', ...words] = match[1]!.trim().split(/\s+/);
    const line = markdown.slice(0, match.index).split('\n').length;
    let file: string | undefined;
    for (const word of words) {
      if (word.startsWith('file=')) file = word.slice('file='.length);
      else if (word !== 'runnable') {
        throw new Error(
          `README.md:${line}: unknown word '${word}' after the fence's language; use runnable and file=NAME.`,
        );
      }
    }
    found.push({ line, language, runnable: words.includes('runnable'), file, code: match[2]! });
  }
  return found;
}

/** The outputs `console.log(...); // → text` comments promise, white space collapsed. */
function promisedOutput(code: string): string[] {
  return [...code.matchAll(/console\.log\(.*\/\/ → (.+)$/gm)].map((m) => collapse(m[1]!));
}

const collapse = (text: string): string => text.replace(/\s+/g, ' ').trim();

const all = snippets(readFileSync(join(root, 'README.md'), 'utf8'));
const runnable = all.filter((s) => s.runnable);
const checked = all.filter((s) => !s.runnable && javascript.has(s.language));
const typed = all.filter((s) => typescript.has(s.language));
const shell = all.filter((s) => s.language === 'sh' || s.language === 'bash');

/** A temp project that resolves `weftjs` to this package, with every `file=` snippet in it. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-readme-'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'readme-snippets', private: true, type: 'module' }),
  );
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'weftjs'), 'dir');
  for (const snippet of runnable) {
    if (snippet.file) writeFileSync(join(dir, snippet.file), snippet.code);
  }
  return dir;
}

describe('README.md snippets', () => {
  it('marks its runnable blocks, and only JavaScript ones', () => {
    expect(runnable.length).toBeGreaterThanOrEqual(5);
    for (const snippet of runnable) {
      expect(javascript.has(snippet.language), `README.md:${snippet.line}`).toBe(true);
    }
  });

  const dir = project();
  for (const snippet of runnable) {
    const name = snippet.file ?? `snippet-${snippet.line}.mjs`;
    it(`README.md:${snippet.line} runs (${name})`, { timeout: 90_000 }, async () => {
      writeFileSync(join(dir, name), snippet.code);
      const finished = await node([name], { cwd: dir, timeoutMs: 80_000 });
      expect(finished.signal, `README.md:${snippet.line} was still running at its deadline`).toBe(
        null,
      );
      expect(finished.status, `README.md:${snippet.line}: ${finished.stderr}`).toBe(0);
      const stdout = collapse(finished.stdout);
      for (const promised of promisedOutput(snippet.code)) expect(stdout).toContain(promised);
    });
  }

  it('every other JavaScript block parses as an ES module on this Node', async () => {
    expect(checked.length).toBeGreaterThan(0);
    const checkDir = mkdtempSync(join(tmpdir(), 'weft-readme-check-'));
    const runs = await Promise.all(
      checked.map((snippet) => {
        const file = join(checkDir, `line-${snippet.line}.mjs`);
        writeFileSync(file, snippet.code);
        return node(['--check', file], { timeoutMs: 30_000 });
      }),
    );
    runs.forEach((result, i) => {
      expect(result.status, `README.md:${checked[i]!.line}: ${result.stderr}`).toBe(0);
    });
  });

  it('every TypeScript block parses', () => {
    for (const snippet of typed) {
      const { diagnostics = [] } = ts.transpileModule(snippet.code, {
        reportDiagnostics: true,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      const messages = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
      expect(messages, `README.md:${snippet.line}`).toEqual([]);
    }
  });

  it('every shell block parses (bash -n)', async () => {
    const runs = await Promise.all(
      shell.map((snippet) => {
        const file = join(mkdtempSync(join(tmpdir(), 'weft-readme-sh-')), 'snippet.sh');
        writeFileSync(file, snippet.code);
        return run('bash', ['-n', file], { timeoutMs: 30_000 });
      }),
    );
    runs.forEach((result, i) => {
      expect(result.status, `README.md:${shell[i]!.line}: ${result.stderr}`).toBe(0);
    });
  });
});
