// The Download button: a data set that is not on the server is fetched there, verified, with a progress bar.
//
// POST /api/datasets/{name}/download starts the job (the server's fetch: mirrors in order, sha256
// checked, files moved into place only once verified); GET on the same path is polled for its
// byte counts. When it is done the data set's catalogue entry is read again and the builder checks
// the draft anew, so the banner turns valid by the same server-side check the CLI uses.

import { api } from './api.js';
import { dom, h } from './dom.js';
import { state } from './state.js';

const POLL_MS = 200;
let current = null;        // the data set the box is shown for
let onDone = () => {};
const polling = new Set();

export function initDownload(done) { onDone = done; }

const mb = (n) => `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;

// Show the box for data set `name` if it must be downloaded; hide it otherwise.
export function showDownloadFor(name) {
  const info = state.datasets[name];
  if (!info || info.available || info.source !== 'files') {
    current = null;
    dom.downloadBox.hidden = true;
    dom.downloadBox.replaceChildren();
    return;
  }
  if (current === name && !dom.downloadBox.hidden) return;
  current = name;
  const button = h('button', { type: 'button', class: 'btn primary', id: 'download-btn' }, `Download ${name}`);
  const bar = h('progress', { id: 'download-progress', max: '1', value: '0', 'aria-label': `Download of ${name}` });
  const text = h('span', { class: 'dl-text muted small', 'aria-live': 'off' }, '');
  const error = h('p', { class: 'dl-error', role: 'alert', hidden: true });
  button.addEventListener('click', () => start(name));
  dom.downloadBox.replaceChildren(
    h('p', { class: 'dl-say' }, h('b', {}, `${name} is not on the server yet.`),
      ' Download fetches its files there and checks each against its published sha256.'),
    h('div', { class: 'dl-row' }, button, bar, text), error);
  dom.downloadBox.hidden = false;
  api(`/api/datasets/${encodeURIComponent(name)}/download`).then((job) => render(job)).catch(() => {});
}

async function start(name) {
  const button = dom.downloadBox.querySelector('#download-btn');
  if (button) button.disabled = true;
  try {
    render(await api(`/api/datasets/${encodeURIComponent(name)}/download`, { method: 'POST' }));
    poll(name);
  } catch (err) {
    render({ dataset: name, state: 'failed', error: err.message, bytes_done: 0, bytes_total: null, fraction: 0 });
  }
}

function poll(name) {
  if (polling.has(name)) return;
  polling.add(name);
  const step = async () => {
    let job;
    try {
      job = await api(`/api/datasets/${encodeURIComponent(name)}/download`);
    } catch (err) {
      job = { dataset: name, state: 'failed', error: err.message, bytes_done: 0, bytes_total: null, fraction: 0 };
    }
    render(job);
    if (job.state === 'running') { setTimeout(step, POLL_MS); return; }
    polling.delete(name);
    if (job.state === 'done') {
      try {
        state.datasets[name] = await api(`/api/datasets/${encodeURIComponent(name)}`);
      } catch (err) {
        render({ ...job, state: 'failed', error: `downloaded, but its description could not be read: ${err.message}` });
        return;
      }
      onDone(name);
    }
  };
  setTimeout(step, POLL_MS);
}

function render(job) {
  if (job.dataset !== current) return;
  const box = dom.downloadBox;
  const button = box.querySelector('#download-btn'), bar = box.querySelector('#download-progress');
  const text = box.querySelector('.dl-text'), error = box.querySelector('.dl-error');
  if (!button) return;
  bar.value = job.fraction || 0;
  bar.setAttribute('aria-valuetext', `${Math.round(100 * (job.fraction || 0))}%`);
  const total = job.bytes_total ? mb(job.bytes_total) : 'its files';
  if (job.state === 'running') {
    button.disabled = true;
    text.textContent = `${mb(job.bytes_done)} of ${total}` + (job.file ? ` · ${job.file}` : '');
  } else if (job.state === 'done') {
    button.disabled = true;
    text.textContent = `done: ${total}, verified`;
  } else {
    button.disabled = false;
    text.textContent = job.state === 'idle' ? `${total} to download` : '';
  }
  error.hidden = job.state !== 'failed';
  error.textContent = job.state === 'failed' ? `✗ ${job.error} — try again, or pick another data set.` : '';
  if (job.state === 'running') poll(job.dataset);  // a download started before this page was opened
}
