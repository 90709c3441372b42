// A shareable link: the builder's whole experiment (data, model, training) in the URL fragment.
//
// `#/spec/<data>` holds {spec, preset} as JSON, deflate-raw compressed (CompressionStream) and
// base64url-encoded behind a "z" (or, in a browser without CompressionStream, plain JSON behind
// a "j"). Nothing is stored on the server. While the builder shows a draft, every checked edit
// rewrites the fragment in place (history.replaceState, no new history entry); "Copy link" puts
// the link on the clipboard and shows it in a text field to copy by hand where the clipboard
// API is refused. Opening a link restores the builder; a link that cannot be read says why in
// the page and the default draft stays. A link to a run (#/run/ID) is routed as before.

import * as builder from './builder.js';
import { dom, h, toast } from './dom.js';
import { state } from './state.js';

export const SPEC_PREFIX = '#/spec/';
const MAX_JSON = 1_000_000;  // characters of a decoded link; a spec is a few hundred
let writeSeq = 0;
let opening = false;

export function initShare() {
  dom.copyLink.addEventListener('click', copyLink);
  builder.on('check', (result, spec) => remember(spec));
}

export const isSpecLink = (hash) => hash.startsWith(SPEC_PREFIX);

// The fragment data of the draft: "z" + base64url(deflate-raw(JSON)), or "j" + base64url(JSON).
export async function encodeSpec(spec, preset = '') {
  const bytes = new TextEncoder().encode(JSON.stringify(preset ? { spec, preset } : { spec }));
  if (typeof CompressionStream === 'function') {
    const packed = await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate-raw'))).arrayBuffer();
    return 'z' + base64url(new Uint8Array(packed));
  }
  return 'j' + base64url(bytes);
}

// Inflate deflate-raw bytes, stopping as soon as more than `limit` come out (a crafted link must not inflate
// to gigabytes before its size is checked).
async function inflateAtMost(bytes, limit) {
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  const parts = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        reader.cancel().catch(() => {});
        throw new RangeError(`it inflates to more than ${limit} bytes, more than a spec`);
      }
      parts.push(value);
    }
  } catch (err) {
    if (err instanceof RangeError) throw new Error(err.message);
    throw new Error('its compressed data is damaged (the link may have been cut short)');
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// Fragment data -> {spec, preset}; throws an Error whose message says what is wrong with the link.
export async function decodeSpec(data) {
  const format = data.charAt(0), body = data.slice(1);
  if (format !== 'z' && format !== 'j') throw new Error(`it starts with "${format}", not "z" (compressed) or "j" (JSON)`);
  if (!body || /[^A-Za-z0-9_-]/.test(body)) throw new Error('its data is not base64url text (it may have been cut or altered)');
  let bytes = unbase64url(body);
  if (format === 'z') {
    if (typeof DecompressionStream !== 'function') throw new Error('this browser cannot decompress it (no DecompressionStream)');
    bytes = await inflateAtMost(bytes, MAX_JSON);
  }
  if (bytes.length > MAX_JSON) throw new Error(`it holds ${bytes.length} bytes, more than a spec (${MAX_JSON})`);
  let payload;
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new Error('its data is not JSON');
  }
  const spec = payload?.spec;
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('it holds no spec (a JSON object under "spec")');
  if (!spec.data || typeof spec.data !== 'object' || !(Array.isArray(spec.model) || typeof spec.model === 'string')) {
    throw new Error('its spec has no data set or no model (it needs "data" and "model")');
  }
  return { spec, preset: typeof payload.preset === 'string' ? payload.preset : '' };
}

// Route #/spec/<data>: load it into the builder, or say why not and keep the draft as it is.
export async function openSpecLink(hash) {
  opening = true;
  try {
    const { spec, preset } = await decodeSpec(hash.slice(SPEC_PREFIX.length));
    builder.loadSpec(spec, { preset });
    dom.shareBox.hidden = true;
    return true;
  } catch (err) {
    showBox(h('p', { class: 'share-error', role: 'alert' },
      `This link's experiment cannot be opened: ${err.message}. The builder shows the default model instead.`),
    h('button', { type: 'button', class: 'btn ghost', onclick: () => { dom.shareBox.hidden = true; } }, 'Close'));
    history.replaceState(null, '', '#/builder');
    return false;
  } finally {
    opening = false;
  }
}

// After each check of a draft: the fragment follows the builder (never over a run's or the runs page's link).
async function remember(spec) {
  const seq = ++writeSeq;
  let data;
  try { data = await encodeSpec(spec, state.preset); } catch { return; }  // the address just stays as it was
  const hash = location.hash;
  if (seq !== writeSeq || opening || !(hash === '' || hash === '#/builder' || isSpecLink(hash))) return;
  if (hash !== SPEC_PREFIX + data) history.replaceState(null, '', SPEC_PREFIX + data);
}

// The link that opens the current experiment: this page's address without ?token= (a link is for sharing).
export async function linkFor(spec, preset = state.preset) {
  return location.origin + location.pathname + SPEC_PREFIX + await encodeSpec(spec, preset);
}

async function copyLink() {
  let url;
  try { url = await linkFor(builder.currentSpec()); } catch (err) {
    toast(`Could not make a link: ${err.message}`, { bad: true });
    return;
  }
  const field = h('input', { type: 'text', readonly: true, class: 'share-link', value: url, 'aria-label': 'Link to this experiment',
    onfocus: (e) => e.target.select() });
  const said = h('span', { class: 'share-said', role: 'status' }, 'Copying…');
  const closeBtn = h('button', { type: 'button', class: 'btn ghost', onclick: () => { dom.shareBox.hidden = true; dom.copyLink.focus(); } }, 'Close');
  showBox(said, field, closeBtn);
  try {
    if (!navigator.clipboard?.writeText) throw new Error('no clipboard API here');
    await navigator.clipboard.writeText(url);
    said.textContent = `Link copied (${url.length} characters):`;
    toast('Link copied: it opens this experiment in the builder');
  } catch {
    said.textContent = 'The clipboard is not available here; copy the link by hand (Ctrl+C):';
    field.focus();
  }
}

function showBox(...children) {
  dom.shareBox.replaceChildren(...children);
  dom.shareBox.hidden = false;
}

function base64url(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function unbase64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  let bin;
  try {
    bin = atob(b64);
  } catch {
    throw new Error('its data is not base64url text (it may have been cut or altered)');
  }
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
