// The model builder: data set, layer stack and training settings, checked on every change.
//
// Every edit updates `state.draft`; a check (POST /api/check) follows 150 ms later, aborting any
// stale one, and marks the broken layer or field in place. A valid model then gets predictions
// from its random initial weights (POST /api/predict).

import { api, isAbort, latest } from './api.js';
import { CLS, SEL, dom, h, toast } from './dom.js';
import { int, pct, shape } from './format.js';
import { initDownload, showDownloadFor } from './download.js';
import { defaultParams, draftToSpec, emptyDraft, layerFromEntry, nextUid, optimizerKeys, specToDraft, state } from './state.js';

const CHECK_DELAY = 150;
const PREDICT_DELAY = 200;

const listeners = { userChange: [], check: [], predictions: [] };
export const on = (name, fn) => listeners[name].push(fn);
const emit = (name, ...args) => listeners[name].forEach((fn) => fn(...args));

let checkTimer = null, predictTimer = null, statsKey = '', lastPredictKey = '';
export let lastCheck = null;      // the check result of the current draft (null while pending)
let edited = false;               // the user changed the draft since it was last loaded
let scopeRun = null;              // the run the dashboard shows while the draft is edited (setDraftScope)

// ------------------------------------------------------------------ start-up

export function initBuilder() {
  renderDatasetOptions();
  initDownload((name) => {  // a finished download: the set is here now, check the draft again
    renderDatasetOptions();
    statsKey = '';
    renderData();
    scheduleCheck();
  });
  const norm = state.meta.data_fields.find((f) => f.name === 'normalize');
  dom.normalize.replaceChildren(...norm.choices.map((c) => h('option', { value: c }, c)));
  dom.preset.replaceChildren(h('option', { value: '' }, 'Custom (empty)'),
    h('optgroup', { label: 'Presets' }, Object.values(state.presets).map((p) =>
      h('option', { value: p.name }, `${p.name}  (${p.dataset})`))));
  dom.optimizer.replaceChildren(...state.meta.optimizers.names.map((o) => h('option', { value: o }, o)));
  dom.init.replaceChildren(...Object.values(state.inits).map((i) => h('option', { value: i.name, title: i.doc }, i.name)));
  wire();
}

function renderDatasetOptions() {
  const images = [], other = [];
  for (const d of Object.values(state.datasets)) (d.images ? images : other).push(d);
  const dsOption = (d) => h('option', { value: d.name }, d.name + (d.available ? '' : ' (not downloaded)'));
  const chosen = dom.dataset.value;
  dom.dataset.replaceChildren(
    h('optgroup', { label: 'Images' }, images.map(dsOption)),
    h('optgroup', { label: 'Toy and tabular' }, other.map(dsOption)));
  if (chosen) dom.dataset.value = chosen;
}

function wire() {
  const d = () => state.draft;
  dom.specName.addEventListener('input', () => { d().name = dom.specName.value; userChange(); });
  dom.dataset.addEventListener('change', () => {
    d().data.dataset = dom.dataset.value;
    const info = state.datasets[d().data.dataset];
    for (const [key, max] of [['train_size', info.train_size], ['test_size', info.test_size]]) {
      if (d().data[key] && max && d().data[key] > max) d().data[key] = null;
    }
    renderData();
    userChange();
  });
  dom.normalize.addEventListener('change', () => { d().data.normalize = dom.normalize.value; userChange(); });
  for (const [input, key] of [[dom.trainSize, 'train_size'], [dom.testSize, 'test_size']]) {
    input.addEventListener('input', () => { d().data[key] = readNumber(input, 'integer'); userChange(); });
  }
  dom.preset.addEventListener('change', () => choosePreset(dom.preset.value));
  dom.addLayer.addEventListener('click', () => addLayer(d().layers.length));
  dom.optimizer.addEventListener('change', () => { d().train.optimizer = dom.optimizer.value; renderOptParams(); userChange(); });
  dom.batchSize.addEventListener('input', () => { d().train.batch_size = readNumber(dom.batchSize, 'integer'); userChange(); });
  for (const radio of [dom.budgetEpochs, dom.budgetExamples]) {
    radio.addEventListener('change', () => {
      d().budget = radio.value;
      if (radio.value === 'examples' && !d().train.examples) d().train.examples = 5000;
      renderBudget();
      userChange();
    });
  }
  dom.budgetValue.addEventListener('input', () => {
    const examples = d().budget === 'examples';
    d().train[examples ? 'examples' : 'epochs'] = readNumber(dom.budgetValue, examples ? 'integer' : 'number');
    userChange();
  });
  dom.init.addEventListener('change', () => { setInit(dom.init.value); renderInitParams(); userChange(); });
  dom.seed.addEventListener('input', () => { d().train.seed = readNumber(dom.seed, 'integer'); userChange(); });
  dom.layers.addEventListener('keydown', onCardKey);
}

// ------------------------------------------------------------------ loading a spec

export function newDraft() {
  const dataset = state.datasets['fashion-mnist']?.available ? 'fashion-mnist' : 'digits';
  state.draft = emptyDraft(dataset);
  state.preset = '';
  renderAll();
  edited = false;
}

export function loadSpec(spec, { preset: menu = '' } = {}) {  // menu: the "Start from" choice to show (a shared link's)
  const { draft, preset } = specToDraft(spec);
  state.draft = draft;
  state.preset = menu && state.presets[menu] ? menu : preset;
  renderAll();
  edited = false;
}

export function currentSpec() {
  return draftToSpec(state.draft);
}

// The draft as it is now, to put back with `restore` (the Undo of a preset or of Runs → Open).
export function snapshot() {
  return { draft: structuredClone(state.draft), preset: state.preset, edited };
}

export function restore(snap) {
  state.draft = structuredClone(snap.draft);
  state.preset = snap.preset;
  renderAll();
  edited = snap.edited;
}

// Whether the draft holds edits of the user's since it was last loaded (which replacing it would lose).
export const isEdited = () => edited;

// A toast with Undo after the draft was replaced: `after` runs once it is put back (e.g. leave the run).
export function offerUndo(before, text, after = () => {}) {
  toast(text, { ms: 12000, action: { label: 'Undo', run: () => { restore(before); after(); userChange(); dom.preset.focus(); } } });
}

function choosePreset(name) {
  const before = snapshot();
  const modelOf = (draft) => JSON.stringify(draftToSpec(draft).model);
  state.preset = name;
  state.draft.layers = name ? state.presets[name].spec.model.map(layerFromEntry) : [];
  renderLayers();
  userChange();
  const first = dom.layers.querySelector(SEL.layerCard);
  (first || dom.addLayer).focus();
  if (before.draft.layers.length && modelOf(before.draft) !== modelOf(state.draft)) {
    offerUndo(before, name ? `The model was replaced by the preset ${name}.` : 'The layers were cleared.');
  }
}

// ------------------------------------------------------------------ rendering the forms

function renderAll() {
  dom.specName.value = state.draft.name;
  renderData();
  renderLayers();
  renderTraining();
  scheduleCheck();
}

function renderData() {
  const data = state.draft.data;
  dom.dataset.value = data.dataset;
  if (dom.dataset.value !== data.dataset) {  // an unknown data set from a file: show it, the check explains
    dom.dataset.append(h('option', { value: data.dataset }, `${data.dataset} (unknown)`));
    dom.dataset.value = data.dataset;
  }
  dom.normalize.value = data.normalize;
  const info = state.datasets[data.dataset];
  dom.trainSize.value = data.train_size ?? '';
  dom.testSize.value = data.test_size ?? '';
  dom.trainSize.placeholder = info?.train_size ? `all ${int(info.train_size)}` : 'all';
  dom.testSize.placeholder = info?.test_size ? `all ${int(info.test_size)}` : 'all';
  if (info?.train_size) dom.trainSize.max = info.train_size; else dom.trainSize.removeAttribute('max');
  if (info?.test_size) dom.testSize.max = info.test_size; else dom.testSize.removeAttribute('max');
  dom.datasetDoc.textContent = info ? info.doc : '';
  showDownloadFor(data.dataset);
  dom.inputShape.innerHTML = '';
  if (info) dom.inputShape.append(h('b', {}, shape(info.input_shape)), ` ${info.images ? 'image' : 'values'}`);
  loadStats();
}

function renderTraining() {
  const t = state.draft.train;
  dom.optimizer.querySelectorAll('option.unknown').forEach((o) => o.remove());
  dom.optimizer.value = t.optimizer;
  if (dom.optimizer.value !== t.optimizer) {  // an unknown optimiser from a file: show it, the check explains
    dom.optimizer.append(h('option', { value: t.optimizer, class: 'unknown' }, `${t.optimizer} (unknown)`));
    dom.optimizer.value = t.optimizer;
  }
  dom.batchSize.value = t.batch_size ?? '';
  dom.seed.value = t.seed ?? '';
  const initName = typeof t.init === 'string' ? t.init : Object.keys(t.init || {})[0] || 'default';
  dom.init.value = initName;
  renderOptParams();
  renderBudget();
  renderInitParams();
}

function renderBudget() {
  const examples = state.draft.budget === 'examples';
  dom.budgetEpochs.checked = !examples;
  dom.budgetExamples.checked = examples;
  const f = state.trainFields[examples ? 'examples' : 'epochs'];
  dom.budgetValue.dataset.field = examples ? 'train.examples' : 'train.epochs';
  dom.budgetValue.step = examples ? '1' : 'any';
  setRange(dom.budgetValue, f);
  dom.budgetValue.value = state.draft.train[examples ? 'examples' : 'epochs'] ?? '';
}

function renderOptParams() {
  const t = state.draft.train;
  const keys = optimizerKeys(t);
  dom.optParams.replaceChildren(...keys.map((key) => {
    const f = state.trainFields[key];
    const input = numberInput(`train.${key}`, 'number', f.doc);
    setRange(input, f);
    input.value = t[key] ?? '';
    input.addEventListener('input', () => { t[key] = readNumber(input, 'number'); userChange(); });
    return h('label', { title: f.doc }, labelFor(key), input);
  }));
}

const LABELS = { lr: 'Learning rate', momentum: 'Momentum', rho: 'Rho (decay)', beta1: 'Beta 1', beta2: 'Beta 2',
  epsilon: 'Epsilon', weight_decay: 'Weight decay' };
const labelFor = (key) => LABELS[key] || key.replace(/_/g, ' ');

function setInit(name) {
  const entry = state.inits[name];
  if (!entry || !entry.params.length) { state.draft.train.init = name; return; }
  const params = {};
  for (const p of entry.params) params[p.name] = p.default;
  state.draft.train.init = { [name]: params };
}

function renderInitParams() {
  const init = state.draft.train.init;
  if (!init || typeof init === 'string') { dom.initParams.replaceChildren(); return; }
  const [name, params] = Object.entries(init)[0];
  const entry = state.inits[name];
  dom.initParams.replaceChildren(...(entry?.params || []).map((p) => {
    const field = `train.init.${name}.${p.name}`;
    const control = paramControl(p, params[p.name], (v) => { params[p.name] = v; userChange(); }, field);
    return h('label', { title: p.doc }, `${name} ${p.name}`, control);
  }));
}

// ------------------------------------------------------------------ the layer stack

function renderLayers() {
  dom.layers.replaceChildren(...state.draft.layers.map((layer, i) => layerCard(layer, i)));
  dom.preset.value = state.preset;
  dom.presetDoc.textContent = state.preset ? state.presets[state.preset]?.description || '' : '';
}

function kindSelect(layer, i) {
  const byCat = {};
  for (const k of Object.values(state.kinds)) (byCat[k.category] ||= []).push(k);
  const select = h('select', { class: CLS.kind, 'aria-label': `Layer ${i + 1} kind` },
    Object.entries(byCat).map(([cat, kinds]) => h('optgroup', { label: cat },
      kinds.map((k) => h('option', { value: k.kind, title: k.doc }, k.kind)))));
  if (!state.kinds[layer.kind]) select.prepend(h('option', { value: layer.kind }, `${layer.kind} (unknown)`));
  select.value = layer.kind;
  select.addEventListener('change', () => {
    const old = layer.params;
    layer.kind = select.value;
    layer.params = defaultParams(layer.kind);
    for (const key of Object.keys(layer.params)) if (key in old && key !== 'init') layer.params[key] = old[key];
    const card = select.closest(SEL.layerCard);
    card.querySelector(SEL.params).replaceWith(paramsBox(layer, i));
    card.querySelector('.card-doc').textContent = state.kinds[layer.kind]?.category || '';
    card.title = state.kinds[layer.kind]?.doc || '';
    structureChange();
    focusCard(i, 'select');  // the cards were drawn anew: keep the keyboard where it was
  });
  return select;
}

function layerCard(layer, i) {
  const n = state.draft.layers.length;
  const tool = (label, title, act, disabled = false, cls = '') =>
    h('button', { type: 'button', class: `icon-btn ${cls}`, title, 'aria-label': `${title} (layer ${i + 1})`,
      disabled, onclick: (e) => { e.stopPropagation(); act(); } }, label);
  return h('li', { class: CLS.layerCard + ' card', tabindex: '0', 'data-index': i, 'data-uid': layer.uid,
    'data-kind': layer.kind, title: state.kinds[layer.kind]?.doc || '', 'aria-label': `Layer ${i + 1}: ${layer.kind}` },
    h('div', { class: 'card-head' },
      h('span', { class: CLS.idx }, i + 1),
      kindSelect(layer, i),
      h('span', { class: 'card-doc' }, state.kinds[layer.kind]?.category || ''),
      h('span', { class: 'tools' },
        tool('↑', 'Move up', () => moveLayer(i, -1), i === 0),
        tool('↓', 'Move down', () => moveLayer(i, +1), i === n - 1),
        tool('+', 'Insert a layer below', () => addLayer(i + 1)),
        tool('✕', 'Remove', () => removeLayer(i), false, 'del'))),
    h('div', { class: 'card-meta' }, h('span', { class: CLS.shape }, ''), h('span', { class: CLS.pcount }, '')),
    paramsBox(layer, i),
    h('div', { class: CLS.msg, 'aria-live': 'polite' }));
}

function paramsBox(layer, i) {
  const entry = state.kinds[layer.kind];
  const box = h('div', { class: CLS.params });
  for (const p of entry?.params || []) {
    const field = `model[${i}].${layer.kind}.${p.name}`;
    const control = p.name === 'init'
      ? initSelect(layer, field, i)
      : paramControl(p, layer.params[p.name], (v) => { layer.params[p.name] = v; userChange(); }, field);
    control.setAttribute('aria-label', `Layer ${i + 1} ${layer.kind} ${p.name}`);  // "units" alone names every layer's
    box.append(p.type === 'boolean'
      ? h('label', { title: p.doc }, control, p.name)
      : h('label', { title: p.doc + rangeText(p) }, p.name, control));
  }
  return box;
}

function initSelect(layer, field, i) {
  const select = h('select', { 'data-field': field, 'aria-label': `Layer ${i + 1} initialiser` },
    h('option', { value: '' }, '(model’s)'),
    Object.keys(state.inits).map((n) => h('option', { value: n }, n)));
  select.value = typeof layer.params.init === 'string' ? layer.params.init : '';
  select.addEventListener('change', () => { layer.params.init = select.value || null; userChange(); });
  return select;
}

// A form control for a declared parameter: number (with its range), checkbox, choice or list.
function paramControl(p, value, set, field) {
  if (p.choices) {
    const s = h('select', { 'data-field': field }, p.choices.map((c) => h('option', { value: c }, String(c))));
    s.value = value;
    s.addEventListener('change', () => set(s.value));
    return s;
  }
  if (p.type === 'boolean') {
    const c = h('input', { type: 'checkbox', 'data-field': field });
    c.checked = !!value;
    c.addEventListener('change', () => set(c.checked));
    return c;
  }
  if (p.type === 'array') {
    const t = h('input', { type: 'text', 'data-field': field, placeholder: 'e.g. 1, 28, 28', spellcheck: 'false' });
    t.value = Array.isArray(value) ? value.join(', ') : (value ?? '');
    t.addEventListener('input', () => {
      const parts = t.value.split(/[\s,×x]+/).filter(Boolean);
      const nums = parts.map(Number);
      set(nums.every(Number.isInteger) ? nums : t.value);
    });
    return t;
  }
  const input = numberInput(field, p.type);
  setRange(input, p);
  input.value = value ?? '';
  input.addEventListener('input', () => set(readNumber(input, p.type)));
  return input;
}

// A number field is a text field: what was typed reaches the check as typed ("abc" is named, not lost as null).
function numberInput(field, type, title) {
  return h('input', { type: 'text', class: 'num', inputmode: type === 'integer' ? 'numeric' : 'decimal',
    autocomplete: 'off', spellcheck: 'false', 'data-field': field, title });
}

function setRange(input, f) {
  if (!f) return;
  const min = f.ge ?? f.gt, max = f.le ?? f.lt;
  if (min !== undefined) input.min = min; else input.removeAttribute('min');
  if (max !== undefined) input.max = max; else input.removeAttribute('max');
}

function rangeText(p) {
  const parts = [];
  if (p.ge !== undefined) parts.push(`≥ ${p.ge}`);
  if (p.gt !== undefined) parts.push(`> ${p.gt}`);
  if (p.le !== undefined) parts.push(`≤ ${p.le}`);
  if (p.lt !== undefined) parts.push(`< ${p.lt}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

// '' -> null; a decimal number as typed -> the number (the checker judges its range and type);
// anything else ("abc", "0x10", "Infinity") -> the text itself, which the check names in its message.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
function readNumber(input) {
  const raw = input.value.trim().replace(/[\s_]/g, '');
  if (raw === '') return null;
  if (!DECIMAL.test(raw)) return input.value.trim();
  const x = Number(raw);
  return Number.isFinite(x) ? x : input.value.trim();
}

function suggestKind(i) {
  const rows = lastCheck?.layers || [];
  const prev = i === 0 ? state.datasets[state.draft.data.dataset]?.input_shape : rows[i - 1]?.output_shape;
  return prev && prev.length > 1 ? 'flatten' : 'fc';
}

export function addLayer(at) {
  const kind = suggestKind(at);
  state.draft.layers.splice(at, 0, { uid: nextUid(), kind, params: defaultParams(kind) });
  structureChange();
  focusCard(at, 'select');
}

function removeLayer(i) {
  state.draft.layers.splice(i, 1);
  structureChange();
  const n = state.draft.layers.length;
  if (n) focusCard(Math.min(i, n - 1)); else dom.addLayer.focus();
}

function moveLayer(i, delta) {
  const j = i + delta, layers = state.draft.layers;
  if (j < 0 || j >= layers.length) return;
  [layers[i], layers[j]] = [layers[j], layers[i]];
  structureChange();
  focusCard(j);
  cardAt(j)?.classList.add('moved');
}

const cardAt = (i) => dom.layers.querySelectorAll(SEL.layerCard)[i];

function focusCard(i, what = 'card') {
  const card = cardAt(i);
  if (!card) return;
  (what === 'select' ? card.querySelector(SEL.kind) : card).focus();
}

function onCardKey(e) {
  const card = e.target.closest(SEL.layerCard);
  if (!card) return;
  const i = Number(card.dataset.index);
  const onCard = e.target === card;
  if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
    e.preventDefault();
    moveLayer(i, e.key === 'ArrowUp' ? -1 : 1);
  } else if (onCard && (e.key === 'Delete' || e.key === 'Backspace')) {
    e.preventDefault();
    removeLayer(i);
  } else if (e.key === 'Insert' || (onCard && e.key === '+')) {
    e.preventDefault();
    addLayer(i + 1);
  } else if (onCard && e.key === 'Enter') {
    e.preventDefault();
    card.querySelector(SEL.kind).focus();
  } else if (onCard && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
    e.preventDefault();
    focusCard(i + (e.key === 'ArrowUp' ? -1 : 1));
  } else if (e.key === 'Escape' && !onCard) {
    card.focus();
  }
}

function structureChange() {
  state.preset = '';
  renderLayers();
  userChange();
}

// ------------------------------------------------------------------ checking

function userChange() {
  edited = true;
  emit('userChange');
  scheduleCheck();
}

export function scheduleCheck() {
  lastCheck = null;
  dom.train.disabled = true;
  clearTimeout(checkTimer);
  checkTimer = setTimeout(runCheck, CHECK_DELAY);
}

async function runCheck() {
  const spec = currentSpec();
  let result;
  try {
    result = await latest('check', '/api/check', { method: 'POST', body: spec });
  } catch (err) {
    if (isAbort(err)) return;
    result = { valid: false, layers: [], problems: [{ message: err.message, hint: '', layer: null, field: null }], warnings: [] };
  }
  lastCheck = result;
  applyCheck(result);
  emit('check', result, spec);
  if (result.valid) schedulePredict(spec); else { lastPredictKey = ''; emit('predictions', null, result); }
  loadStats();
}

function applyCheck(result) {
  const problems = result.problems || [], warnings = result.warnings || [];
  const cards = dom.layers.querySelectorAll(SEL.layerCard);
  // Shapes are walked only for a spec whose fields all parse: a bad parameter marks its own card,
  // and the others are neither dimmed nor said to be unchecked because of it.
  const shapesRan = (result.layers || []).length > 0;
  cards.forEach((card, i) => {
    const row = result.layers?.[i];
    const status = row?.status || 'unchecked';
    card.classList.toggle('error', status === 'error' || problems.some((p) => p.layer === i && !objective(p)));
    card.classList.toggle('unchecked', shapesRan && status === 'unchecked' && problems.length > 0);
    const mine = problems.filter((p) => p.layer === i);
    const warns = warnings.filter((w) => w.layer === i);
    card.classList.toggle('warn', !mine.length && warns.length > 0);
    const shapeEl = card.querySelector(SEL.shape);
    shapeEl.replaceChildren();
    if (row?.input_shape) {
      shapeEl.append(shape(row.input_shape), ' → ', h('b', {}, row.output_shape ? shape(row.output_shape) : '✗'));
    } else if (shapesRan && status === 'unchecked' && problems.length) {
      shapeEl.append('not checked: an earlier layer is broken');
    }
    card.querySelector(SEL.pcount).textContent = row && row.params ? `${int(row.params)} params` : '';
    const msg = card.querySelector(SEL.msg);
    msg.replaceChildren(...mine.map((p) => h('div', {}, h('div', { class: 'msg' }, '✗ ', paramOf(p), p.message),
      p.hint ? h('div', { class: 'fix' }, p.hint) : null)),
      ...warns.map((w) => h('div', { class: 'wmsg' }, '⚠ ', w.message, w.hint ? ` — ${w.hint}` : '')));
  });
  // Fields outside the stack (data, training, name) carry the problems that name them.
  document.querySelectorAll(SEL.invalid).forEach((el) => el.removeAttribute('aria-invalid'));
  document.querySelectorAll(SEL.fieldError).forEach((el) => el.remove());
  for (const p of problems) {
    if (!p.field || p.field.startsWith('model')) continue;
    const el = document.querySelector(SEL.fieldOf(p.field)) || document.querySelector(SEL.fieldOf(p.field.split('.').slice(0, 2).join('.')));
    if (!el) continue;
    el.setAttribute('aria-invalid', 'true');
    el.closest('label, fieldset')?.append(h('span', { class: 'field-error' }, '✗ ' + p.message + (hintOf(p) ? ` — ${hintOf(p)}` : '')));
  }
  for (const p of problems) {  // a bad layer parameter: mark its input too
    if (p.layer === null || p.layer === undefined || !p.field) continue;
    const el = document.querySelector(SEL.fieldOf(p.field));
    if (el) el.setAttribute('aria-invalid', 'true');
  }
  // The loss card: what the model must end with, and problems about the end of the model.
  const info = state.datasets[state.draft.data.dataset];
  const ends = problems.filter((p) => objective(p) || (p.category === 'shape' && p.layer === null));
  dom.lossCard.classList.toggle('error', ends.length > 0);
  dom.lossShape.replaceChildren();
  if (result.loss) dom.lossShape.append(`${result.loss.replace('_', '-')} · needs `, h('b', {}, needText(info, result)));
  else if (info) dom.lossShape.append('needs ', h('b', {}, needText(info, result)));
  dom.lossNote.replaceChildren(...ends.map((p) => h('div', {}, h('div', { class: 'msg' }, p.message), p.hint ? h('div', { class: 'fix' }, p.hint) : null)));
  if (!ends.length && result.valid && result.output_shape) {
    dom.lossNote.append(`model output ${shape(result.output_shape)} · label: ${labelText(info)}`);
  }
  renderValidity(result);
  dom.train.disabled = !result.valid;
}

// "units: " for a problem with model[1].fc.units: the card's message names the field it is about.
const paramOf = (p) => (/^model\[\d+\]\.[^.]+\.(.+)$/.exec(p.field || '')?.[1] ?? '').replace(/^(.+)$/, '$1: ');

// An objective problem (what the model ends with against the loss), not a broken shape rule.
const objective = (p) => p.category === 'objective';

function needText(info, result) {
  if (!info) return '?';
  if ((result.task || info.task) === 'reconstruction') return `${shape(info.input_shape)} values`;
  return info.task === 'classification' ? `${info.output_size} class scores` : `${info.output_size} value${info.output_size > 1 ? 's' : ''}`;
}

function labelText(info) {
  if (!info) return '?';
  return info.task === 'classification' ? `class index (${info.num_classes} classes)` : `${info.output_size} target value(s)`;
}

// While a run's charts are shown and the draft is edited, the banner speaks of the draft only, briefly:
// its warnings stay on its layer cards, not above another run's charts. null: the banner is the draft's.
export function setDraftScope(runId) {
  scopeRun = runId;
  if (lastCheck) renderValidity(lastCheck);
}

function renderValidity(result) {
  const v = dom.validity;
  const problems = result.problems || [], warnings = result.warnings || [];
  if (scopeRun !== null) {
    const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
    v.className = `validity draft-scope ${result.valid ? 'ok' : 'bad'}`;
    v.replaceChildren(h('span', { class: 'v-icon' }, result.valid ? '✓' : '✗'), h('div', {},
      h('span', { class: 'v-title' }, `Your edited draft is ${result.valid ? 'valid' : 'invalid'}`),
      ` — it is not run #${scopeRun}, whose charts are below. `,
      result.valid ? 'Train starts a new run with it.' : `${plural(problems.length, 'problem')}: see the marked fields.`,
      warnings.length ? ` ${plural(warnings.length, 'warning')} on its layer cards.` : ''));
    return;
  }
  if (result.valid) {
    v.className = 'validity ok';
    v.replaceChildren(h('span', { class: 'v-icon' }, '✓'), h('div', {},
      h('span', { class: 'v-title' }, 'Valid model'),
      ` · ${result.layers.length} layer${result.layers.length === 1 ? '' : 's'} · ${int(result.total_params)} parameters · `,
      `${shape(result.input_shape)} → ${shape(result.output_shape)} · ${result.task}, ${result.loss.replace('_', '-')} loss`,
      warnings.length ? h('div', { class: 'warnings' }, warnings.map((w) => h('div', {}, '⚠ ', w.message))) : null));
  } else {
    v.className = 'validity bad';
    v.replaceChildren(h('span', { class: 'v-icon' }, '✗'), h('div', {},
      h('span', { class: 'v-title' }, 'Invalid model'),
      ` — ${problems.length} problem${problems.length === 1 ? '' : 's'}; Train is disabled until it is fixed.`,
      h('ul', {}, problems.map((p) => h('li', {},
        p.where ? h('code', {}, p.where + ': ') : null, p.message,
        hintOf(p) ? h('div', { class: 'fix' }, hintOf(p)) : null)))));
  }
}

// The fix shown in the page: a data set that is not here is fetched with the Download button below the banner.
const hintOf = (p) => (p.category === 'data' && !dom.downloadBox.hidden
  ? 'press the Download button below, or pick another data set' : p.hint);

// ------------------------------------------------------------------ untrained predictions

function schedulePredict(spec) {
  const key = JSON.stringify({ data: spec.data, model: spec.model, seed: spec.train.seed, init: spec.train.init,
    task: spec.train.task, loss: spec.train.loss });
  if (key === lastPredictKey) return;
  lastPredictKey = key;
  clearTimeout(predictTimer);
  predictTimer = setTimeout(async () => {
    try {
      const out = await latest('predict', '/api/predict', { method: 'POST', body: spec });
      emit('predictions', out, null);
    } catch (err) {
      if (isAbort(err)) return;
      lastPredictKey = '';
      emit('predictions', null, { error: err.message });
    }
  }, PREDICT_DELAY);
}

// ------------------------------------------------------------------ data-set statistics

async function loadStats() {
  const d = state.draft.data;
  const q = new URLSearchParams();
  const info = state.datasets[d.dataset];
  // A subset the split cannot give is the check's to explain (in the banner), not a failed request here.
  const fits = (v, max) => Number.isInteger(v) && v > 0 && (!max || v <= max);
  if (fits(d.train_size, info?.train_size)) q.set('train_size', d.train_size);
  if (fits(d.test_size, info?.test_size)) q.set('test_size', d.test_size);
  const key = `${d.dataset}?${q}`;
  if (key === statsKey) return;
  statsKey = key;
  if (!info) { dom.datasetStats.replaceChildren(); return; }
  if (!info.available) {  // nothing to load until it is downloaded: no request, no error from the server
    dom.datasetStats.replaceChildren(h('div', { class: 'muted' }, `${d.dataset} is not on the server yet: `
      + 'the Download button beside the model check fetches it.'));
    return;
  }
  dom.datasetStats.replaceChildren(h('div', { class: 'loading muted' }, `Loading ${d.dataset}…`));
  try {
    const out = await latest('stats', `/api/datasets/${encodeURIComponent(d.dataset)}/stats?${q}`);
    if (statsKey !== key) return;  // another data set was chosen meanwhile (one with no request to abort this)
    renderStats(out.info, out.stats);
  } catch (err) {
    if (isAbort(err) || statsKey !== key) return;
    statsKey = '';
    dom.datasetStats.replaceChildren(h('div', { class: 'error' }, err.message));
  }
}

function renderStats(info, s) {
  const counts = Object.entries(s.counts).map(([k, v]) => `${int(v)} ${k}`).join(' · ');
  const label = s.task === 'classification'
    ? `${s.label_shape.length ? shape(s.label_shape) : 'scalar'} class index, ${info.num_classes} classes`
    : `${shape(s.label_shape)} target${info.target_names.length ? ` (${info.target_names.join(', ')})` : ''}`;
  const rows = [['Examples', counts], ['Input shape', `${shape(s.input_shape)} (${s.x_dtype})`], ['Label', label],
    ['Pixel range', `${s.pixel_range[0]} … ${s.pixel_range[1]}`]];
  const parts = [h('dl', {}, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))];
  if (s.class_balance?.train) {
    const bal = s.class_balance.train, total = Object.values(bal).reduce((a, b) => a + b, 0) || 1;
    const max = Math.max(...Object.values(bal));
    parts.push(h('div', { class: 'muted small', style: { margin: '2px 0 4px' } }, 'Class balance (train)'),
      h('div', { class: 'balance' }, Object.entries(bal).flatMap(([name, n]) => [
        h('span', { class: 'bname', title: name }, name),
        h('span', { class: 'btrack' }, h('span', { class: 'bfill', style: { width: `${(100 * n) / max}%`, display: 'block' } })),
        h('span', { class: 'bval', title: `${n} examples` }, pct(n / total, 1))])));
  }
  dom.datasetStats.replaceChildren(...parts);
}

// ------------------------------------------------------------------ save / load

export async function download(format) {
  try {
    const resp = await api('/api/spec/export', { method: 'POST', body: { spec: currentSpec(), format }, raw: true });
    const blob = await resp.blob();
    const name = (resp.headers.get('Content-Disposition') || '').match(/filename="([^"]+)"/)?.[1] || `spec.${format}`;
    const a = h('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (err) {
    toast(err.message, { bad: true });
  }
}

export async function upload(file) {
  if (file.size > 200000) { toast(`${file.name} is too large for a spec (${int(file.size)} bytes)`, { bad: true }); return false; }
  const text = await file.text();
  try {
    const out = await api('/api/spec/parse', { method: 'POST', body: { text, filename: file.name } });
    loadSpec(out.spec);
    toast(`Loaded ${file.name}` + (out.check.valid ? '' : ' — it has problems, see the model'));
    return true;
  } catch (err) {
    toast(`${file.name}: ${err.message}`, { bad: true, ms: 6000 });
    return false;
  }
}
