// Every DOM selector the UI uses, in one place; `dom.x` is bound once at start-up.

export const SELECTORS = {
  serverStatus: '#server-status', tabs: '.tabs a[data-page]', pageBuilder: '#page-builder', pageRuns: '#page-runs',
  // data
  dataset: '#dataset', datasetDoc: '#dataset-doc', normalize: '#normalize', trainSize: '#train-size',
  testSize: '#test-size', datasetStats: '#dataset-stats',
  // model
  preset: '#preset', presetDoc: '#preset-doc', layers: '#layers', addLayer: '#add-layer',
  inputShape: '#input-shape', lossCard: '#loss-card', lossShape: '#loss-shape', lossNote: '#loss-note',
  // training
  optimizer: '#optimizer', optParams: '#opt-params', batchSize: '#batch-size', budgetEpochs: '#budget-epochs',
  budgetExamples: '#budget-examples', budgetValue: '#budget-value', init: '#init', initParams: '#init-params',
  seed: '#seed',
  // actions
  specName: '#spec-name', train: '#train-btn', stop: '#stop-btn', resume: '#resume-btn', saveJson: '#save-json', saveYaml: '#save-yaml',
  load: '#load-btn', loadFile: '#load-file', copyLink: '#copy-link', shareBox: '#share-box',
  // dashboard
  validity: '#validity', downloadBox: '#download-box', skipLink: '#skip-link', main: '#main', banner: '#banner', runTitle: '#run-title', runStatus: '#run-status', runNote: '#run-note',
  cExamples: '#c-examples', cElapsed: '#c-elapsed', cSpeed: '#c-speed', cInfer: '#c-infer', cLatency: '#c-latency',
  cTest: '#c-test', chartAccuracy: '#chart-accuracy', chartCost: '#chart-cost', chartSpeed: '#chart-speed',
  predTitle: '#pred-title', predNote: '#pred-note', predGrid: '#pred-grid', activations: '#activations', inside: '#inside', results: '#results',
  chartConfusion: '#chart-confusion', worst: '#worst',
  // runs page
  runsSearch: '#runs-search', runsStatus: '#runs-status', runsDataset: '#runs-dataset', runsBody: '#runs-body',
  runsAll: '#runs-all', runsCount: '#runs-count', runsDelete: '#runs-delete', compareMetric: '#compare-metric',
  compareNote: '#compare-note', chartCompare: '#chart-compare',
  toast: '#toast',
};

// Classes and data attributes of generated elements (queried inside their containers).
export const CLS = {
  layerCard: 'layer-card', kind: 'kind', shape: 'shape', pcount: 'pcount', params: 'params', msg: 'card-msg',
  idx: 'idx', pred: 'pred', runRow: 'run-row', runStage: 'run-stage',
};
export const SEL = {
  layerCard: '.layer-card', kind: 'select.kind', shape: '.shape', pcount: '.pcount', params: '.params',
  msg: '.card-msg', idx: '.idx', runCheck: 'input.run-check', fieldOf: (path) => `[data-field="${CSS.escape(path)}"]`,
  anyField: '[data-field]', invalid: '[aria-invalid="true"]', fieldError: '.field-error',
};

export const dom = {};

export function bindDom() {
  for (const [key, selector] of Object.entries(SELECTORS)) {
    dom[key] = key === 'tabs' ? [...document.querySelectorAll(selector)] : document.querySelector(selector);
    if (!dom[key] || (Array.isArray(dom[key]) && !dom[key].length)) console.warn('layerlab: missing element', selector);
  }
}

// h('div', {class: 'x', onclick: fn}, 'text', child, ...) -> element
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let toastTimer = null;
// A short message at the bottom; `action: {label, run}` adds a button (Undo) that runs once and closes it.
export function toast(text, { bad = false, ms = 3500, action = null } = {}) {
  const t = dom.toast;
  t.replaceChildren(h('span', {}, text));
  if (action) {
    t.append(h('button', { type: 'button', class: 'toast-action', onclick: () => { t.hidden = true; action.run(); } },
      action.label));
  }
  t.className = 'toast' + (bad ? ' bad' : '');
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}
