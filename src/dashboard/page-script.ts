/**
 * The script that fills the dashboard page (served as /assets/dashboard.js, after Chart.js). It
 * reads the live stream (`/api/events`, protocol in server.ts), keeps at most `maxBars` bars, and
 * redraws at most once per animation frame: the task stream as Chart.js floating bars (one lane
 * per worker, one colour per task name, red for failures, grey for cancellations, pale while
 * running), progress per task name, workers and recent errors. Plain browser JavaScript held as a
 * string (String.raw, so its backslashes stay as written; it uses no backticks or `${`).
 */
export const pageScript = String.raw`
(() => {
  'use strict';
  const red = '#f85149', grey = '#6e7681', ok = '#3fb950', muted = '#8b96a3', line = '#263040', text = '#e6e9ee';
  // No reds: red means failure.
  const palette = ['#58a6ff', '#d2a8ff', '#3fb950', '#f0883e', '#56d4dd', '#e3b341', '#a5d6ff', '#bc8cff', '#7ee787', '#ffa657'];
  const colours = new Map(); // task name: [colour, rank], in the order names were first seen
  const colour = (name) => {
    if (!colours.has(name)) colours.set(name, [palette[colours.size % palette.length], colours.size]);
    return colours.get(name)[0];
  };
  const rankOf = (name) => {
    colour(name);
    return colours.get(name)[1];
  };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const num = (n) => n.toLocaleString('en-US');
  const seconds = (ms) => (ms < 1000 ? Math.round(ms) + ' ms' : ms < 60000 ? (ms / 1000).toFixed(1) + ' s' : Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s');
  const $ = (id) => document.getElementById(id);

  let bars = []; // [seq, worker, name, start, end, outcome], oldest first
  let latest = null; // the newest update
  let clockOffset = 0; // server clock minus this page's clock, ms
  let windowSeconds = 0;
  let pending = false;
  const doneSamples = []; // [page time, tasks done] over the last 10 s, for the rate

  const chart = new Chart($('stream'), {
    type: 'bar',
    data: { labels: [], datasets: [] },
    options: {
      indexAxis: 'y',
      animation: false,
      maintainAspectRatio: false,
      normalized: true,
      plugins: {
        legend: { labels: { color: text, boxWidth: 12, filter: (item) => item.text !== '' } },
        tooltip: {
          callbacks: {
            label: (c) => {
              const r = c.raw;
              const what = r.o === 1 ? ' (failed)' : r.o === 2 ? ' (cancelled)' : r.o === -1 ? ' (running)' : '';
              return r.n + ' on ' + r.y + ': ' + seconds((r.x[1] - r.x[0]) * 1000) + what;
            },
          },
        },
      },
      scales: {
        x: { type: 'linear', title: { display: true, text: 'seconds since the dashboard started', color: muted }, ticks: { color: muted }, grid: { color: line } },
        y: { type: 'category', ticks: { color: text }, grid: { color: line } },
      },
      datasets: { bar: { grouped: false, borderSkipped: false, barPercentage: 0.8, categoryPercentage: 1, minBarLength: 2, borderWidth: 0 } },
    },
  });
  // One dataset per colour: Chart.js resolves a dataset's options once when they are not
  // functions of each bar, which keeps a redraw of 5,000 bars cheap.
  const datasets = new Map();
  const dataset = (key, label, fill, rank) => {
    let d = datasets.get(key);
    if (!d) {
      d = { label, data: [], backgroundColor: fill, rank };
      datasets.set(key, d);
    }
    return d;
  };
  const datasetOf = (name, outcome) =>
    outcome === 1 ? dataset('failed', 'failed', red, 1e6)
      : outcome === 2 ? dataset('cancelled', 'cancelled', grey, 1e6 + 1)
        : outcome === -1 ? dataset('running ' + name, '', colour(name) + '80', rankOf(name) + 0.5)
          : dataset('task ' + name, name, colour(name), rankOf(name));

  function drawStream(u) {
    const now = (Date.now() + clockOffset - u.startedAt) / 1000;
    const from = windowSeconds > 0 ? now - windowSeconds : -Infinity;
    const lanes = u.workers.map((w) => w.name);
    const known = new Set(lanes);
    for (const d of datasets.values()) d.data = [];
    let drawn = 0;
    let first = now;
    const add = (worker, name, start, end, outcome) => {
      if (end < from) return;
      if (!known.has(worker)) { known.add(worker); lanes.push(worker); }
      datasetOf(name, outcome).data.push({ x: [start, end], y: worker, o: outcome, n: name });
      if (start < first) first = start;
      drawn++;
    };
    for (const b of bars) add(b[1], b[2], b[3] / 1000, b[4] / 1000, b[5]);
    for (const r of u.running) add(r[0], r[1], r[2] / 1000, Math.max(now, r[2] / 1000), -1);
    chart.data.labels = lanes;
    // Task names in the order first seen (as in the progress list), then failures and
    // cancellations, drawn on top.
    chart.data.datasets = [...datasets.values()].filter((d) => d.data.length > 0).sort((a, b) => a.rank - b.rank);
    chart.options.scales.x.min = windowSeconds > 0 ? from : Math.max(0, first);
    chart.options.scales.x.max = now;
    const height = Math.min(640, Math.max(200, 70 + 30 * Math.max(lanes.length, 1))) + 'px';
    if ($('stream-holder').style.height !== height) $('stream-holder').style.height = height;
    chart.update('none');
    $('stream').dataset.bars = String(drawn);
    $('stream-note').textContent = num(drawn) + ' attempts shown' + (u.lastSeq > bars.length ? ' (the latest ' + num(bars.length) + ' of ' + num(u.lastSeq) + ')' : '');
  }

  function segments(c, total, fill) {
    const pct = (n) => (100 * n / total).toFixed(3) + '%';
    return '<i style="width:' + pct(c.finished) + ';background:' + fill + '"></i>' +
      '<i class="failed" style="width:' + pct(c.failed) + '"></i>' +
      '<i class="cancelled" style="width:' + pct(c.cancelled) + '"></i>' +
      '<i class="running" style="width:' + pct(c.running) + ';background:' + fill + '"></i>';
  }

  function drawHeader(u) {
    const t = u.totals;
    const done = t.finished + t.failed + t.cancelled;
    const pageNow = Date.now();
    doneSamples.push([pageNow, done]);
    while (doneSamples.length > 2 && pageNow - doneSamples[0][0] > 10000) doneSamples.shift();
    const [t0, d0] = doneSamples[0];
    const rate = pageNow - t0 > 500 ? (done - d0) / ((pageNow - t0) / 1000) : 0;
    const left = Math.max(0, t.submitted - done);
    const parts = [
      ['submitted', num(t.submitted)], ['running', num(t.running)], ['finished', num(t.finished)],
      ['failed', num(t.failed)], ['cancelled', num(t.cancelled)],
    ];
    if (t.retried) parts.push(['retried', num(t.retried)]);
    if (rate > 0) parts.push(['rate', (rate >= 100 ? num(Math.round(rate)) : rate.toFixed(1)) + '/s']);
    if (rate > 0 && left > 0) parts.push(['ETA', seconds((left / rate) * 1000)]);
    $('totals').innerHTML = parts.map(([k, v]) => '<span>' + k + ' <b>' + v + '</b></span>').join('');
    $('overall-bar').innerHTML = segments(t, Math.max(t.submitted, done + t.running, 1), ok);
  }

  function drawNames(u) {
    const html = Object.entries(u.names).map(([name, c]) => {
      const done = c.finished + c.failed + c.cancelled;
      const total = Math.max(c.submitted, done + c.running, 1);
      const extra = [
        c.failed ? num(c.failed) + ' failed' : '', c.cancelled ? num(c.cancelled) + ' cancelled' : '',
        c.running ? num(c.running) + ' running' : '', c.retried ? num(c.retried) + ' retried' : '',
      ].filter(Boolean).join(' · ');
      return '<div class="name" data-name="' + esc(name) + '"><div class="label"><span><i class="dot" style="background:' + colour(name) + '"></i>' + esc(name) +
        '</span><span class="muted">' + num(done) + ' / ' + num(total) + (extra ? ' · ' + extra : '') + '</span></div>' +
        '<div class="bar">' + segments(c, total, colour(name)) + '</div></div>';
    }).join('');
    $('names').innerHTML = html || '<p class="muted">no tasks yet</p>';
  }

  function drawWorkers(u) {
    const now = Date.now() + clockOffset;
    $('workers').tBodies[0].innerHTML = u.workers.map((w) => {
      const running = w.running.map((r) => '<span class="task" title="' + esc(r.key) + '"><i class="dot" style="background:' + colour(r.name) + '"></i>' + esc(r.name) + ' <span class="muted">' + seconds(Math.max(0, now - r.since)) + '</span></span>').join('') +
        (w.busy > w.running.length ? '<span class="muted">+' + (w.busy - w.running.length) + ' more</span>' : '');
      const resources = w.resources ? Object.entries(w.resources).map(([k, v]) => k + '=' + v).join(', ') : '';
      return '<tr data-worker="' + esc(w.name) + '"><td>' + esc(w.name) + (w.pid ? ' <span class="muted">pid ' + w.pid + '</span>' : '') + '</td>' +
        '<td class="state-' + w.state + '"' + (w.reason ? ' title="' + esc(w.reason) + '"' : '') + '>' + w.state + (w.reason && w.state !== 'joined' ? '<span class="reason">' + esc(w.reason) + '</span>' : '') + '</td>' +
        '<td>' + (running || (w.state === 'joined' ? '<span class="muted">idle</span>' : '')) + '</td>' +
        '<td class="num">' + num(w.finished) + '</td><td class="num">' + num(w.failed) + '</td><td>' + esc(resources) + '</td></tr>';
    }).join('') || '<tr><td colspan="6" class="muted">no workers yet</td></tr>';
  }

  // Only when the errors change, so an opened or closed stack stays as the reader left it.
  function drawErrors(errors, failed) {
    $('errors-note').textContent = failed > errors.length ? '(the latest ' + errors.length + ' of ' + num(failed) + ')' : '';
    $('errors').innerHTML = errors.map((e, i) =>
      '<div class="error" data-key="' + esc(e.key) + '"><div class="msg">' + esc(e.error.name) + ': ' + esc(e.error.message) + '</div>' +
      '<div class="muted">task ' + esc(e.name) + ' · key ' + esc(e.key) + (e.attempt ? ' · attempt ' + e.attempt : '') + (e.worker ? ' · on ' + esc(e.worker) : '') + ' · ' + new Date(e.time).toLocaleTimeString() + '</div>' +
      (e.error.stack ? '<details' + (i === 0 ? ' open' : '') + '><summary class="muted">stack</summary><pre>' + esc(e.error.stack) + '</pre></details>' : '') + '</div>').join('') ||
      '<p class="muted">none yet</p>';
  }

  function draw() {
    pending = false;
    const u = latest;
    drawHeader(u);
    drawNames(u);
    drawWorkers(u);
    drawStream(u);
    $('status').textContent = 'live · updated ' + new Date(u.now).toLocaleTimeString();
  }

  function receive(u) {
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

  $('window').addEventListener('change', (e) => {
    windowSeconds = Number(e.target.value);
    if (latest) drawStream(latest);
  });
  const source = new EventSource('/api/events');
  source.onmessage = (m) => receive(JSON.parse(m.data));
  source.onopen = () => { $('status').textContent = 'live'; };
  source.onerror = () => { $('status').textContent = 'disconnected: the run may have ended (retrying)'; };
  window.weftDashboard = { chart, bars: () => bars, latest: () => latest };
})();
`;
