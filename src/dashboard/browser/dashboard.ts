/**
 * The script that fills the dashboard page (served as /assets/dashboard.js, a module loaded after
 * Chart.js). It reads the live stream (`/api/events`, protocol in ../server.ts), keeps at most
 * `maxBars` bars, and redraws at most once per animation frame: the task stream as Chart.js
 * floating bars (one lane per worker, one colour per task name, red for failures, grey for
 * cancellations, pale while running), progress per task name, workers and recent errors. A click
 * on a bar or an error opens that task's explanation (`/api/explain`), asked again every second
 * while it stays open.
 *
 * Browser code: compiled on its own by tsconfig.browser.json (DOM types, no Node), so it imports
 * nothing from the rest of weft; the shapes it reads are restated below from ../state.ts and
 * ../../core/explain.ts.
 */

// ---- what the server sends (see ../state.ts and ../../core/explain.ts) ----------------------

/** 0 finished, 1 failed, 2 cancelled; -1 marks a running attempt on the page. */
type Outcome = 0 | 1 | 2 | -1;
type Bar = [
  seq: number,
  worker: string,
  name: string,
  start: number,
  end: number,
  outcome: Outcome,
  key: string,
];
type RunningBar = [worker: string, name: string, start: number, key: string];

interface NameCounts {
  submitted: number;
  running: number;
  finished: number;
  failed: number;
  cancelled: number;
  retried: number;
}

interface WorkerView {
  name: string;
  pid?: number;
  state: 'joined' | 'left' | 'crashed';
  running: { name: string; key: string; since: number }[];
  busy: number;
  finished: number;
  failed: number;
  resources?: Record<string, number>;
  reason?: string;
}

interface ErrorView {
  time: number;
  name: string;
  key: string;
  attempt?: number;
  worker?: string;
  error: { name: string; message: string; stack?: string };
}

interface LiveUpdate {
  label: string;
  startedAt: number;
  now: number;
  version: number;
  totals: NameCounts;
  names: Record<string, NameCounts>;
  workers: WorkerView[];
  bars: Bar[];
  lastSeq: number;
  running: RunningBar[];
  errors?: ErrorView[];
  errorsVersion: number;
  maxBars: number;
  full: boolean;
}

interface Explanation {
  key: string;
  name: string;
  status: string;
  text: string;
  waitingFor: string[];
  attempts: {
    number: number;
    worker?: string;
    startedAt?: number;
    endedAt?: number;
    outcome: string;
    error?: { name: string; message: string };
    exitCode?: number | null;
    signal?: string | null;
    outOfMemory?: boolean;
    timeoutMs?: number;
  }[];
}

// ---- Chart.js, loaded before this module as a global (/assets/chart.js) ---------------------

/** One bar as the chart holds it: x from-to in seconds, lane, outcome, task name and key. */
interface Point {
  x: [number, number];
  y: string;
  o: Outcome;
  n: string;
  k: string;
}

interface Dataset {
  label: string;
  data: Point[];
  backgroundColor: string;
  rank: number;
}

/** The part of Chart.js this page uses. */
interface ChartInstance {
  data: { labels: string[]; datasets: Dataset[] };
  options: { scales: { x: { min?: number; max?: number } } };
  update(mode: 'none'): void;
}

declare const Chart: new (canvas: HTMLCanvasElement, config: object) => ChartInstance;

declare global {
  interface Window {
    /** For tests and the curious: the chart, the kept bars, the latest update. */
    weftDashboard: {
      chart: ChartInstance;
      bars: () => Bar[];
      latest: () => LiveUpdate | null;
      explain: (key: string) => void;
    };
  }
}

// ---- helpers --------------------------------------------------------------------------------

const red = '#f85149';
const grey = '#6e7681';
const ok = '#3fb950';
const muted = '#8b96a3';
const line = '#263040';
const text = '#e6e9ee';
// No reds: red means failure.
const palette = [
  '#58a6ff',
  '#d2a8ff',
  '#3fb950',
  '#f0883e',
  '#56d4dd',
  '#e3b341',
  '#a5d6ff',
  '#bc8cff',
  '#7ee787',
  '#ffa657',
];
/** Task name: [colour, rank], in the order names were first seen. */
const colours = new Map<string, [string, number]>();
const colourEntry = (name: string): [string, number] => {
  let entry = colours.get(name);
  if (!entry) {
    entry = [palette[colours.size % palette.length]!, colours.size];
    colours.set(name, entry);
  }
  return entry;
};
const colour = (name: string): string => colourEntry(name)[0];
const rankOf = (name: string): number => colourEntry(name)[1];
const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => escapes[c]!);
const num = (n: number): string => n.toLocaleString('en-US');
const seconds = (ms: number): string =>
  ms < 1000
    ? `${Math.round(ms)} ms`
    : ms < 60000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

// ---- state ----------------------------------------------------------------------------------

/** Oldest first. */
let bars: Bar[] = [];
/** The newest update. */
let latest: LiveUpdate | null = null;
/** Server clock minus this page's clock, ms. */
let clockOffset = 0;
let windowSeconds = 0;
let pending = false;
/** [page time, tasks done] over the last 10 s, for the rate. */
const doneSamples: [number, number][] = [];

const chart = new Chart($<HTMLCanvasElement>('stream'), {
  type: 'bar',
  data: { labels: [], datasets: [] },
  options: {
    indexAxis: 'y',
    animation: false,
    maintainAspectRatio: false,
    normalized: true,
    onClick: (_event: unknown, elements: { datasetIndex: number; index: number }[]) => {
      const hit = elements[0];
      const point = hit && chart.data.datasets[hit.datasetIndex]?.data[hit.index];
      if (point) openExplanation(point.k);
    },
    onHover: (event: { native?: { target?: EventTarget | null } }, elements: unknown[]) => {
      const target = event.native?.target;
      if (target instanceof HTMLElement) target.style.cursor = elements.length > 0 ? 'pointer' : '';
    },
    plugins: {
      legend: {
        labels: { color: text, boxWidth: 12, filter: (item: { text: string }) => item.text !== '' },
      },
      tooltip: {
        callbacks: {
          label: (c: { raw: Point }) => {
            const r = c.raw;
            const what =
              r.o === 1 ? ' (failed)' : r.o === 2 ? ' (cancelled)' : r.o === -1 ? ' (running)' : '';
            return `${r.n} on ${r.y}: ${seconds((r.x[1] - r.x[0]) * 1000)}${what}`;
          },
          footer: () => 'click to explain',
        },
      },
    },
    scales: {
      x: {
        type: 'linear',
        title: { display: true, text: 'seconds since the dashboard started', color: muted },
        ticks: { color: muted },
        grid: { color: line },
      },
      y: { type: 'category', ticks: { color: text }, grid: { color: line } },
    },
    datasets: {
      bar: {
        grouped: false,
        borderSkipped: false,
        barPercentage: 0.8,
        categoryPercentage: 1,
        minBarLength: 2,
        borderWidth: 0,
      },
    },
  },
});

// One dataset per colour: Chart.js resolves a dataset's options once when they are not
// functions of each bar, which keeps a redraw of 5,000 bars cheap.
const datasets = new Map<string, Dataset>();
const dataset = (key: string, label: string, fill: string, rank: number): Dataset => {
  let d = datasets.get(key);
  if (!d) {
    d = { label, data: [], backgroundColor: fill, rank };
    datasets.set(key, d);
  }
  return d;
};
const datasetOf = (name: string, outcome: Outcome): Dataset =>
  outcome === 1
    ? dataset('failed', 'failed', red, 1e6)
    : outcome === 2
      ? dataset('cancelled', 'cancelled', grey, 1e6 + 1)
      : outcome === -1
        ? dataset(`running ${name}`, '', `${colour(name)}80`, rankOf(name) + 0.5)
        : dataset(`task ${name}`, name, colour(name), rankOf(name));

// ---- drawing --------------------------------------------------------------------------------

function drawStream(u: LiveUpdate): void {
  const now = (Date.now() + clockOffset - u.startedAt) / 1000;
  const from = windowSeconds > 0 ? now - windowSeconds : -Infinity;
  const lanes = u.workers.map((w) => w.name);
  const known = new Set(lanes);
  for (const d of datasets.values()) d.data = [];
  let drawn = 0;
  let first = now;
  const add = (
    worker: string,
    name: string,
    start: number,
    end: number,
    outcome: Outcome,
    key: string,
  ): void => {
    if (end < from) return;
    if (!known.has(worker)) {
      known.add(worker);
      lanes.push(worker);
    }
    datasetOf(name, outcome).data.push({ x: [start, end], y: worker, o: outcome, n: name, k: key });
    if (start < first) first = start;
    drawn++;
  };
  for (const b of bars) add(b[1], b[2], b[3] / 1000, b[4] / 1000, b[5], b[6]);
  for (const r of u.running) add(r[0], r[1], r[2] / 1000, Math.max(now, r[2] / 1000), -1, r[3]);
  chart.data.labels = lanes;
  // Task names in the order first seen (as in the progress list), then failures and
  // cancellations, drawn on top.
  chart.data.datasets = [...datasets.values()]
    .filter((d) => d.data.length > 0)
    .sort((a, b) => a.rank - b.rank);
  chart.options.scales.x.min = windowSeconds > 0 ? from : Math.max(0, first);
  chart.options.scales.x.max = now;
  const height = `${Math.min(640, Math.max(200, 70 + 30 * Math.max(lanes.length, 1)))}px`;
  const holder = $('stream-holder');
  if (holder.style.height !== height) holder.style.height = height;
  chart.update('none');
  $('stream').dataset.bars = String(drawn);
  $('stream-note').textContent =
    `${num(drawn)} attempts shown` +
    (u.lastSeq > bars.length ? ` (the latest ${num(bars.length)} of ${num(u.lastSeq)})` : '');
}

function segments(c: NameCounts, total: number, fill: string): string {
  const pct = (n: number): string => `${((100 * n) / total).toFixed(3)}%`;
  return (
    `<i style="width:${pct(c.finished)};background:${fill}"></i>` +
    `<i class="failed" style="width:${pct(c.failed)}"></i>` +
    `<i class="cancelled" style="width:${pct(c.cancelled)}"></i>` +
    `<i class="running" style="width:${pct(c.running)};background:${fill}"></i>`
  );
}

function drawHeader(u: LiveUpdate): void {
  const t = u.totals;
  const done = t.finished + t.failed + t.cancelled;
  const pageNow = Date.now();
  doneSamples.push([pageNow, done]);
  while (doneSamples.length > 2 && pageNow - doneSamples[0]![0] > 10000) doneSamples.shift();
  const [t0, d0] = doneSamples[0]!;
  const rate = pageNow - t0 > 500 ? (done - d0) / ((pageNow - t0) / 1000) : 0;
  const left = Math.max(0, t.submitted - done);
  const parts: [string, string][] = [
    ['submitted', num(t.submitted)],
    ['running', num(t.running)],
    ['finished', num(t.finished)],
    ['failed', num(t.failed)],
    ['cancelled', num(t.cancelled)],
  ];
  if (t.retried) parts.push(['retried', num(t.retried)]);
  if (rate > 0) parts.push(['rate', `${rate >= 100 ? num(Math.round(rate)) : rate.toFixed(1)}/s`]);
  if (rate > 0 && left > 0) parts.push(['ETA', seconds((left / rate) * 1000)]);
  $('totals').innerHTML = parts.map(([k, v]) => `<span>${k} <b>${v}</b></span>`).join('');
  $('overall-bar').innerHTML = segments(t, Math.max(t.submitted, done + t.running, 1), ok);
}

function drawNames(u: LiveUpdate): void {
  const html = Object.entries(u.names)
    .map(([name, c]) => {
      const done = c.finished + c.failed + c.cancelled;
      const total = Math.max(c.submitted, done + c.running, 1);
      const extra = [
        c.failed ? `${num(c.failed)} failed` : '',
        c.cancelled ? `${num(c.cancelled)} cancelled` : '',
        c.running ? `${num(c.running)} running` : '',
        c.retried ? `${num(c.retried)} retried` : '',
      ]
        .filter(Boolean)
        .join(' · ');
      return (
        `<div class="name" data-name="${esc(name)}"><div class="label"><span><i class="dot" style="background:${colour(name)}"></i>${esc(name)}` +
        `</span><span class="muted">${num(done)} / ${num(total)}${extra ? ` · ${extra}` : ''}</span></div>` +
        `<div class="bar">${segments(c, total, colour(name))}</div></div>`
      );
    })
    .join('');
  $('names').innerHTML = html || '<p class="muted">no tasks yet</p>';
}

function drawWorkers(u: LiveUpdate): void {
  const now = Date.now() + clockOffset;
  $<HTMLTableElement>('workers').tBodies[0]!.innerHTML =
    u.workers
      .map((w) => {
        const running =
          w.running
            .map(
              (r) =>
                `<span class="task" data-key="${esc(r.key)}" title="${esc(r.key)}: click to explain"><i class="dot" style="background:${colour(r.name)}"></i>${esc(r.name)} <span class="muted">${seconds(Math.max(0, now - r.since))}</span></span>`,
            )
            .join('') +
          (w.busy > w.running.length
            ? `<span class="muted">+${w.busy - w.running.length} more</span>`
            : '');
        // One unit per resource, so that a narrow column breaks between them, not inside.
        const resources = Object.entries(w.resources ?? {})
          .map(([k, v]) => `<span class="resource">${esc(k)}=${esc(v)}</span>`)
          .join(', ');
        return (
          `<tr data-worker="${esc(w.name)}"><td class="worker">${esc(w.name)}${w.pid ? ` <span class="muted">pid ${w.pid}</span>` : ''}</td>` +
          `<td class="state-${w.state}"${w.reason ? ` title="${esc(w.reason)}"` : ''}>${w.state}${w.reason && w.state !== 'joined' ? `<span class="reason">${esc(w.reason)}</span>` : ''}</td>` +
          `<td>${running || (w.state === 'joined' ? '<span class="muted">idle</span>' : '')}</td>` +
          `<td class="num">${num(w.finished)}</td><td class="num">${num(w.failed)}</td><td class="resources">${resources}</td></tr>`
        );
      })
      .join('') || '<tr><td colspan="6" class="muted">no workers yet</td></tr>';
}

// Only when the errors change, so an opened or closed stack stays as the reader left it.
function drawErrors(errors: ErrorView[], failed: number): void {
  $('errors-note').textContent =
    failed > errors.length ? `(the latest ${errors.length} of ${num(failed)})` : '';
  $('errors').innerHTML =
    errors
      .map(
        (e, i) =>
          `<div class="error" data-key="${esc(e.key)}" title="click to explain"><div class="msg">${esc(e.error.name)}: ${esc(e.error.message)}</div>` +
          `<div class="muted">task ${esc(e.name)} · key ${esc(e.key)}${e.attempt ? ` · attempt ${e.attempt}` : ''}${e.worker ? ` · on ${esc(e.worker)}` : ''} · ${new Date(e.time).toLocaleTimeString()}</div>` +
          (e.error.stack
            ? `<details${i === 0 ? ' open' : ''}><summary class="muted">stack</summary><pre>${esc(e.error.stack)}</pre></details>`
            : '') +
          '</div>',
      )
      .join('') || '<p class="muted">none yet</p>';
}

function draw(): void {
  pending = false;
  const u = latest;
  if (!u) return;
  drawHeader(u);
  drawNames(u);
  drawWorkers(u);
  drawStream(u);
  $('status').textContent = `live · updated ${new Date(u.now).toLocaleTimeString()}`;
}

function receive(u: LiveUpdate): void {
  clockOffset = u.now - Date.now();
  if (u.full) bars = [];
  for (const b of u.bars) bars.push(b);
  if (bars.length > u.maxBars) bars.splice(0, bars.length - u.maxBars);
  if (u.errors) drawErrors(u.errors, u.totals.failed);
  latest = u;
  if (!pending) {
    pending = true;
    requestAnimationFrame(draw);
  }
}

// ---- the explanation panel ------------------------------------------------------------------

const explainEveryMs = 1_000;
/** The key shown, or undefined when the panel is closed. */
let explaining: string | undefined;
let explainTimer: ReturnType<typeof setTimeout> | undefined;

function openExplanation(key: string): void {
  explaining = key;
  clearTimeout(explainTimer);
  const panel = $('explain');
  panel.hidden = false;
  panel.dataset.key = key;
  // Set again once this key's answer is shown, not left from the previous key's.
  delete panel.dataset.updated;
  $('explain-key').textContent = key;
  $('explain-text').textContent = 'asking…';
  $('explain-attempts').innerHTML = '';
  $('explain-status').textContent = '';
  void refreshExplanation(key);
}

function closeExplanation(): void {
  explaining = undefined;
  clearTimeout(explainTimer);
  const panel = $('explain');
  panel.hidden = true;
  delete panel.dataset.key;
}

/** Asks once, shows the answer, and asks again a second after it came while the panel shows `key`. */
async function refreshExplanation(key: string): Promise<void> {
  let shown: Explanation | string;
  try {
    const response = await fetch(`/api/explain?key=${encodeURIComponent(key)}`, {
      cache: 'no-store',
    });
    const body = (await response.json()) as Explanation | { message: string };
    shown = 'text' in body ? body : body.message;
  } catch (error) {
    shown = `The dashboard did not answer (${String(error)}): the run may have ended.`;
  }
  if (explaining !== key) return;
  if (typeof shown === 'string') {
    $('explain-status').textContent = '';
    $('explain-text').textContent = shown;
    $('explain-attempts').innerHTML = '';
  } else {
    $('explain-status').textContent = `${shown.name} · ${shown.status}`;
    $('explain-text').textContent = shown.text;
    $('explain-attempts').innerHTML = attemptsTable(shown);
  }
  $('explain').dataset.updated = String(Date.now());
  explainTimer = setTimeout(() => void refreshExplanation(key), explainEveryMs);
}

function attemptsTable(explanation: Explanation): string {
  if (explanation.attempts.length === 0) return '<p class="muted">no attempt yet</p>';
  const now = Date.now() + clockOffset;
  const rows = explanation.attempts.map((a) => {
    const took =
      a.startedAt === undefined
        ? ''
        : seconds(
            Math.max(0, (a.endedAt ?? (a.outcome === 'running' ? now : a.startedAt)) - a.startedAt),
          );
    const detail = [
      a.error ? `${a.error.name}: ${a.error.message}` : '',
      a.exitCode !== undefined && a.exitCode !== null ? `exit code ${a.exitCode}` : '',
      a.signal ? `signal ${a.signal}` : '',
      a.outOfMemory ? 'out of memory' : '',
      a.timeoutMs !== undefined ? `limit ${seconds(a.timeoutMs)}` : '',
    ]
      .filter(Boolean)
      .join(' · ');
    return (
      `<tr class="outcome-${esc(a.outcome)}"><td class="num">${a.number}</td><td>${esc(a.worker ?? '')}</td>` +
      `<td>${a.startedAt === undefined ? '' : new Date(a.startedAt).toLocaleTimeString()}</td>` +
      `<td class="num">${a.outcome === 'finished' ? '' : took}</td><td>${esc(a.outcome)}</td><td class="detail">${esc(detail)}</td></tr>`
    );
  });
  return (
    '<table><thead><tr><th class="num">#</th><th>worker</th><th>started</th><th class="num">took</th><th>outcome</th><th>error</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

// ---- wiring ---------------------------------------------------------------------------------

$('errors').addEventListener('click', (event) => {
  const target = event.target as Element;
  // The stack's summary opens and closes the stack; selecting text in it should not explain.
  if (target.closest('details')) return;
  const entry = target.closest<HTMLElement>('.error[data-key]');
  if (entry?.dataset.key) openExplanation(entry.dataset.key);
});
$('workers').addEventListener('click', (event) => {
  const task = (event.target as Element).closest<HTMLElement>('.task[data-key]');
  if (task?.dataset.key) openExplanation(task.dataset.key);
});
$('explain-close').addEventListener('click', closeExplanation);
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && explaining !== undefined) closeExplanation();
});
$<HTMLSelectElement>('window').addEventListener('change', (event) => {
  windowSeconds = Number((event.target as HTMLSelectElement).value);
  if (latest) drawStream(latest);
});

const source = new EventSource('/api/events');
source.onmessage = (m: MessageEvent<string>) => receive(JSON.parse(m.data) as LiveUpdate);
source.onopen = () => {
  $('status').textContent = 'live';
};
source.onerror = () => {
  $('status').textContent = 'disconnected: the run may have ended (retrying)';
};
window.weftDashboard = { chart, bars: () => bars, latest: () => latest, explain: openExplanation };

export {};
