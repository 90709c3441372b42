// The live dashboard: charts, counters, predictions, results — for the draft or for one run.
//
// A run is followed through its server-sent event stream (/api/runs/{id}/stream): metric rows
// extend the charts (Plotly.extendTraces), status and prediction events update the page, and
// `end` brings the confusion matrix and the worst examples. EventSource reconnects by itself
// with Last-Event-ID, so a dropped connection resumes where it stopped.

import { api, withToken } from './api.js';
import { CLS, dom, h, toast } from './dom.js';
import { compact, duration, fixed, int, pct, toNum } from './format.js';
import { renderPredictions } from './predictions.js';
import { Ema, RunningRate, examplesAxis, examplesAxisUpdate, runningMaxX, scaleToggle, yScale } from './charts.js';
import { onViewEvent } from './inside.js';

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const COLORS = { train: '#2357d6', test: '#e8590c', third: '#2b8a3e' };
// Live test points are on a fixed 2,000-example subset of the test split; the whole split is
// evaluated at step 0, at each epoch's end and at the end (docs/metrics.md): its points are marked.
const CHARTS = {
  accuracy: { el: 'chartAccuracy', y: { tickformat: '.0%', range: [0, 1.02] },
    traces: [['train_accuracy', 'train', COLORS.train], ['test_accuracy_subset', 'test (subset)', COLORS.test],
      ['test_accuracy', 'test (full set)', COLORS.test]] },
  cost: { el: 'chartCost', y: { rangemode: 'tozero' },
    traces: [['cost', 'train cost', COLORS.train], ['test_loss_subset', 'test loss (subset)', COLORS.test],
      ['test_loss', 'test loss (full set)', COLORS.test]] },
  speed: { el: 'chartSpeed', y: { rangemode: 'tozero' },
    traces: [['examples_per_sec', 'each interval, 0.7 moving average', COLORS.third]] },
};
const TRACE_OF = {};  // metric name -> [chart key, trace index]
for (const [key, c] of Object.entries(CHARTS)) c.traces.forEach(([metric], i) => { TRACE_OF[metric] = [key, i]; });

export const ACTIVE = ['queued', 'running'];
export const RESUMABLE = ['interrupted', 'stopped'];

const view = {
  mode: 'draft',       // 'draft' | 'run'
  run: null,           // summary of the run shown
  source: null,        // EventSource
  latest: {},          // metric name -> last value
  examples: 0,
  elapsedBase: null, elapsedAt: 0,
  diagnoses: [],
  imageUrl: null,
  classes: [],
  resuming: null,     // id of a run whose resume is waiting for its worker
};
let tick = null;
const listeners = [];
export const onRunChange = (fn) => listeners.push(fn);

export function currentRun() { return view.mode === 'run' ? view.run : null; }

// ------------------------------------------------------------------ charts

function layout(c) {
  return {
    height: 220, margin: { l: 46, r: 10, t: 22, b: 34 }, font: { family: FONT, size: 11, color: '#3b4452' },
    paper_bgcolor: '#fff', plot_bgcolor: '#fff', showlegend: true, hovermode: 'x unified',
    legend: { orientation: 'h', x: 1, xanchor: 'right', y: 1, yanchor: 'bottom', font: { size: 11 } },
    xaxis: { title: { text: 'examples trained', standoff: 2, font: { size: 11 } }, gridcolor: '#eef0f3', zeroline: false, ...examplesAxis(0) },
    yaxis: { gridcolor: '#eef0f3', zeroline: false, automargin: true, ...c.y, ...(c.toggle ? { type: yScale(c.toggle, []) } : {}) },
    uirevision: 'keep',
    annotations: [{ text: view.mode === 'run' ? 'waiting for the first measurements…' : 'no run yet: press Train',
      showarrow: false, xref: 'paper', yref: 'paper', x: 0.5, y: 0.5, font: { size: 12, color: '#5f6b7a' } }],  // 5.4:1 on white (WCAG AA)
  };
}

const CONFIG = { displayModeBar: false, responsive: true };

export function resetCharts() {
  view.ema = new Ema();
  view.rate = new RunningRate();
  if (!window.Plotly) return;
  for (const c of Object.values(CHARTS)) {
    const traces = c.traces.map(([, name, color]) => ({ x: [], y: [], name, type: 'scatter', mode: 'lines',
      line: { color, width: 2 }, connectgaps: false }));
    c.traces.forEach(([metric], i) => {
      if (metric.endsWith('_subset')) Object.assign(traces[i], { mode: 'lines+markers', marker: { size: 4 } });
      if (metric === 'test_accuracy' || metric === 'test_loss') {
        Object.assign(traces[i], { mode: 'markers', marker: { size: 9, symbol: 'diamond-open', line: { width: 2 } } });
      }
    });
    const div = dom[c.el];
    delete div._llAxisKey; delete div._llMaxX;  // a new run's chart: its axis starts again
    Plotly.react(div, traces, layout(c), CONFIG);
  }
}

function plotValue(v) {
  const x = toNum(v);
  return x === null || !Number.isFinite(x) ? null : x;
}

function extendCharts(rows) {
  if (!window.Plotly) return;
  const per = {};  // chart key -> {x: [[],..], y: [[],..]}
  for (const r of rows) {
    const where = TRACE_OF[r.name];
    if (!where) continue;
    const [key, i] = where;
    const n = CHARTS[key].traces.length;
    per[key] ||= { x: Array.from({ length: n }, () => []), y: Array.from({ length: n }, () => []) };
    per[key].x[i].push(r.examples);
    // the interval rate is drawn smoothed (the Model Builder's 0.7 moving average); the counter is the run's average
    per[key].y[i].push(r.name === 'examples_per_sec' ? view.ema.push(plotValue(r.value)) : plotValue(r.value));
  }
  for (const [key, upd] of Object.entries(per)) {
    const div = dom[CHARTS[key].el];
    const idx = upd.x.map((_, i) => i);
    Plotly.extendTraces(div, upd, idx);
    const relayout = { ...(examplesAxisUpdate(div, runningMaxX(div, upd.x.flat())) || {}), ...scaleUpdate(CHARTS[key]) };
    if (div.layout.annotations?.length) relayout.annotations = [];
    if (Object.keys(relayout).length) Plotly.relayout(div, relayout);
  }
}

// The y-axis type of a chart with a log-scale toggle, as a relayout ({} when it is already right).
function scaleUpdate(c) {
  const div = dom[c.el];
  if (!c.toggle || !div.data) return {};
  const type = yScale(c.toggle, div.data.flatMap((t) => t.y));
  return div.layout.yaxis?.type === type ? {} : { 'yaxis.type': type, 'yaxis.autorange': true };
}

// Counters and charts described on hover and keyboard focus, in the words of docs/metrics.md (served in meta).
const COUNTER_DEFS = { cExamples: 'examples', cElapsed: 'elapsed_s', cSpeed: 'examples_per_sec',
  cInfer: 'inferences_per_sec_b1', cLatency: 'latency_ms_b1', cTest: 'test_accuracy' };
export function initDashboard(meta) {
  const defs = Object.fromEntries((meta.metrics || []).map((d) => [d.key, d]));
  const infer = dom.cInfer.parentElement;
  if (!infer.querySelector('.c-sub')) infer.append(h('span', { class: 'c-sub' }, h('span', { id: 'c-infer-batched' })));
  for (const [el, key] of Object.entries(COUNTER_DEFS)) {
    if (defs[key]) describe(dom[el].parentElement, defs[key]);
  }
  if (defs.inferences_per_sec) describe(infer.querySelector('.c-sub'), defs.inferences_per_sec);
  const speedCap = dom.chartSpeed.parentElement.querySelector('figcaption');
  if (defs.examples_per_sec_chart && speedCap) describe(speedCap, defs.examples_per_sec_chart);
  const cost = CHARTS.cost;
  cost.toggle = scaleToggle('log scale', () => { const u = scaleUpdate(cost); if (Object.keys(u).length) Plotly.relayout(dom[cost.el], u); });
  cost.toggle.box.setAttribute('aria-label', 'Cost chart: logarithmic y axis');
  dom.chartCost.parentElement.querySelector('figcaption')?.append(cost.toggle.el);
}

// A focusable "i" in `target` whose tooltip (role tooltip, aria-describedby) gives the definition.
function describe(target, def) {
  if (!target || document.getElementById(`def-${def.key}`)) return;
  if (target.classList.contains('counter')) target.removeAttribute('title');
  const tip = h('span', { class: 'def-tip', role: 'tooltip', id: `def-${def.key}` }, def.definition);
  const btn = h('button', { type: 'button', class: 'def-info', 'aria-label': `What is ${def.label}?`,
    'aria-describedby': tip.id, 'data-def': def.key }, 'i');
  target.append(h('span', { class: 'def' }, btn, tip));
}

// ------------------------------------------------------------------ counters

function renderCounters() {
  const l = view.latest;
  dom.cExamples.textContent = int(view.examples);
  const speed = view.final?.examples_per_sec ?? view.rate?.value;  // the run's average: RunResults.examples_per_sec
  dom.cSpeed.textContent = speed !== undefined && speed !== null ? compact(speed) : '—';
  dom.cInfer.textContent = l.inferences_per_sec_b1 !== undefined ? compact(l.inferences_per_sec_b1) : '—';  // batch 1
  const batched = document.getElementById('c-infer-batched');
  if (batched) {
    const size = view.final?.inference_batch_size;
    batched.textContent = l.inferences_per_sec !== undefined
      ? `batched${size ? ` (batch ${int(size)})` : ''}: ${compact(l.inferences_per_sec)}` : '';
  }
  dom.cLatency.textContent = l.latency_ms_b1 !== undefined ? `${fixed(l.latency_ms_b1, 3)} ms` : '—';
  dom.cTest.textContent = l.test_accuracy !== undefined ? pct(l.test_accuracy, 1) : '—';
  renderElapsed();
}

function renderElapsed() {
  if (view.elapsedBase === null) { dom.cElapsed.textContent = '—'; return; }
  const live = view.run?.status === 'running' ? (performance.now() - view.elapsedAt) / 1000 : 0;
  dom.cElapsed.textContent = duration(view.elapsedBase + live);
}

function clearCounters() {
  view.latest = {};
  view.final = null;
  view.examples = 0;
  view.elapsedBase = null;
  renderCounters();
}

// ------------------------------------------------------------------ draft mode

export function showDraft() {
  closeStream();
  view.mode = 'draft';
  view.run = null;
  view.diagnoses = [];
  resetCharts();
  clearCounters();
  renderStage(null);  // no run: no stage line left from the one before
  dom.runTitle.textContent = 'Untrained model';
  dom.runStatus.hidden = true;
  dom.runNote.textContent = 'Train it to see the curves fill in.';
  dom.banner.hidden = true;
  dom.results.hidden = true;
  renderExports(null);
  dom.stop.disabled = true;
  dom.resume.hidden = true;
  draftPredictions(...(view.draftPred || [null, null]));
  listeners.forEach((fn) => fn(null));
}

// From the builder: predictions of the draft's random weights, or why there are none.
export function draftPredictions(out, why) {
  view.draftPred = [out, why];
  if (view.mode !== 'draft') return;
  dom.predTitle.textContent = 'Predictions';
  if (out) {
    dom.predNote.textContent = 'untrained: random initial weights (seeded) — about 1 in ' + (out.classes?.length || '?') + ' right by chance';
    renderPredictions(dom.predGrid, out, out.image_url);
  } else {
    dom.predNote.textContent = '';
    delete dom.predGrid.dataset.key;
    renderPredictions(dom.predGrid, null, null, why?.error ? `No predictions: ${why.error}`
      : 'A valid model shows its predictions here at once, before any training.');
  }
}

// ------------------------------------------------------------------ run mode

export async function openRun(id) {
  closeStream();
  view.mode = 'run';
  view.diagnoses = [];
  view.run = { id, status: 'queued', name: `run ${id}` };
  resetCharts();
  clearCounters();
  renderStage(null);  // until this run says its own stage
  dom.results.hidden = true;
  dom.banner.hidden = true;
  dom.predTitle.textContent = 'Predictions';
  dom.predNote.textContent = '';
  delete dom.predGrid.dataset.key;
  renderPredictions(dom.predGrid, null, null, 'Waiting for the first prediction snapshot…');
  const src = new EventSource(withToken(`/api/runs/${id}/stream`));
  view.source = src;
  src.addEventListener('run', (e) => { if (view.source === src) setRun(JSON.parse(e.data)); });
  src.addEventListener('metrics', (e) => { if (view.source === src) onMetrics(JSON.parse(e.data).rows); });
  src.addEventListener('prediction', (e) => { if (view.source === src) onPrediction(JSON.parse(e.data).payload); });
  src.addEventListener('diagnosis', (e) => { if (view.source === src) onDiagnosis(JSON.parse(e.data).payload); });
  src.addEventListener('divergence', (e) => { if (view.source === src) onDiagnosis({ kind: 'diverged', ...JSON.parse(e.data).payload }); });
  src.addEventListener('view', () => { if (view.source === src) onViewEvent(); });  // a new boundary / histograms
  src.addEventListener('stage', (e) => { if (view.source === src) renderStage(JSON.parse(e.data).payload); });
  src.addEventListener('end', (e) => {
    if (view.source !== src) return;
    const data = JSON.parse(e.data);
    closeStream();
    finishRun(id, data.run).catch((err) => toast(`Could not show the run's results: ${err.message}`, { bad: true }));
  });
  src.onerror = () => {
    if (view.source === src && src.readyState === EventSource.CLOSED) {
      api(`/api/runs/${id}`).catch((err) => { toast(err.message, { bad: true }); closeStream(); });
    }
  };
  clearInterval(tick);
  tick = setInterval(renderElapsed, 500);
}

// The end: the API's view of the run (its summary carries the outcome, its results read back by RunResults).
async function finishRun(id, raw) {
  let run = raw;
  try { run = await api(`/api/runs/${id}`); } catch (err) { /* the stream's copy will do */ }
  if (currentRun()?.id !== id) return;
  setRun(summaryOf(run));
  showResults(run);
}

function summaryOf(run) {
  const { spec, results, versions, ...rest } = run;
  return rest;
}

function closeStream() {
  if (view.source) view.source.close();
  view.source = null;
}

function setRun(run) {
  if (exportBar && exportBar.dataset.run !== String(run.id)) renderExports(null);
  view.run = { ...view.run, ...run };
  view.imageUrl = `/api/runs/${run.id}/images/{index}.png`;
  dom.runTitle.textContent = `${run.name}`;
  dom.runStatus.hidden = false;
  renderBadge(dom.runStatus, view.run);
  dom.runNote.textContent = `run #${run.id} · ${run.dataset} · ${run.model}` + (run.device ? ` · ${run.device}` : '');
  if (run.duration_s !== null && run.duration_s !== undefined) {
    view.elapsedBase = run.duration_s;
    view.elapsedAt = performance.now();
  }
  dom.stop.disabled = !ACTIVE.includes(run.status);
  dom.resume.hidden = !RESUMABLE.includes(run.status) || view.resuming === run.id;
  dom.resume.disabled = false;
  if (!ACTIVE.includes(run.status)) renderStage(null);
  settlePlaceholders(view.run);
  renderBanner();
  renderCounters();
  listeners.forEach((fn) => fn(view.run));
}

// The stage a starting run is in (src/layerlab/stages.py), beside its status and on the empty charts.
const STAGE_TEXT = {
  queued: (p) => `queued: ${p.position ? `number ${p.position} in line` : 'waiting for a worker'}`,
  starting: (p) => (p.warm ? 'starting on a warm worker' : 'starting a worker process (importing torch)…'),
  loading_data: (p) => (p.resident ? 'data already in memory' : 'loading the data set…'),
  evaluating: () => 'evaluating the untrained model…',
  training: () => 'training',
};

function renderStage(p) {
  const active = ACTIVE.includes(view.run?.status) && p && STAGE_TEXT[p.stage];
  let el = dom.runStatus.parentNode.querySelector(`.${CLS.runStage}`);
  if (!el && !active) return;
  if (!el) {
    el = h('span', { class: CLS.runStage, role: 'status' });
    dom.runStatus.after(el);
  }
  el.hidden = !active;
  if (!active) return;
  const text = STAGE_TEXT[p.stage](p);
  el.replaceChildren(text);
  for (const c of Object.values(CHARTS)) {
    const div = dom[c.el];
    if (window.Plotly && div.layout?.annotations?.length) Plotly.relayout(div, { 'annotations[0].text': text });
  }
}

// The status badge says what the outcome says once there is one ("failed to learn"), else the status.
export function renderBadge(el, run) {
  const failed = run.outcome?.kind === 'failed_to_learn';
  el.textContent = failed ? run.outcome.label : run.status;
  el.className = `status-badge ${failed ? 'failed-to-learn' : run.status}`;
  if (failed) el.title = run.outcome.text || ''; else el.removeAttribute('title');
}

// A run that is over leaves no "waiting…" behind: an empty chart and an empty prediction grid say what happened.
function settlePlaceholders(run) {
  if (ACTIVE.includes(run.status) || !window.Plotly) return;
  const why = { diverged: 'the run diverged before this was measured', failed: 'the run failed before this was measured',
    stopped: 'the run was stopped before this was measured', interrupted: 'the run was interrupted before this was measured' };
  const text = why[run.status] || 'nothing was measured';
  for (const c of Object.values(CHARTS)) {
    const div = dom[c.el];
    if (div.layout?.annotations?.length && !div.data?.some((t) => t.x.length)) Plotly.relayout(div, { 'annotations[0].text': text });
  }
  if (dom.predGrid.querySelector('.pred')) return;
  if (/^Waiting/.test(dom.predGrid.textContent.trim())) {
    renderPredictions(dom.predGrid, null, null, `No predictions: ${text.replace('this was measured', 'the first snapshot')}.`);
  }
}

function onMetrics(rows) {
  for (const r of rows) {
    view.latest[r.name] = r.value;
    if (r.name === 'examples_per_sec') view.rate.push(r.examples, toNum(r.value));
    if (r.examples > view.examples) view.examples = r.examples;
  }
  extendCharts(rows);
  renderCounters();
}

function onPrediction(payload) {
  const after = payload.examples ? `after ${int(payload.examples)} examples` : 'untrained (step 0)';
  dom.predNote.textContent = `${after} · ${payload.predictions.filter((p) => p.correct).length} of ${payload.predictions.length} right`;
  const images = imageSets.has(view.run?.dataset);
  renderPredictions(dom.predGrid, payload, images ? view.imageUrl : null);
}

function onDiagnosis(p) {
  view.diagnoses.push(p);
  renderBanner();
}

function renderBanner() {
  const run = view.run || {};
  const b = dom.banner;
  let cls = '', title = '', text = '';
  if (run.status === 'diverged') {
    cls = 'bad'; title = 'Training diverged';
    text = run.diagnosis || view.diagnoses.filter((d) => d.kind === 'diverged').map((d) => d.text).join(' ') || 'the loss became NaN or infinite';
  } else if (run.status === 'failed') {
    cls = 'bad'; title = 'Training failed'; text = run.error || 'see the server log';
  } else if (run.outcome?.kind === 'failed_to_learn') {
    cls = 'bad'; title = 'Failed to learn'; text = run.outcome.text;
  } else if (run.status === 'interrupted') {
    cls = 'info'; title = 'Interrupted'; text = `The trainer stopped unexpectedly (the server or its worker went away). Resume continues from the last checkpoint (or: layerlab train --resume ${run.id}).`;
  } else if (run.status === 'stopped') {
    cls = 'info'; title = 'Stopped'; text = `Stopped on request after ${int(view.examples)} examples; what it learned is kept, and Resume continues from there.`;
  } else if (view.diagnoses.length) {
    cls = 'info'; title = 'Diagnosis'; text = view.diagnoses.map((d) => d.text).join(' ');
  }
  b.hidden = !cls;
  if (cls) {
    b.className = `banner ${cls}`;
    b.replaceChildren(h('b', {}, title), text);
  }
}

function showResults(run) {
  const r = run.results;
  renderExports(run);
  if (!r) return;
  view.final = { examples_per_sec: r.examples_per_sec ?? null, inference_batch_size: r.inference_batch_size ?? null };
  for (const [k, v] of [['inferences_per_sec', r.inferences_per_sec], ['inferences_per_sec_b1', r.inferences_per_sec_b1],
    ['latency_ms_b1', r.latency_ms_b1], ['test_accuracy', r.test_accuracy]]) if (v !== undefined && v !== null) view.latest[k] = v;
  if (r.examples) view.examples = Math.max(view.examples, r.examples);
  if (r.elapsed_s) { view.elapsedBase = r.elapsed_s; view.elapsedAt = performance.now(); }
  renderCounters();
  const classes = r.confusion?.classes || [];
  if (!r.confusion && !r.worst) return;
  dom.results.hidden = false;
  if (r.confusion && window.Plotly) {
    const z = r.confusion.matrix;
    Plotly.react(dom.chartConfusion, [{
      type: 'heatmap', z, x: classes, y: classes, colorscale: [[0, '#f5f7fb'], [0.15, '#c9d7f6'], [1, '#1f4fbf']], showscale: false, xgap: 1, ygap: 1,
      texttemplate: '%{z}', textfont: { size: 10 }, hovertemplate: 'true %{y}<br>predicted %{x}<br>%{z} examples<extra></extra>',
    }], {
      height: 380, margin: { l: 90, r: 10, t: 6, b: 80 }, font: { family: FONT, size: 11, color: '#3b4452' },
      xaxis: { title: { text: 'predicted', font: { size: 11 } }, tickangle: -40, side: 'bottom' },
      yaxis: { title: { text: 'true', font: { size: 11 } }, autorange: 'reversed' },
      paper_bgcolor: '#fff', plot_bgcolor: '#fff',
    }, CONFIG);
  }
  const name = (c) => classes[c] ?? String(c);
  dom.worst.replaceChildren(...(r.worst || []).map((w) => h('div', { class: 'w', title: `test example ${w.index}` },
    isImageSet(run) ? h('img', { src: withToken(view.imageUrl.replace('{index}', w.index)), alt: `test example ${w.index}`, width: 44, height: 44 }) : null,
    h('div', {}, h('span', {}, 'true: ', h('b', {}, name(w.label))), h('span', {}, `guess: ${name(w.predicted)}`),
      h('span', { class: 'muted' }, `p(true) ${pct(w.p_true, 2)}`)))));
}

// Download links for an ended run's exports (GET /api/runs/{id}/export; docs/ui.md, "Export").
const EXPORTS = [
  ['pytorch', 'PyTorch (.py)', 'A standalone PyTorch file (torch + safetensors only); save the weights beside it'],
  ['weights', 'Weights', 'The trained weights (.safetensors) that the PyTorch file loads'],
  ['onnx', 'ONNX', 'The model as ONNX (torch’s exporter)'],
  ['spec', 'Spec (YAML)', 'The run’s spec, to train it again'],
];
let exportBar = null;
function renderExports(run) {
  exportBar?.remove();
  exportBar = null;
  if (!run?.results) return;
  exportBar = h('div', { class: 'export-bar', id: 'export-bar', dataset: { run: String(run.id) } },
    h('span', { class: 'muted small' }, 'Export'),
    ...EXPORTS.map(([fmt, label, title]) => h('a', {
      class: 'btn ghost small', download: '', title, dataset: { format: fmt },
      href: withToken(`/api/runs/${run.id}/export?format=${fmt}`) }, label)));
  dom.runNote.after(exportBar);
}

function isImageSet(run) {
  const data = run.spec?.data;
  return !!data && imageSets.has(data.dataset);
}
const imageSets = new Set();
export function setImageSets(names) { names.forEach((n) => imageSets.add(n)); }

export async function stopRun() {
  const run = currentRun();
  if (!run) return;
  dom.stop.disabled = true;
  try {
    const out = await api(`/api/runs/${run.id}/stop`, { method: 'POST' });
    toast(out.status === 'stopped' ? `Run ${run.id} stopped` : `Stopping run ${run.id}…`);
  } catch (err) {
    toast(err.message, { bad: true });
  }
}

// Resume an interrupted or stopped run: a worker continues it from its last checkpoint. The
// stream of a run that is not running ends at once, so wait (bounded) until the worker has
// picked it up, then follow it again.
const RESUME_WAIT_MS = 180_000;
export async function resumeRun() {
  const run = currentRun();
  if (!run || !RESUMABLE.includes(run.status)) return;
  const id = run.id, from = run.status;
  dom.resume.disabled = true;
  let out;
  try {
    out = await api(`/api/runs/${id}/resume`, { method: 'POST' });
  } catch (err) {
    dom.resume.disabled = false;
    toast(err.message, { bad: true });
    return;
  }
  view.resuming = id;
  dom.resume.hidden = true;
  toast(out.queue_position > 1 ? `Run ${id} waits for a worker (place ${out.queue_position})` : `Resuming run ${id}…`);
  const until = performance.now() + RESUME_WAIT_MS;
  try {
    while (currentRun()?.id === id && performance.now() < until) {
      const now = await api(`/api/runs/${id}`);
      if (now.status !== from || (now.started_at ?? null) !== (run.started_at ?? null)) {
        view.resuming = null;
        if (currentRun()?.id === id) openRun(id);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    if (currentRun()?.id === id) {
      dom.resume.hidden = false;
      dom.resume.disabled = false;
      toast(`Run ${id} has not resumed yet; it is still waiting for a worker`);
    }
  } catch (err) {
    toast(err.message, { bad: true });
  } finally {
    if (view.resuming === id) view.resuming = null;
  }
}
