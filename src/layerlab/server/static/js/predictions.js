// The predictions grid: each fixed test example with its top-3 classes as bars.
// Green: the bar is the true class; red: the top guess is wrong. Probabilities print as they
// are, NaN included. Cards are updated in place so the grid never jumps between snapshots.

import { withToken } from './api.js';
import { h } from './dom.js';
import { fixed, pct, toNum } from './format.js';

// activations.js sets a picker: while picker.enabled() (a run's dashboard), each example's image
// is a button, and picker.pick(index) opens what every layer of the network makes of it.
let picker = null;
export function setPicker(p) { picker = p; }

export function renderPredictions(grid, payload, imageUrl, emptyText) {
  const items = payload?.predictions || [];
  if (!items.length) {
    grid.replaceChildren(h('div', { class: 'pred-empty' }, emptyText || 'No predictions yet.'));
    return;
  }
  const classes = payload.classes || [];
  const name = (c) => classes[c] ?? String(c);
  const pickable = Boolean(imageUrl && picker?.enabled());
  const key = items.map((it) => it.index).join(',') + '|' + (imageUrl || '') + '|' + pickable;
  if (grid.dataset.key !== key) {
    grid.dataset.key = key;
    grid.replaceChildren(...items.map((it) => skeleton(it, imageUrl, pickable)));
  }
  const cards = grid.children;
  items.forEach((it, n) => fill(cards[n], it, name, payload.task));
}

function skeleton(it, imageUrl, pickable) {
  let img = imageUrl
    ? h('img', { src: withToken(imageUrl.replace('{index}', it.index)), alt: `test example ${it.index}`, width: 52, height: 52, loading: 'lazy' })
    : h('div', { class: 'noimg' }, `#${it.index}`);
  if (pickable) {
    img = h('button', { type: 'button', class: 'pred-pick', title: `Show every layer's output for test example ${it.index}`,
      'aria-label': `Show activations of test example ${it.index}`, onclick: () => picker.pick(it.index) }, img);
  }
  return h('div', { class: 'pred', 'data-index': it.index }, img, h('div', { class: 'pbody' }));
}

function fill(card, it, name, task) {
  const body = card.querySelector('.pbody');
  if (it.top) {
    card.className = 'pred ' + (it.correct ? 'right' : 'wrong');
    card.title = `test example ${it.index}: ${name(it.label)} — ${it.correct ? 'right' : 'wrong'}`;
    body.replaceChildren(
      h('div', { class: 'truth' }, h('span', { class: 'verdict' }, it.correct ? '✓ right' : '✗ wrong'), ' · true: ',
        h('b', {}, name(it.label))),  // said in words and marks, not by the green or red edge alone
      ...it.top.map(([c, p], k) => {
        const x = toNum(p);
        const width = Number.isFinite(x) ? Math.max(0, Math.min(1, x)) * 100 : 0;
        const cls = c === it.label ? 'right' : (k === 0 ? 'wrong' : '');
        return h('div', { class: `bar ${cls}` },
          h('span', { class: 'bl' }, h('span', { class: 'bf', style: { width: `${width}%` } }), h('span', { class: 'bn' }, name(c))),
          h('span', { class: 'bp' }, pct(p, 1)));
      }));
  } else if (task === 'reconstruction') {
    card.className = 'pred';
    body.replaceChildren(h('div', { class: 'truth' }, `example ${it.index}`), h('div', { class: 'reg' }, `error ${fixed(it.error, 4)}`));
  } else {
    card.className = 'pred';
    const fmt = (v) => (Array.isArray(v) ? v.map((x) => fixed(x, 3)).join(', ') : fixed(v, 3));
    body.replaceChildren(h('div', { class: 'truth' }, `example ${it.index}`),
      h('div', { class: 'reg' }, `target ${fmt(it.target)}`), h('div', { class: 'reg' }, `output ${fmt(it.output)}`));
  }
}
