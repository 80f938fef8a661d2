/**
 * The dashboard: one HTML page with its script inline, no libraries. It reads only the
 * GraphQL API (POST /graphql, polled every 1.5 s): the cells and their wallets, the complex's
 * topology with each cell's metered flow in the latest settled interval and its schedule in
 * the latest cleared one, price and volume per interval as SVG charts, recent settlements.
 */

const QUERY = `{
  indexerStatus { indexedBlock headBlock lagBlocks ready }
  cells(first: 50, orderBy: { field: ID, direction: ASC }) {
    nodes { id cellType status maxImportW maxExportW wallet { deposited poolPaid poolReceived debt } }
  }
  intervals(first: 24, orderBy: { field: INTERVAL, direction: DESC }) {
    nodes { interval status price volumeWh orderCount scheduledCells positionsSettled }
  }
  schedules(first: 50, orderBy: { field: INTERVAL, direction: DESC }) { nodes { interval cellId side energyWh } }
  readings(first: 50, orderBy: { field: INTERVAL, direction: DESC }) { nodes { interval cellId importWh exportWh deliveredWh } }
  settlements(first: 12, orderBy: { field: BLOCK_NUMBER, direction: DESC }) {
    nodes { interval cellId side meteredWh amount refund txHash }
  }
}`;

const SCRIPT = `
const QUERY = ${JSON.stringify(QUERY)};
const $ = (id) => document.getElementById(id);
const tok = (s) => { const v = BigInt(s ?? '0'); const neg = v < 0n; const a = neg ? -v : v;
  return (neg ? '-' : '') + (a / 1000000n) + '.' + String(a % 1000000n).padStart(6, '0').slice(0, 4); };
const hhmm = (t) => new Date(t * 900 * 1000).toISOString().slice(11, 16);
const esc = (s) => String(s).replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
let refreshes = 0;

function chart(el, points, key, colour, label) {
  const w = 460, h = 150, pad = 28;
  if (points.length === 0) { el.innerHTML = '<text x="10" y="20">no intervals yet</text>'; return; }
  const vals = points.map((p) => Number(p[key] ?? 0));
  const max = Math.max(1, ...vals);
  const step = (w - pad - 8) / Math.max(1, points.length);
  let bars = '';
  points.forEach((p, i) => {
    const v = Number(p[key] ?? 0); const bh = ((h - pad - 10) * v) / max;
    bars += '<rect x="' + (pad + i * step + 1) + '" y="' + (h - pad - bh) + '" width="' + Math.max(1, step - 2) +
      '" height="' + bh + '" fill="' + colour + '"><title>' + p.interval + ': ' + v + '</title></rect>';
  });
  const first = points[0].interval, last = points[points.length - 1].interval;
  el.innerHTML = bars + '<text x="' + pad + '" y="' + (h - 10) + '">' + first + '</text><text x="' + (w - 60) + '" y="' + (h - 10) + '">' + last +
    '</text><text x="2" y="12">' + label + ' (max ' + max.toLocaleString() + ')</text>';
}

function topology(el, cells, flows, scheduled) {
  const w = 460, h = 260, cx = w / 2, bus = 70;
  let svg = '<rect x="' + (cx - 40) + '" y="10" width="80" height="28" rx="4" fill="#334"/><text x="' + (cx - 30) + '" y="29" fill="#fff">router</text>' +
    '<line x1="' + cx + '" y1="38" x2="' + cx + '" y2="' + bus + '" stroke="#889" stroke-width="3"/>' +
    '<line x1="30" y1="' + bus + '" x2="' + (w - 30) + '" y2="' + bus + '" stroke="#889" stroke-width="4"/>';
  const n = Math.max(1, cells.length);
  cells.forEach((c, i) => {
    const x = 30 + ((w - 60) * (i + 0.5)) / n;
    const f = flows.get(c.id); const s = scheduled.get(c.id);
    const colour = f === undefined ? '#99a' : f > 0 ? '#2a8' : f < 0 ? '#d63' : '#99a';
    const width = f === undefined ? 2 : 2 + Math.min(10, Math.abs(f) / 150);
    svg += '<line x1="' + x + '" y1="' + bus + '" x2="' + x + '" y2="170" stroke="' + colour + '" stroke-width="' + width + '"/>' +
      '<circle cx="' + x + '" cy="190" r="22" fill="#eef" stroke="#446"/><text x="' + (x - 14) + '" y="195">#' + c.id + '</text>' +
      '<text x="' + (x - 34) + '" y="228" font-size="11">' + (f === undefined ? 'no reading' : (f > 0 ? '↑' : f < 0 ? '↓' : '') + Math.abs(f) + ' Wh') + '</text>' +
      '<text x="' + (x - 34) + '" y="244" font-size="11" fill="#667">' + (s === undefined ? '' : 'sched ' + (s > 0 ? '+' : '') + s) + '</text>';
  });
  el.innerHTML = svg;
}

async function refresh() {
  try {
    const res = await fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: QUERY }) });
    const json = await res.json();
    if (json.errors) throw new Error(json.errors.map((e) => e.message).join('; '));
    const d = json.data;
    refreshes++;
    $('status').textContent = 'indexed block ' + d.indexerStatus.indexedBlock + ' of ' + d.indexerStatus.headBlock +
      (d.indexerStatus.ready ? ' · ready' : ' · catching up') + ' · refresh ' + refreshes;
    $('status').dataset.refreshes = String(refreshes);
    const intervals = [...d.intervals.nodes].reverse();
    const settled = intervals.filter((i) => i.status === 'settled');
    const latest = settled[settled.length - 1];
    $('latest-settled').textContent = latest ? String(latest.interval) : '—';
    $('latest-settled').dataset.interval = latest ? String(latest.interval) : '';
    $('latest-summary').textContent = latest
      ? hhmm(latest.interval) + ' UTC · ' + tok(latest.price) + ' dEUR/kWh · ' + latest.volumeWh + ' Wh · ' + latest.positionsSettled + '/' + latest.scheduledCells + ' settled'
      : 'waiting for the first settled interval';
    $('cells').innerHTML = d.cells.nodes.map((c) => '<tr><td>#' + c.id + '</td><td>' + esc(c.status) + '</td><td>' + c.maxImportW + ' / ' + c.maxExportW +
      '</td><td>' + tok(c.wallet?.deposited) + '</td><td>' + tok(c.wallet?.poolReceived) + '</td><td>' + tok(c.wallet?.poolPaid) + '</td><td>' + tok(c.wallet?.debt) + '</td></tr>').join('');
    chart($('price'), intervals.filter((i) => i.price !== null), 'price', '#36c', 'price, base units/kWh');
    chart($('volume'), intervals.filter((i) => i.volumeWh !== null), 'volumeWh', '#2a8', 'volume, Wh');
    const flows = new Map();
    const lastRead = d.readings.nodes[0]?.interval;
    for (const r of d.readings.nodes) if (r.interval === lastRead) flows.set(r.cellId, Number(r.exportWh) - Number(r.importWh));
    const scheduled = new Map();
    const lastSched = d.schedules.nodes[0]?.interval;
    for (const s of d.schedules.nodes) if (s.interval === lastSched) scheduled.set(s.cellId, (s.side === 'SELL' ? 1 : -1) * Number(s.energyWh));
    $('flows-caption').textContent = 'metered in interval ' + (lastRead ?? '—') + ', scheduled for ' + (lastSched ?? '—');
    topology($('topology'), d.cells.nodes, flows, scheduled);
    $('settlements').innerHTML = d.settlements.nodes.map((s) => '<tr><td>' + s.interval + '</td><td>#' + s.cellId + '</td><td>' + s.side.toLowerCase() +
      '</td><td>' + s.meteredWh + '</td><td>' + tok(s.amount) + '</td><td>' + tok(s.refund) + '</td></tr>').join('');
    $('error').textContent = '';
  } catch (error) {
    $('error').textContent = 'GraphQL: ' + error.message;
  }
}
refresh();
setInterval(refresh, 1500);
`;

/** The dashboard page (HTML with its script inline). */
export function dashboardPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gridcell · IDEA demonstration complex</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px; color: #223; background: #f7f8fb; }
  h1 { font-size: 18px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 0 0 6px; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 12px; }
  section { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: 10px; }
  table { border-collapse: collapse; width: 100%; } td, th { padding: 2px 6px; text-align: right; border-bottom: 1px solid #eef; }
  th { color: #667; font-weight: 600; } svg { width: 100%; height: auto; } text { font-size: 12px; }
  #error { color: #b22; } .big { font-size: 22px; font-weight: 700; }
</style>
</head>
<body>
<h1>gridcell · the IDEA demonstration complex</h1>
<div id="status">connecting to /graphql …</div><div id="error"></div>
<div class="grid">
  <section><h2>Latest settled interval</h2><div class="big" id="latest-settled" data-interval="">—</div><div id="latest-summary"></div></section>
  <section><h2>Topology and flows</h2><div id="flows-caption"></div><svg id="topology" viewBox="0 0 460 260"></svg></section>
  <section><h2>Clearing price per interval</h2><svg id="price" viewBox="0 0 460 150"></svg></section>
  <section><h2>Volume per interval</h2><svg id="volume" viewBox="0 0 460 150"></svg></section>
  <section><h2>Cells</h2><table><thead><tr><th>cell</th><th>state</th><th>max import / export W</th><th>deposited</th><th>pool received</th><th>pool paid</th><th>debt</th></tr></thead><tbody id="cells"></tbody></table></section>
  <section><h2>Recent settlements</h2><table><thead><tr><th>interval</th><th>cell</th><th>side</th><th>metered Wh</th><th>amount</th><th>refund</th></tr></thead><tbody id="settlements"></tbody></table></section>
</div>
<script>${SCRIPT}</script>
</body>
</html>`;
}
