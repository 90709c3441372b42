// Inside the network: what every layer of a run makes of one test example, and its conv filters.
//
// Clicking (or pressing Enter on) an example's image in a run's predictions grid asks
// GET /api/runs/ID/activations?index=N and shows one panel per layer: feature maps as small
// greyscale images (each scaled from the layer's min to its max, so maps of one layer compare),
// a flat output as bars, with the layer's output shape and min/max; a conv layer's filters as
// images, a zero weight mid-grey. The server sends at most `max_channels` maps and filters per
// layer and `max_units` values; the panel says when it shows fewer than there are.

import { api } from './api.js';
import * as dash from './dashboard.js';
import { dom, h } from './dom.js';
import { fixed, int, shape, toNum } from './format.js';
import { setPicker } from './predictions.js';

const shown = { run: null, status: null, index: null, opener: null, seq: 0 };
const BAR_CONFIG = { displayModeBar: false, responsive: true, staticPlot: false };

export function initActivations() {
  setPicker({ enabled: () => Boolean(dash.currentRun()), pick: (index) => openExample(index, document.activeElement) });
  dash.onRunChange((run) => {
    if (shown.run === null) return;
    if (!run || run.id !== shown.run) { close(false); return; }
    if (run.status !== shown.status) load();  // new weights: the final ones, or a later checkpoint
  });
}

export function openExample(index, opener = null) {
  const run = dash.currentRun();
  if (!run) return;
  Object.assign(shown, { run: run.id, status: run.status, index, opener });
  load(true);
}

function close(restoreFocus = true) {
  const opener = shown.opener;
  Object.assign(shown, { run: null, status: null, index: null, opener: null });
  shown.seq++;
  dom.activations.hidden = true;
  dom.activations.replaceChildren();
  if (restoreFocus && opener?.isConnected) opener.focus();
}

async function load(focus = false) {
  const { run, index } = shown;
  const seq = ++shown.seq;
  shown.status = dash.currentRun()?.status ?? shown.status;
  const panel = dom.activations;
  panel.hidden = false;
  const title = h('h2', { id: 'act-title', tabindex: '-1' }, `Inside the network — test example ${index}`);
  const note = h('p', { class: 'muted small act-note' }, 'loading…');
  const refresh = h('button', { type: 'button', class: 'btn ghost', onclick: () => load() }, 'Refresh');
  const closeBtn = h('button', { type: 'button', class: 'btn ghost act-close', onclick: () => close() }, 'Close');
  const body = h('div', { class: 'act-layers' });
  panel.replaceChildren(h('div', { class: 'panel-head' }, title, h('span', { class: 'spacer' }), refresh, closeBtn), note, body);
  if (focus) {
    title.focus({ preventScroll: true });
    panel.scrollIntoView({ block: 'start', behavior: 'instant' });
  }
  let out;
  try {
    out = await api(`/api/runs/${run}/activations?index=${index}`);
  } catch (err) {
    if (seq !== shown.seq) return;
    note.textContent = '';
    body.replaceChildren(h('p', { class: 'act-error', role: 'alert' }, `No activations: ${err.message}`));
    return;
  }
  if (seq !== shown.seq) return;
  const w = out.weights;
  const what = w.source === 'final' ? 'final weights' : 'latest checkpoint';
  const truth = out.class_name ?? (out.label ?? null);
  note.textContent = `${what} after ${int(w.examples)} examples` + (truth !== null ? ` · true class: ${truth}` : '')
    + ` · maps scaled per layer from its min to its max; at most ${out.max_channels} maps and filters per layer`;
  body.replaceChildren(...out.layers.map(layerPanel));
  for (const div of body.querySelectorAll('.act-bars')) drawBars(div);
}

function layerPanel(layer) {
  const head = h('div', { class: 'act-head' },
    h('b', {}, `layer ${layer.index + 1} · ${layer.kind}`),
    h('span', { class: 'act-shape', title: 'output shape (without the batch)' }, shape(layer.output_shape)),
    h('span', { class: 'act-range muted' }, `min ${fixed(layer.min, 3)} · max ${fixed(layer.max, 3)}`));
  const parts = [head];
  if (layer.view === 'maps') {
    parts.push(h('div', { class: 'act-maps', role: 'group', 'aria-label': `${layer.kind} feature maps` },
      layer.maps.map((png, c) => h('img', { class: 'act-map', src: `data:image/png;base64,${png}`,
        alt: `layer ${layer.index + 1} channel ${c}`, title: `channel ${c}` }))));
    if (layer.maps.length < layer.channels) {
      parts.push(h('div', { class: 'muted small' }, `first ${layer.maps.length} of ${layer.channels} channels`));
    }
  } else {
    const bars = h('div', { class: 'act-bars', role: 'img', 'aria-label': `${layer.kind} output: ${layer.channels} values` });
    bars.values = layer.values.map(toNum);
    parts.push(bars);
    if (layer.values.length < layer.channels) {
      parts.push(h('div', { class: 'muted small' }, `first ${layer.values.length} of ${layer.channels} values`));
    }
  }
  const f = layer.filters;
  if (f) {
    const inputs = f.rgb ? 'RGB' : (f.inputs_shown < f.inputs ? `first ${f.inputs_shown} of ${f.inputs} inputs side by side`
      : `${f.inputs} input${f.inputs === 1 ? '' : 's'} side by side`);
    parts.push(h('div', { class: 'act-filter-head muted small' },
      `filters ${shape(f.shape)} (${inputs}; ${f.images.length < f.count ? `first ${f.images.length} of ${f.count}` : f.count}; `
      + `weights ${fixed(f.min, 3)} … ${fixed(f.max, 3)}, zero is grey)`));
    parts.push(h('div', { class: 'act-filters', role: 'group', 'aria-label': `${layer.kind} filters` },
      f.images.map((png, k) => h('img', { class: 'act-filter', src: `data:image/png;base64,${png}`,
        alt: `layer ${layer.index + 1} filter ${k}`, title: `filter ${k}` }))));
  }
  return h('section', { class: 'act-layer', 'data-layer': layer.index, 'aria-label': `layer ${layer.index + 1} (${layer.kind})` }, ...parts);
}

function drawBars(div) {
  const y = div.values;
  Plotly.newPlot(div, [{ type: 'bar', x: y.map((_, i) => i), y, marker: { color: y.map((v) => (v < 0 ? '#e8590c' : '#2357d6')) },
    hovertemplate: 'unit %{x}: %{y:.4g}<extra></extra>' }], {
    height: 120, margin: { l: 40, r: 8, t: 6, b: 22 }, bargap: y.length > 64 ? 0 : 0.15,
    font: { size: 10, color: '#3b4452' }, paper_bgcolor: '#fff', plot_bgcolor: '#fff',
    xaxis: { zeroline: false, showgrid: false }, yaxis: { gridcolor: '#eef0f3', zerolinecolor: '#c5ccd4' },
  }, BAR_CONFIG);
}
