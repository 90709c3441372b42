// The experiment being edited (the "draft"), and conversions between it and spec data.

export const state = {
  meta: null,
  kinds: {},       // kind name -> catalogue entry
  aliases: {},     // alias -> kind name
  datasets: {},    // name -> catalogue info
  presets: {},     // name -> {name, description, spec}
  inits: {},       // name -> {name, doc, params}
  trainFields: {}, // TrainSpec field name -> {type, default, ge, gt, le, lt, choices, doc}
  draft: null,
  preset: '',      // preset the layers came from ('' once edited, or Custom)
};

let uid = 0;
export const nextUid = () => ++uid;

export function setMeta(meta) {
  state.meta = meta;
  for (const k of meta.layers) {
    state.kinds[k.kind] = k;
    for (const a of k.aliases) state.aliases[a] = k.kind;
  }
  for (const d of meta.datasets) state.datasets[d.name] = d;
  for (const p of meta.presets) state.presets[p.name] = p;
  for (const i of meta.inits) state.inits[i.name] = i;
  for (const f of meta.train_fields) state.trainFields[f.name] = f;
}

export function defaultParams(kind) {
  const entry = state.kinds[kind];
  const out = {};
  if (!entry) return out;
  for (const p of entry.params) out[p.name] = Array.isArray(p.default) ? [...p.default] : p.default;
  return out;
}

// "relu" | {fc: {units: 10}} | {kind: "fc", params: {...}} -> {uid, kind, params (defaults filled)}
export function layerFromEntry(entry) {
  let kind, params = {};
  if (typeof entry === 'string') kind = entry;
  else if (entry && typeof entry === 'object' && typeof entry.kind === 'string') {
    kind = entry.kind;
    params = entry.params || Object.fromEntries(Object.entries(entry).filter(([k]) => k !== 'kind'));
  } else if (entry && typeof entry === 'object' && Object.keys(entry).length === 1) {
    [kind, params] = Object.entries(entry)[0];
  } else kind = String(entry);
  kind = state.aliases[kind] || kind;
  return { uid: nextUid(), kind, params: { ...defaultParams(kind), ...(params && typeof params === 'object' ? params : {}) } };
}

export function trainDefaults() {
  const out = {};
  for (const [name, f] of Object.entries(state.trainFields)) out[name] = f.default;
  return out;
}

export function emptyDraft(dataset = 'fashion-mnist') {
  return {
    name: 'my-model',
    data: { dataset, normalize: '-1..1', train_size: null, test_size: null },
    layers: [],
    train: trainDefaults(),
    budget: 'epochs',
  };
}

// Spec data (from a preset, a run or a file) -> draft. `model: preset/NAME` is expanded.
export function specToDraft(spec) {
  const draft = emptyDraft();
  if (typeof spec.name === 'string' && spec.name.trim()) draft.name = spec.name;
  if (spec.data && typeof spec.data === 'object') draft.data = { ...draft.data, ...spec.data };
  let model = spec.model;
  let preset = '';
  if (typeof model === 'string' && model.startsWith('preset/')) {
    preset = model.slice('preset/'.length);
    model = state.presets[preset]?.spec.model || [];
  }
  draft.layers = Array.isArray(model) ? model.map(layerFromEntry) : [];
  if (spec.train && typeof spec.train === 'object') draft.train = { ...draft.train, ...spec.train };
  draft.budget = draft.train.examples ? 'examples' : 'epochs';
  return { draft, preset };
}

// The hyper-parameters shown and sent for the draft's optimiser. An unknown one (from a file) keeps
// every hyper-parameter the file set, so the check still reports their problems next to the optimiser's.
export function optimizerKeys(train) {
  const known = state.meta.optimizers.params[train.optimizer];
  if (known) return known;
  const all = [...new Set(Object.values(state.meta.optimizers.params).flat())];
  return all.filter((key) => key === 'lr' || JSON.stringify(train[key]) !== JSON.stringify(state.trainFields[key]?.default));
}

// Draft -> spec data, as /api/check and /api/runs take it: only what matters is written.
export function draftToSpec(draft) {
  const data = { dataset: draft.data.dataset, normalize: draft.data.normalize };
  for (const key of ['train_size', 'test_size']) if (draft.data[key]) data[key] = draft.data[key];
  for (const [key, value] of Object.entries(draft.data)) {
    if (key in data || ['train_size', 'test_size'].includes(key)) continue;
    if (key === 'val_fraction' && !value) continue;
    if (key === 'options' && (!value || !Object.keys(value).length)) continue;
    data[key] = value;
  }
  const model = draft.layers.map((layer) => {
    const entry = state.kinds[layer.kind];
    const params = {};
    for (const [name, value] of Object.entries(layer.params)) {
      if (name === 'init' && !value) continue;
      if (entry && !entry.params.some((p) => p.name === name)) continue;
      params[name] = value;
    }
    return Object.keys(params).length ? { [layer.kind]: params } : layer.kind;
  });
  const t = draft.train;
  const train = { optimizer: t.optimizer };
  for (const key of optimizerKeys(t)) train[key] = t[key];
  train.batch_size = t.batch_size;
  if (draft.budget === 'examples') train.examples = t.examples;
  else train.epochs = t.epochs;
  train.init = t.init;
  train.seed = t.seed;
  const allHyper = new Set(Object.values(state.meta.optimizers.params).flat());
  for (const [key, value] of Object.entries(t)) {
    if (key in train || allHyper.has(key) || ['epochs', 'examples'].includes(key)) continue;
    const def = state.trainFields[key]?.default;
    if (JSON.stringify(value) !== JSON.stringify(def)) train[key] = value;
  }
  return { name: draft.name || 'untitled', data, model, train };
}
