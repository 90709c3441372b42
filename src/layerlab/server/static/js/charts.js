// What the dashboard's and the runs page's charts share: an examples axis with whole-number ticks, outlier
// detection with a log-scale toggle, the Model Builder's 0.7 moving average, and the running average throughput.

import { h } from './dom.js';

// Below this many examples the axis is fixed at [0, SMALL_X]: Plotly's autorange of a single x = 0 would tick
// "0, 500m, 1" (half an example); from SMALL_X on, ticks step by at least 2 and print as integers.
const SMALL_X = 10;

// The x axis of a chart against examples trained, for data up to `maxX` examples.
export function examplesAxis(maxX) {
  const small = !(maxX > SMALL_X);
  return {
    tickformat: maxX >= 1e4 ? '~s' : ',d', hoverformat: ',d', rangemode: 'tozero',
    ...(small ? { autorange: false, range: [0, SMALL_X] } : { autorange: true }),
  };
}

// A relayout of the x axis when `maxX` crosses from one tick style to the other (null when nothing changes).
// What was last asked for is kept on the div: reading `autorange` back from the layout would undo a user's
// zoom (Plotly sets it false) on every new batch of points.
export function examplesAxisUpdate(div, maxX) {
  const want = examplesAxis(maxX);
  const key = `${want.tickformat}|${want.autorange === true}`;
  if (div._llAxisKey === undefined) {  // the axis the chart was drawn with
    const now = div.layout?.xaxis || {};
    div._llAxisKey = `${now.tickformat}|${!(now.range && now.autorange === false)}`;
  }
  if (div._llAxisKey === key) return null;
  div._llAxisKey = key;
  const upd = {};
  for (const [k, v] of Object.entries(want)) upd[`xaxis.${k}`] = v;
  return upd;
}

// The largest x of new points, kept per chart (no spread of every point into Math.max on each batch).
export function runningMaxX(div, xs) {
  let m = div._llMaxX ?? 0;
  for (const x of xs) if (x > m) m = x;
  div._llMaxX = m;
  return m;
}

// An outlier flattens a linear chart: the largest finite value is OUTLIER_RATIO times the median or more.
export const OUTLIER_RATIO = 20;
export function hasOutlier(ys) {
  const v = ys.filter((y) => y !== null && Number.isFinite(y) && y > 0).sort((a, b) => a - b);
  if (v.length < 3) return false;
  const median = v[Math.floor(v.length / 2)];
  return median > 0 && v[v.length - 1] >= OUTLIER_RATIO * median;
}

// A "log scale" checkbox: `scale` is 'auto' until the user ticks or unticks it; auto follows hasOutlier.
export function scaleToggle(label, onChange) {
  const box = h('input', { type: 'checkbox', class: 'log-toggle' });
  const wrap = h('label', { class: 'inline small scale-toggle', title: 'Logarithmic y axis: an outlier (a spike, a diverged run) no longer flattens the other values' },
    box, ` ${label}`);
  const state = { scale: 'auto', box, el: wrap };
  box.addEventListener('change', () => { state.scale = box.checked ? 'log' : 'linear'; onChange(); });
  return state;
}

// The y-axis type the toggle asks for, given the values shown (and the box's tick kept in step).
export function yScale(toggle, ys) {
  const log = toggle.scale === 'log' || (toggle.scale === 'auto' && hasOutlier(ys));
  toggle.box.checked = log;
  return log ? 'log' : 'linear';
}

// The Model Builder's smoothing of its examples/sec chart: shown = w × previous shown + (1 − w) × new.
export const EMA_WEIGHT = 0.7;
export class Ema {
  constructor(weight = EMA_WEIGHT) { this.weight = weight; this.value = null; }
  push(x) {
    if (x === null || !Number.isFinite(x)) return this.value;
    this.value = this.value === null ? x : this.weight * this.value + (1 - this.weight) * x;
    return this.value;
  }
}

// The run's average throughput so far, by RunResults.examples_per_sec's definition (examples / seconds of
// training): each examples_per_sec row covers the examples since the previous log row, in examples / rate seconds.
export class RunningRate {
  constructor() { this.lastExamples = 0; this.seconds = 0; this.examples = 0; }
  push(examples, rate) {
    const count = examples - this.lastExamples;
    if (count > 0 && rate !== null && Number.isFinite(rate) && rate > 0) {
      this.seconds += count / rate;
      this.examples = examples;
    }
    if (examples > this.lastExamples) this.lastExamples = examples;
  }
  get value() { return this.seconds > 0 ? this.examples / this.seconds : null; }
}
