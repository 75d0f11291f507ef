/**
 * The dashboard page's HTML and CSS: plain files held as strings, so `tsc` ships them in dist and
 * no build step is needed. The script that fills the page is browser/dashboard.ts.
 */

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** The page, titled with the executor's label. */
export function pageHtml(label: string): string {
  const title = escapeHtml(label);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>weft · ${title}</title>
<link rel="stylesheet" href="/assets/dashboard.css">
</head>
<body>
<header>
  <h1>weft <span class="muted">·</span> <span id="label">${title}</span></h1>
  <div class="overall"><div class="bar" id="overall-bar"></div><div id="totals" class="totals"></div></div>
  <div id="status" class="status muted">connecting…</div>
</header>
<main>
  <section id="stream-box">
    <div class="section-head">
      <h2>Task stream</h2>
      <span class="muted" id="stream-note"></span>
      <label class="muted">window
        <select id="window">
          <option value="0">all kept</option>
          <option value="10">last 10 s</option>
          <option value="60">last 1 min</option>
          <option value="300">last 5 min</option>
        </select>
      </label>
    </div>
    <div id="stream-holder"><canvas id="stream" data-bars="0"></canvas></div>
  </section>
  <section id="names-box"><h2>Progress by task</h2><div id="names"><p class="muted">no tasks yet</p></div></section>
  <section id="workers-box">
    <h2>Workers</h2>
    <table id="workers">
      <thead><tr><th>worker</th><th>state</th><th>running now</th><th class="num">done</th><th class="num">failed</th><th>resources</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="errors-box"><h2>Recent errors <span class="muted" id="errors-note"></span></h2><div id="errors"><p class="muted">none yet</p></div></section>
</main>
<aside id="explain" hidden aria-live="polite">
  <div class="section-head">
    <h2>Why? <span id="explain-key"></span></h2>
    <span class="muted" id="explain-status"></span>
    <button type="button" id="explain-close" title="close (Esc)" aria-label="close">×</button>
  </div>
  <p id="explain-text"></p>
  <div id="explain-attempts"></div>
</aside>
<script src="/assets/chart.js"></script>
<script type="module" src="/assets/dashboard.js"></script>
</body>
</html>
`;
}

/** The page's style sheet. */
export const pageCss = `
:root {
  --bg: #0f1419; --panel: #171e26; --line: #263040; --text: #e6e9ee; --muted: #8b96a3;
  --ok: #3fb950; --bad: #f85149; --cancelled: #6e7681;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--text); }
header { display: flex; gap: 24px; align-items: center; padding: 12px 20px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; white-space: nowrap; }
.overall { flex: 1; min-width: 320px; }
.totals { display: flex; flex-wrap: wrap; column-gap: 14px; }
.overall .bar { height: 8px; margin-bottom: 4px; }
.totals span { color: var(--muted); white-space: nowrap; }
.totals b { color: var(--text); font-variant-numeric: tabular-nums; }
.status { margin-left: auto; max-width: 260px; text-align: right; }
main { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 14px; padding: 14px 20px; }
section { background: var(--panel); border-radius: 8px; padding: 12px 14px; min-width: 0; }
h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 10px; font-weight: 600; }
.section-head { display: flex; gap: 16px; align-items: baseline; }
.section-head h2 { margin-right: auto; }
select { background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 4px; font: inherit; }
#stream-box, #errors-box { grid-column: 1 / 3; }
#stream-holder { position: relative; height: 240px; }
.name { margin-bottom: 9px; }
.name .label { display: flex; justify-content: space-between; gap: 12px; font-size: 13px; }
.name .label span:last-child { font-variant-numeric: tabular-nums; }
.bar { height: 10px; background: var(--line); border-radius: 5px; overflow: hidden; display: flex; }
.bar i { display: block; height: 100%; }
.bar i.failed { background: var(--bad); }
.bar i.cancelled { background: var(--cancelled); }
.bar i.running { opacity: .45; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
#workers-box { overflow-x: auto; }
td, th { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; }
#workers td.worker { overflow-wrap: anywhere; min-width: 8em; }
#workers .resource { display: inline-block; overflow-wrap: anywhere; }
#workers .task { cursor: pointer; }
.reason { display: block; font-size: 12px; color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.state-joined { color: var(--ok); } .state-left { color: var(--muted); } .state-crashed { color: var(--bad); }
.task { display: inline-block; margin-right: 8px; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 2px; margin-right: 4px; }
.error { border-left: 3px solid var(--bad); padding: 6px 10px; margin-bottom: 8px; background: #1f1518; border-radius: 0 4px 4px 0; }
.error .msg { font-weight: 600; word-break: break-word; }
.error pre { white-space: pre-wrap; word-break: break-word; font-size: 11.5px; color: #c9d1d9; margin: 4px 0 0; max-height: 220px; overflow: auto; }
.error { cursor: pointer; }
.error summary { cursor: pointer; }
#explain { position: fixed; top: 12px; right: 12px; bottom: 12px; width: min(560px, calc(100vw - 24px)); overflow: auto; z-index: 10;
  background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; box-shadow: 0 8px 30px #000a; }
#explain[hidden] { display: none; }
#explain h2 { text-transform: none; letter-spacing: 0; font-size: 14px; color: var(--text); }
#explain-key { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
#explain-text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0 12px; }
#explain-close { background: none; border: 0; color: var(--muted); font-size: 20px; line-height: 1; cursor: pointer; padding: 0 4px; }
#explain-close:hover { color: var(--text); }
#explain td.detail { overflow-wrap: anywhere; }
.outcome-failed td, .outcome-crashed td, .outcome-timeout td { color: var(--bad); }
.muted { color: var(--muted); }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } #stream-box, #errors-box { grid-column: 1; } }
`;
