/**
 * The dashboard page: plain HTML, CSS and JavaScript (no build step), drawing the task stream
 * with Chart.js (floating horizontal bars, one lane per worker, one colour per task name, red for
 * failures), progress per task name, workers, and recent errors with their stacks.
 */

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

export function pageHtml(label: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>weft · ${escapeHtml(label)}</title>
<style>
  :root { --bg: #0f1419; --panel: #171e26; --text: #e6e9ee; --muted: #8b96a3; --ok: #3fb950; --bad: #f85149; --run: #58a6ff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, Segoe UI, sans-serif; background: var(--bg); color: var(--text); }
  header { display: flex; gap: 24px; align-items: baseline; padding: 14px 20px; border-bottom: 1px solid #263040; }
  header h1 { font-size: 18px; margin: 0; }
  header .totals span { margin-right: 14px; color: var(--muted); }
  header .totals b { color: var(--text); }
  main { display: grid; grid-template-columns: 2fr 1fr; gap: 14px; padding: 14px 20px; }
  section { background: var(--panel); border-radius: 8px; padding: 12px 14px; min-width: 0; }
  section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 10px; }
  #stream-box { grid-column: 1 / 3; height: 340px; position: relative; }
  #stream-box canvas { width: 100% !important; }
  .name { margin-bottom: 8px; }
  .name .label { display: flex; justify-content: space-between; font-size: 13px; }
  .bar { height: 10px; background: #263040; border-radius: 5px; overflow: hidden; display: flex; }
  .bar i { display: block; height: 100%; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  td, th { text-align: left; padding: 4px 6px; border-bottom: 1px solid #263040; vertical-align: top; }
  th { color: var(--muted); font-weight: 500; }
  .state-joined { color: var(--ok); } .state-left { color: var(--muted); } .state-crashed { color: var(--bad); }
  .error { border-left: 3px solid var(--bad); padding: 4px 8px; margin-bottom: 8px; background: #1f1518; }
  .error .msg { font-weight: 600; }
  .error pre { white-space: pre-wrap; font-size: 11px; color: #c9d1d9; margin: 4px 0 0; max-height: 180px; overflow: auto; }
  .muted { color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>weft · <span id="label">${escapeHtml(label)}</span></h1>
  <div class="totals" id="totals"></div>
  <div class="muted" id="status">connecting…</div>
</header>
<main>
  <section id="stream-box"><h2>Task stream</h2><div style="position:relative;height:290px"><canvas id="stream"></canvas></div></section>
  <section><h2>Progress by task</h2><div id="names"></div></section>
  <section><h2>Workers</h2><table id="workers"><thead><tr><th>worker</th><th>state</th><th>running</th><th>done</th><th>failed</th><th>resources</th></tr></thead><tbody></tbody></table></section>
  <section style="grid-column: 1 / 3"><h2>Recent errors</h2><div id="errors"><p class="muted">none yet</p></div></section>
</main>
<script src="/assets/chart.js"></script>
<script>
(() => {
  const palette = ['#58a6ff', '#d2a8ff', '#3fb950', '#f0883e', '#79c0ff', '#e3b341', '#56d4dd', '#ff7b72', '#a5d6ff', '#bc8cff'];
  const colours = new Map();
  const colour = (name) => { if (!colours.has(name)) colours.set(name, palette[colours.size % palette.length]); return colours.get(name); };
  const maxBars = 3000;
  let bars = [];
  let startedAt = Date.now();
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

  const chart = new Chart(document.getElementById('stream'), {
    type: 'bar',
    data: { labels: [], datasets: [] },
    options: {
      indexAxis: 'y', animation: false, maintainAspectRatio: false, parsing: true,
      plugins: { legend: { labels: { color: '#e6e9ee', boxWidth: 12 } }, tooltip: { callbacks: { label: (c) => c.dataset.label + ' ' + (c.raw.x[1] - c.raw.x[0]).toFixed(3) + ' s' + (c.raw.ok ? '' : ' (failed)') } } },
      scales: {
        x: { type: 'linear', title: { display: true, text: 'seconds', color: '#8b96a3' }, ticks: { color: '#8b96a3' }, grid: { color: '#263040' } },
        y: { stacked: true, ticks: { color: '#e6e9ee' }, grid: { color: '#263040' } },
      },
      datasets: { bar: { grouped: false, borderSkipped: false, barPercentage: 0.8, categoryPercentage: 0.9 } },
    },
  });

  function drawStream(snapshot) {
    const workers = snapshot.workers.map((w) => w.name);
    for (const b of bars) if (!workers.includes(b[1])) workers.push(b[1]);
    const t0 = startedAt;
    const byName = new Map();
    const add = (name, worker, start, end, ok) => {
      if (!byName.has(name)) byName.set(name, []);
      byName.get(name).push({ x: [(start - t0) / 1000, (end - t0) / 1000], y: worker, ok });
    };
    for (const b of bars) add(b[2], b[1], b[3], b[4], b[5] === 1);
    for (const r of snapshot.running) add(r[1], r[0], r[2], snapshot.now, true);
    chart.data.labels = workers;
    chart.data.datasets = [...byName].map(([name, data]) => ({
      label: name, data,
      backgroundColor: data.map((d) => (d.ok ? colour(name) : '#f85149')),
      borderColor: data.map((d) => (d.ok ? colour(name) : '#f85149')),
      borderWidth: 1,
    }));
    chart.update('none');
  }

  function render(s) {
    startedAt = s.startedAt;
    bars = bars.concat(s.bars);
    if (bars.length > maxBars) bars = bars.slice(-maxBars);
    const t = s.totals;
    document.getElementById('totals').innerHTML =
      '<span>submitted <b>' + t.submitted + '</b></span><span>running <b>' + t.running + '</b></span><span>finished <b>' + t.finished + '</b></span><span>failed <b>' + t.failed + '</b></span><span>cancelled <b>' + t.cancelled + '</b></span>';
    document.getElementById('names').innerHTML = Object.entries(s.names).map(([name, c]) => {
      const total = Math.max(c.submitted, c.finished + c.failed + c.cancelled + c.running, 1);
      const pct = (n) => (100 * n / total).toFixed(2) + '%';
      return '<div class="name"><div class="label"><span style="color:' + colour(name) + '">' + esc(name) + '</span><span class="muted">' +
        (c.finished + c.failed + c.cancelled) + ' / ' + total + (c.failed ? ' · ' + c.failed + ' failed' : '') + (c.running ? ' · ' + c.running + ' running' : '') + '</span></div>' +
        '<div class="bar"><i style="width:' + pct(c.finished) + ';background:' + colour(name) + '"></i><i style="width:' + pct(c.failed + c.cancelled) + ';background:#f85149"></i><i style="width:' + pct(c.running) + ';background:#263040;outline:1px solid ' + colour(name) + '"></i></div></div>';
    }).join('') || '<p class="muted">no tasks yet</p>';
    document.querySelector('#workers tbody').innerHTML = s.workers.map((w) =>
      '<tr data-worker="' + esc(w.name) + '"><td>' + esc(w.name) + (w.pid ? ' <span class="muted">pid ' + w.pid + '</span>' : '') + '</td><td class="state-' + w.state + '">' + w.state + '</td><td>' +
      (w.running.map((r) => esc(r.name)).join(', ') || '<span class="muted">idle</span>') + '</td><td>' + w.finished + '</td><td>' + w.failed + '</td><td>' +
      (w.resources ? esc(Object.entries(w.resources).map(([k, v]) => k + '=' + v).join(', ')) : '') + '</td></tr>').join('');
    document.getElementById('errors').innerHTML = s.errors.map((e) =>
      '<div class="error"><div class="msg">' + esc(e.error.name) + ': ' + esc(e.error.message) + '</div><div class="muted">task ' + esc(e.name) + ' · ' + esc(e.key) + (e.worker ? ' · on ' + esc(e.worker) : '') + ' · ' + new Date(e.time).toLocaleTimeString() + '</div>' +
      (e.error.stack ? '<details open><summary class="muted">stack</summary><pre>' + esc(e.error.stack) + '</pre></details>' : '') + '</div>').join('') || '<p class="muted">none yet</p>';
    drawStream(s);
    document.getElementById('status').textContent = 'live · updated ' + new Date(s.now).toLocaleTimeString();
  }

  const source = new EventSource('/api/events');
  source.onmessage = (m) => render(JSON.parse(m.data));
  source.onerror = () => { document.getElementById('status').textContent = 'disconnected (the run may have ended)'; };
})();
</script>
</body>
</html>`;
}
