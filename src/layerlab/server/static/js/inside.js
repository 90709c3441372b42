// Inside a run over time: the decision boundary of a 2-D data set with a map per hidden neuron
// (as TensorFlow Playground draws them), and TensorBoard-style stacked histograms of each layer's
// weights and gradients.
//
// The trainer stores both at evaluation points and writes a small `view` event each time; the
// dashboard hands those events to onViewEvent, and this module re-reads GET /api/runs/ID/boundary
// (the latest, or the step the slider picks) and /histograms, at most once per REFRESH_MS. Grids
// arrive as base64 uint8 levels with their min and max; the heatmap is drawn with Plotly under
// the training (filled) and test (ringed) points; the neuron maps on small canvases.

import { api } from './api.js';
import * as dash from './dashboard.js';
import { dom, h } from './dom.js';
import { fixed, int } from './format.js';
import { state } from './state.js';

const REFRESH_MS = 1000;
const HIST_SHOWN = 40;  // time slices drawn per histogram (evenly picked from the stored ones)
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const CONFIG = { displayModeBar: false, responsive: true };
// TensorFlow Playground's colours: orange for negative / low, blue for positive / high.
const LOW = [245, 147, 34], MID = [232, 234, 235], HIGH = [8, 119, 189];
const SCALE = [[0, 'rgb(245,147,34)'], [0.5, 'rgb(232,234,235)'], [1, 'rgb(8,119,189)']];

const shown = { run: null, plane: false, timer: null, last: 0, pinned: null, points: null, seq: 0 };

export function initInside() {
  dash.onRunChange((run) => {
    if (!run) { reset(null); return; }
    if (run.id !== shown.run) reset(run);
    schedule();  // a status change: the final views are there
  });
}

// The dashboard passes every `view` event of the run's stream.
export function onViewEvent() { schedule(); }

function reset(run) {
  shown.seq++;
  clearTimeout(shown.timer);
  Object.assign(shown, { run: run?.id ?? null, timer: null, last: 0, pinned: null, points: null,
    plane: Boolean(run && (state.datasets[run.dataset]?.input_shape || []).length === 1
      && state.datasets[run.dataset].input_shape[0] === 2) });
  const panel = dom.inside;
  panel.hidden = !run;
  if (!run) { panel.replaceChildren(); return; }
  panel.replaceChildren(
    h('div', { class: 'panel-head' }, h('h2', { id: 'inside-h' }, 'Inside over time'),
      h('span', { class: 'muted small', id: 'inside-note' }, 'waiting for the first evaluation point…')),
    shown.plane ? h('div', { class: 'inside-boundary-box' },
      h('div', { class: 'inside-boundary-col' },
        h('div', { id: 'inside-boundary', class: 'inside-boundary', role: 'img', 'aria-label': 'decision boundary' }),
        h('label', { class: 'inside-step small' }, 'evaluation point ',
          h('input', { type: 'range', id: 'inside-step', min: 0, max: 0, value: 0, disabled: true,
            oninput: onSlider }), h('output', { id: 'inside-step-label' }, 'latest'))),
      h('div', { id: 'inside-neurons', class: 'inside-neurons' })) : null,
    h('div', { id: 'inside-diagnoses', class: 'inside-diagnoses' }),
    h('div', { id: 'inside-hists', class: 'inside-hists' }));
}

function schedule() {
  if (shown.run === null || shown.timer) return;
  const wait = Math.max(0, shown.last + REFRESH_MS - performance.now());
  shown.timer = setTimeout(() => { shown.timer = null; shown.last = performance.now(); refresh(); }, wait);
}

// Histograms first: the trainer stores a point's boundary before its histograms, so once there are
// histograms there is a boundary to ask for (no 409 while the run is still queued).
async function refresh() {
  const seq = shown.seq, id = shown.run;
  try {
    const hist = await api(`/api/runs/${id}/histograms`);
    if (seq !== shown.seq) return;
    drawHistograms(hist);
    if (shown.plane && hist.steps.length) await loadBoundary(shown.pinned);
  } catch (err) {
    if (seq === shown.seq) note(err.message);
  }
}

function note(text) {
  const el = document.getElementById('inside-note');
  if (el) el.textContent = text;
}

async function loadBoundary(step) {
  const seq = shown.seq, id = shown.run;
  const q = new URLSearchParams();
  if (step !== null) q.set('step', step);
  if (!shown.points) q.set('points', 'true');
  const out = await api(`/api/runs/${id}/boundary?${q}`);
  if (seq !== shown.seq) return;
  if (out.points) shown.points = out.points;
  drawBoundary(out);
}

function onSlider(e) {
  const slider = e.target;
  const steps = slider.steps || [];
  const i = Number(slider.value);
  shown.pinned = i >= steps.length - 1 ? null : steps[i];  // the right end follows the latest
  loadBoundary(shown.pinned).catch((err) => note(err.message));
}

// ------------------------------------------------------------------ boundary

const levels = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const value = (g, q) => g.min + (q / 255) * (g.max - g.min);

function centers(lo, hi, n) { return Array.from({ length: n }, (_, i) => lo + ((i + 0.5) * (hi - lo)) / n); }

function drawBoundary(out) {
  const div = document.getElementById('inside-boundary');
  if (!div || !window.Plotly) return;
  const n = out.size, q = levels(out.grid.data);
  const z = Array.from({ length: n }, (_, r) => Array.from(q.subarray(r * n, (r + 1) * n), (v) => value(out.grid, v)));
  const [[x0, x1], [y0, y1]] = out.extent;
  const classify = out.task === 'classification';
  const traces = [{ type: 'heatmap', z, x: centers(x0, x1, n), y: centers(y0, y1, n), colorscale: SCALE,
    zmin: classify ? 0 : out.grid.min, zmax: classify ? 1 : out.grid.max, zsmooth: 'best', showscale: true,
    colorbar: { thickness: 8, len: 0.9, title: { text: out.value, side: 'right', font: { size: 10 } } },
    hovertemplate: `x %{x:.2f}, y %{y:.2f}<br>${out.value} %{z:.3f}<extra></extra>` }];
  const pts = shown.points || {};
  for (const [split, ring] of [['train', false], ['test', true]]) {
    const p = pts[split];
    if (!p) continue;
    const lo = classify ? 0 : Math.min(...p.y), hi = classify ? 1 : Math.max(...p.y);
    traces.push({ type: 'scatter', mode: 'markers', name: `${split} (${int(p.x.length)} of ${int(p.of)})`,
      x: p.x.map((v) => v[0]), y: p.x.map((v) => v[1]),
      marker: { size: ring ? 6 : 5, color: p.y.map((v) => color(hi > lo ? (v - lo) / (hi - lo) : 0.5)),
        line: { color: ring ? '#1c2128' : '#fff', width: 1 } },
      hovertemplate: `${split} %{x:.2f}, %{y:.2f}<extra></extra>` });
  }
  Plotly.react(div, traces, {
    height: 340, width: 380, margin: { l: 34, r: 6, t: 6, b: 28 }, font: { family: FONT, size: 10, color: '#3b4452' },
    xaxis: { range: [x0, x1], zeroline: false, showgrid: false, constrain: 'domain' },
    yaxis: { range: [y0, y1], zeroline: false, showgrid: false, scaleanchor: 'x' },
    showlegend: true, legend: { orientation: 'h', y: -0.12, font: { size: 10 } },
    paper_bgcolor: '#fff', plot_bgcolor: '#fff', uirevision: 'keep',
  }, CONFIG);
  div.dataset.step = out.step;
  const slider = document.getElementById('inside-step');
  slider.steps = out.steps;
  slider.max = Math.max(0, out.steps.length - 1);
  slider.disabled = out.steps.length < 2;
  if (shown.pinned === null) slider.value = slider.max;
  document.getElementById('inside-step-label').textContent =
    `step ${int(out.step)} · ${int(out.examples)} examples${shown.pinned === null ? ' (latest)' : ''}`;
  note(`${out.value} over the input plane at step ${int(out.step)}; each neuron's activation below it, `
    + 'orange low, blue high (each map scaled to its own min and max)');
  drawNeurons(out);
}

function color(t) {
  const [a, b, u] = t < 0.5 ? [LOW, MID, t * 2] : [MID, HIGH, (t - 0.5) * 2];
  return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * u)).join(',')})`;
}

function drawNeurons(out) {
  const box = document.getElementById('inside-neurons');
  if (!box) return;
  const n = out.neuron_size;
  box.replaceChildren(...out.neurons.map((layer) => h('div', { class: 'inside-layer', 'data-layer': layer.layer },
    h('div', { class: 'small' }, h('b', {}, layer.name), ` → ${layer.output}`,
      layer.shown < layer.units ? h('span', { class: 'muted' }, ` (first ${layer.shown} of ${layer.units} units)`) : null),
    h('div', { class: 'inside-maps' }, layer.maps.map((m, u) => neuronCanvas(m, n, `${layer.name} unit ${u}`))))));
}

function neuronCanvas(m, n, label) {
  const c = h('canvas', { width: n, height: n, class: 'inside-map', role: 'img', 'aria-label': label,
    title: `${label}: ${fixed(m.min, 3)} … ${fixed(m.max, 3)}` });
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(n, n);
  const q = levels(m.data);
  for (let r = 0; r < n; r++) {
    for (let col = 0; col < n; col++) {
      const v = q[r * n + col] / 255;
      const rgb = color(v).slice(4, -1).split(',').map(Number);
      const at = ((n - 1 - r) * n + col) * 4;  // row 0 is the lowest y: drawn at the bottom
      img.data.set([...rgb, 255], at);
    }
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

// ------------------------------------------------------------------ histograms

function pick(points) {
  if (points.length <= HIST_SHOWN) return points;
  const out = [];
  for (let i = 0; i < HIST_SHOWN; i++) out.push(points[Math.round((i * (points.length - 1)) / (HIST_SHOWN - 1))]);
  return out;
}

function drawHistograms(out) {
  const box = document.getElementById('inside-hists');
  if (!box || !window.Plotly) return;
  if (!out.layers.length) {
    box.replaceChildren(h('p', { class: 'muted small' }, 'No histograms yet: they are stored at each evaluation point.'));
    return;
  }
  if (!shown.plane) note(`weights and gradients per layer at ${out.steps.length} evaluation points (newest in front)`);
  const flagged = new Map(out.diagnoses.map((d) => [d.layer, d]));
  drawDiagnoses(out.diagnoses);
  const have = new Set([...box.querySelectorAll('.inside-hist-layer')].map((el) => Number(el.dataset.layer)));
  if (out.layers.some((l) => !have.has(l.index)) || have.size !== out.layers.length) {
    box.replaceChildren(...out.layers.map((l) => h('section', { class: 'inside-hist-layer', id: `hist-layer-${l.index}`,
      'data-layer': l.index, 'aria-label': `histograms of layer ${l.index + 1} (${l.name})` },
      h('div', { class: 'small' }, h('b', {}, `layer ${l.index + 1} · ${l.name}`), ` weight ${l.shape.join('×')}`,
        h('span', { class: 'inside-flag' })),
      h('div', { class: 'inside-hist-row' }, h('div', { class: 'inside-hist', 'data-what': 'weights' }),
        h('div', { class: 'inside-hist', 'data-what': 'grads' })))));
  }
  for (const l of out.layers) {
    const sec = document.getElementById(`hist-layer-${l.index}`);
    const d = flagged.get(l.index);
    sec.classList.toggle('flagged', Boolean(d));
    sec.querySelector('.inside-flag').textContent = d ? ` · ${d.kind.replace('_', ' ')} at step ${int(d.step)}` : '';
    for (const what of ['weights', 'grads']) ridges(sec.querySelector(`[data-what="${what}"]`), l, what);
  }
}

// TensorBoard's "offset" view: one ridge per evaluation point, the newest in front (lowest, darkest).
function ridges(div, layer, what) {
  const pts = pick(layer.points.filter((p) => p[what] && p[what].n > 0));
  if (!pts.length) {
    Plotly.purge(div);
    div.replaceChildren(h('p', { class: 'muted small' }, what === 'grads' ? 'no gradient yet' : 'no finite values'));
    return;
  }
  div.querySelector(':scope > p')?.remove();  // the placeholder; Plotly's own children stay for react
  const k = pts.length;
  const top = Math.max(...pts.map((p) => Math.max(...p[what].counts))) || 1;
  const traces = pts.map((p, i) => {
    const hist = p[what], e = hist.edges;
    const x = hist.counts.map((_, b) => (e[b] + e[b + 1]) / 2);
    const base = k - 1 - i;  // the newest at 0
    const y = hist.counts.map((c) => base + (2.5 * c) / top);
    const shade = Math.round(200 - (150 * i) / Math.max(1, k - 1));
    return { type: 'scatter', mode: 'lines', x: [x[0], ...x, x[x.length - 1]], y: [base, ...y, base], fill: 'toself',
      fillcolor: `rgba(${shade - 40},${shade - 10},${Math.min(255, shade + 50)},0.9)`, line: { color: '#fff', width: 0.6 },
      hovertemplate: `step ${p.step}<br>%{x:.3g}<extra></extra>`, showlegend: false };
  });
  Plotly.react(div, traces, {
    height: 170, margin: { l: 62, r: 6, t: 18, b: 24 }, font: { family: FONT, size: 10, color: '#3b4452' },
    title: { text: what === 'weights' ? 'weights' : 'gradients', font: { size: 11 }, x: 0.02, y: 0.97 },
    xaxis: { zeroline: true, zerolinecolor: '#c5ccd4', showgrid: false, exponentformat: 'e' },
    yaxis: { showgrid: false, zeroline: false, tickmode: 'array', tickvals: [0, k - 1],
      ticktext: [`step ${pts[k - 1].step}`, `step ${pts[0].step}`] },
    paper_bgcolor: '#fff', plot_bgcolor: '#fff',
  }, CONFIG);
}

function drawDiagnoses(list) {
  const box = document.getElementById('inside-diagnoses');
  if (!box) return;
  box.replaceChildren(...list.map((d) => h('div', { class: 'inside-diag' },
    h('b', {}, d.kind === 'diverged' ? 'Diverged' : 'Dead ReLUs'), ` — ${d.text} `,
    h('button', { type: 'button', class: 'btn ghost inside-diag-link', 'data-layer': d.layer,
      onclick: () => showLayer(d.layer) }, `show ${d.layer_name}'s histograms`))));
}

export function showLayer(index) {
  const sec = document.getElementById(`hist-layer-${index}`);
  if (!sec) return;
  sec.scrollIntoView({ block: 'center', behavior: 'instant' });
  sec.classList.add('pulse');
  setTimeout(() => sec.classList.remove('pulse'), 1200);
}
