/**
 * `weft explain KEY --address URL` from a second process against a live local cluster: a running
 * task (answered by its client), a failed one after its client shut down (stored in Redis), an
 * infeasible resource on a cluster joined by address, an unknown key, bad arguments.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedExecutor, type Explanation } from 'weftjs';
import { needsTpu } from '../fixtures/crashes.js';
import { alwaysFails, gated } from '../fixtures/tasks.js';
import { lines, open, rejection, tempFile, tempPath, until } from '../helpers/util.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');

/** Runs the CLI without blocking this process, whose client must answer it. */
function weft(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { cwd: root, encoding: 'utf8', timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('weft explain against a live cluster', { timeout: 60_000 }, () => {
  let cluster: DistributedExecutor;
  let address: string;
  beforeAll(async () => {
    cluster = await new DistributedExecutor({ workers: 1, localProcesses: false }).start();
    address = cluster.address!;
  }, 60_000);
  afterAll(() => cluster?.shutdown({ cancelPending: true }), 60_000);

  it('prints what the client says of a running task: its worker and its heartbeat', async () => {
    const gate = tempPath('gate');
    const log = tempFile('started');
    const running = cluster.submit(gated, gate, log);
    await until(() => lines(log).includes('started'), 'the gated task to start');
    const local = await cluster.explain(running);
    const remote = await weft('explain', running.key, '--address', address);
    expect(remote.status, remote.stderr).toBe(0);
    expect(remote.stdout).toContain(
      `Task '${gated.taskName}' (key ${running.key}) was sent to the cluster`,
    );
    expect(remote.stdout).toMatch(
      /Worker \S+ \(host .*, pid \d+, running \d of 1\) last sent a heartbeat/,
    );
    expect(local.text).toMatch(/last sent a heartbeat/);
    const json = await weft('explain', running.key, '--address', address, '--json');
    expect(json.status, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as Explanation;
    expect(parsed).toMatchObject({ key: running.key, status: 'running', waitingFor: [] });
    expect(parsed.attempts).toEqual([expect.objectContaining({ number: 1, outcome: 'running' })]);
    open(gate);
    await running;
  });

  it('keeps a failed task explainable after its client shut down; explains an infeasible resource', async () => {
    const client = await new DistributedExecutor({ address }).start();
    let failedKey: string;
    try {
      const failed = client.submit(alwaysFails);
      await rejection(failed);
      failedKey = failed.key;
      // A cluster joined by address accepts what no worker offers, and says so when asked.
      const stuck = client.submit(needsTpu);
      let local = await client.explain(stuck);
      for (let i = 0; i < 500 && !local.text.includes('cluster'); i++) {
        await new Promise((r) => setTimeout(r, 20));
        local = await client.explain(stuck);
      }
      expect(local.text).toContain('No live worker can ever offer what it needs (TPU=1)');
      expect(local.text).toContain('weft worker --resources TPU=1');
      const remote = await weft('explain', stuck.key, '--address', address);
      expect(remote.status, remote.stderr).toBe(0);
      expect(remote.stdout).toContain('No live worker can ever offer what it needs (TPU=1)');
    } finally {
      await client.shutdown({ cancelPending: true });
    }
    const after = await weft('explain', failedKey, '--address', address);
    expect(after.status, after.stderr).toBe(0);
    expect(after.stdout).toContain(`(key ${failedKey}) failed after 2 attempts`);
    expect(after.stdout).toContain('Error: attempt 1 failed');
    // The worker comes with each result, though the client did not ask workers to report starts.
    expect(after.stdout).toMatch(/attempt 1 on local-\d+ failed after/);
    expect(after.stdout).toContain('Error: attempt 2 failed');
  });

  it('signs explanations with the client secret; a wrong --secret-file is refused', async () => {
    const client = await new DistributedExecutor({ address, secret: 'explain-secret' }).start();
    let key: string;
    try {
      // These workers have no secret: the task fails with SignatureError, and is stored signed.
      const refused = client.submit(alwaysFails);
      await rejection(refused);
      key = refused.key;
    } finally {
      await client.shutdown({ cancelPending: true });
    }
    const right = tempFile('secret');
    writeFileSync(right, 'explain-secret\n');
    const wrong = tempFile('wrong');
    writeFileSync(wrong, 'another-secret\n');
    const signed = await weft('explain', key, '--address', address, '--secret-file', right);
    expect(signed.status, signed.stderr).toBe(0);
    expect(signed.stdout).toContain(`(key ${key}) failed`);
    expect(signed.stdout).toContain('SignatureError');
    const forged = await weft('explain', key, '--address', address, '--secret-file', wrong);
    expect(forged.status).not.toBe(0);
    expect(forged.stderr).toContain('not signed with any of your secrets');
  });

  it('exits 1 for an unknown key, saying where keys come from; 2 for bad arguments', async () => {
    const unknown = await weft('explain', 'nothing-0123456789', '--address', address);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('no task with key nothing-0123456789');
    expect(unknown.stderr).toContain('Future.key');
    expect(unknown.stderr).toContain('dashboard');
    const noKey = await weft('explain', '--address', address);
    expect(noKey.status).toBe(2);
    const noAddress = await weft('explain', 'x-1');
    expect(noAddress.status).toBe(2);
    expect(noAddress.stderr).toContain('--address');
  });
});
