// The runs page: every run in the store (whoever started it), filtered, compared, renamed, deleted.
// The list is polled while the page is open, so runs started from the CLI appear by themselves.

import { api, isAbort, latest } from './api.js';
import { dom, h, toast } from './dom.js';
import { compact, duration, int, pct, toNum, when } from './format.js';
import { examplesAxis, scaleToggle, yScale } from './charts.js';
import { renderBadge } from './dashboard.js';

const POLL_MS = 1500;
const COLORS = ['#2357d6', '#e8590c', '#2b8a3e', '#ae3ec9', '#c92a2a', '#1098ad', '#f08c00', '#5c940d', '#862e9c', '#364fc7'];

// series: `${id}:${metric}` -> {status, points}; a series fetched while its run was active is fetched again until
// it has been read with the run over (the final rows: the end's evaluation comes after the last live point).
const page = { active: false, timer: null, runs: [], selected: new Set(), renaming: null, series: new Map(), filterTimer: null,
  scale: null };
const isActive = (status) => ['queued', 'running'].includes(status);

export function initRuns(meta) {
  dom.runsStatus.append(...['queued', 'running', 'finished', 'stopped', 'diverged', 'failed', 'interrupted']
    .map((s) => h('option', { value: s }, s)));
  dom.runsDataset.append(...meta.datasets.map((d) => h('option', { value: d.name }, d.name)));
  dom.runsSearch.addEventListener('input', () => { clearTimeout(page.filterTimer); page.filterTimer = setTimeout(refresh, 150); });
  dom.runsStatus.addEventListener('change', refresh);
  dom.runsDataset.addEventListener('change', refresh);
  dom.compareMetric.addEventListener('change', () => { page.series.clear(); drawCompare(); });
  dom.runsAll.addEventListener('change', () => {
    for (const r of page.runs) dom.runsAll.checked ? page.selected.add(r.id) : page.selected.delete(r.id);
    renderTable();
    drawCompare();
  });
  dom.runsDelete.addEventListener('click', deleteSelected);
  page.scale = scaleToggle('log scale', () => drawCompare());
  page.scale.box.setAttribute('aria-label', 'Compare chart: logarithmic y axis');
  dom.compareMetric.closest('label').after(page.scale.el);
}

export function showRunsPage(active) {
  page.active = active;
  clearInterval(page.timer);
  if (active) {
    refresh();
    page.timer = setInterval(refresh, POLL_MS);
  }
}

async function refresh() {
  const q = new URLSearchParams();
  if (dom.runsSearch.value.trim()) q.set('search', dom.runsSearch.value.trim());
  if (dom.runsStatus.value) q.set('status', dom.runsStatus.value);
  if (dom.runsDataset.value) q.set('dataset', dom.runsDataset.value);
  try {
    const out = await latest('runs', `/api/runs?${q}`);
    const before = JSON.stringify(page.runs);
    page.runs = out.runs;
    const pool = out.pool ? ` · workers: ${out.pool.running.length}/${out.pool.workers} busy, ${out.pool.queued.length} waiting` : '';
    dom.runsCount.textContent = `${out.runs.length} run${out.runs.length === 1 ? '' : 's'}${pool}`;
    if (before !== JSON.stringify(page.runs) && page.renaming === null) renderTable();
    if (page.runs.some((r) => page.selected.has(r.id) && stale(r))) drawCompare();
  } catch (err) {
    if (!isAbort(err)) dom.runsCount.textContent = `could not list runs: ${err.message}`;
  }
}

// Whether a ticked run's plotted series may lack rows: it is active, or was when it was fetched.
function stale(run) {
  const cached = page.series.get(`${run.id}:${dom.compareMetric.value}`);
  return !cached || isActive(run.status) || cached.status !== run.status;
}

function renderTable() {
  const rows = page.runs.map((r) => row(r));
  dom.runsBody.replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 14 },
    'No runs yet. Build a model and press Train, or run `layerlab train PRESET --db SAME` in a terminal.'))]));
  dom.runsDelete.disabled = page.selected.size === 0;
  dom.runsAll.checked = page.runs.length > 0 && page.runs.every((r) => page.selected.has(r.id));
}

function row(r) {
  const check = h('input', { type: 'checkbox', class: 'run-check', 'aria-label': `Select run ${r.id}` });
  check.checked = page.selected.has(r.id);
  check.addEventListener('change', () => {
    check.checked ? page.selected.add(r.id) : page.selected.delete(r.id);
    check.closest('tr').classList.toggle('selected', check.checked);
    dom.runsDelete.disabled = page.selected.size === 0;
    drawCompare();
  });
  const nameCell = page.renaming === r.id ? renameInput(r) : h('a', { href: `#/run/${r.id}` }, r.name);
  return h('tr', { class: 'run-row' + (page.selected.has(r.id) ? ' selected' : ''), 'data-id': r.id },
    h('td', { class: 'col-check' }, check),
    h('td', { class: 'num' }, r.id),
    h('td', { class: 'name' }, nameCell),
    h('td', {}, badge(r),
      r.queue_position ? h('span', { class: 'muted small' }, ` #${r.queue_position} in queue`) : null),
    h('td', {}, r.dataset),
    h('td', { class: 'model', title: r.model }, r.model),
    h('td', {}, r.optimizer ?? '—'),
    h('td', { class: 'num' }, r.lr === null || r.lr === undefined ? '—' : String(toNum(r.lr))),
    h('td', { class: 'num', title: r.params === null || r.params === undefined ? 'known when the run has ended' : `${int(r.params)} trainable parameters` },
      r.params === null || r.params === undefined ? '—' : compact(r.params)),
    h('td', { class: 'num' }, pct(r.best_test_accuracy, 2)),
    h('td', { class: 'num' }, int(r.examples)),
    h('td', { class: 'num' }, duration(r.duration_s)),
    h('td', { class: 'small muted' }, when(r.created_at)),
    h('td', { class: 'actions' },
      h('a', { class: 'btn small ghost', href: `#/run/${r.id}` }, 'Open'),
      h('button', { type: 'button', class: 'btn small ghost', onclick: () => { page.renaming = r.id; renderTable(); } }, 'Rename'),
      h('button', { type: 'button', class: 'btn small ghost danger', onclick: () => deleteRuns([r.id]) }, 'Delete')));
}

function badge(r) {
  const el = h('span', {});
  renderBadge(el, r);
  return el;
}

function renameInput(r) {
  const input = h('input', { type: 'text', class: 'rename', value: r.name, maxlength: 200, 'aria-label': `New name for run ${r.id}` });
  const done = async (save) => {
    if (page.renaming !== r.id) return;
    page.renaming = null;
    if (save && input.value.trim() && input.value.trim() !== r.name) {
      try {
        await api(`/api/runs/${r.id}`, { method: 'PATCH', body: { name: input.value.trim() } });
        toast(`Renamed run ${r.id}`);
      } catch (err) { toast(err.message, { bad: true }); }
    }
    renderTable();
    refresh();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); done(true); }
    if (e.key === 'Escape') { e.preventDefault(); done(false); }
  });
  input.addEventListener('blur', () => done(true));
  setTimeout(() => { input.focus(); input.select(); }, 0);
  return input;
}

async function deleteRuns(ids) {
  const what = ids.length === 1 ? `run ${ids[0]}` : `${ids.length} runs`;
  if (!confirm(`Delete ${what} with all its metrics and artifacts? This cannot be undone.`)) return;
  for (const id of ids) {
    try {
      await api(`/api/runs/${id}`, { method: 'DELETE' });
      page.selected.delete(id);
    } catch (err) {
      toast(`run ${id}: ${err.message}`, { bad: true, ms: 5000 });
    }
  }
  await refresh();
  renderTable();
  drawCompare();
}

function deleteSelected() { deleteRuns([...page.selected]); }

async function drawCompare(reload = false) {
  const metric = dom.compareMetric.value;
  const ids = page.runs.filter((r) => page.selected.has(r.id)).map((r) => r.id);
  dom.compareNote.textContent = ids.length ? `${ids.length} run${ids.length === 1 ? '' : 's'} · ${metric.replace(/_/g, ' ')} against examples trained`
    : 'Tick runs in the table to plot them on shared axes.';
  if (!window.Plotly) return;
  const traces = [];
  for (const [n, id] of ids.entries()) {
    const run = page.runs.find((r) => r.id === id);
    const key = `${id}:${metric}`;
    if (reload || stale(run)) {
      try {
        const out = await api(`/api/runs/${id}/series?names=${metric}`);
        page.series.set(key, { status: out.run.status, points: out.series[metric] || [] });
      } catch (err) { page.series.set(key, { status: null, points: [] }); }
    }
    const pts = page.series.get(key).points;
    traces.push({ type: 'scatter', mode: 'lines', name: `#${id} ${run.name}`, x: pts.map((p) => p[0]),
      y: pts.map((p) => { const v = toNum(p[1]); return Number.isFinite(v) ? v : null; }), line: { color: COLORS[n % COLORS.length], width: 2 } });
  }
  const acc = metric.endsWith('accuracy');
  const ys = traces.flatMap((t) => t.y);
  const type = acc ? 'linear' : yScale(page.scale, ys);  // a diverged run's cost must not flatten every curve
  page.scale.el.hidden = acc;
  const maxX = traces.reduce((m, t) => t.x.reduce((a, x) => (x > a ? x : a), m), 0);
  Plotly.react(dom.chartCompare, traces, {
    height: 380, margin: { l: 52, r: 12, t: 8, b: 40 }, font: { family: 'system-ui, sans-serif', size: 11, color: '#3b4452' },
    xaxis: { title: { text: 'examples trained' }, gridcolor: '#eef0f3', zeroline: false, ...examplesAxis(maxX) },
    yaxis: { gridcolor: '#eef0f3', zeroline: false, type,
      ...(acc ? { tickformat: '.0%', range: [0, 1.02] } : (type === 'log' ? { autorange: true } : { rangemode: 'tozero' })) },
    legend: { orientation: 'h', y: -0.18 }, paper_bgcolor: '#fff', plot_bgcolor: '#fff', uirevision: 'keep', showlegend: true,
  }, { displayModeBar: false, responsive: true });
}
