// Talking to the server: JSON requests with the access token, abortable, with readable errors.

const params = new URLSearchParams(location.search);
const TOKEN = params.get('token') || sessionStorage.getItem('layerlab_token') || '';
if (params.get('token')) sessionStorage.setItem('layerlab_token', TOKEN);

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body || {};
    this.problems = this.body.problems || [];
  }
}

// Every request says X-Layerlab: the server refuses writes that carry neither it nor a JSON body,
// which is what keeps other sites' forms and no-cors fetches out (see docs/security.md).
export async function api(path, { method = 'GET', body, signal, raw = false } = {}) {
  const headers = { 'X-Layerlab': '1' };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!resp.ok) {
    let data = {};
    try { data = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(resp.status, data.detail || `${resp.status} ${resp.statusText}`, data);
  }
  if (raw) return resp;
  if (resp.status === 204) return null;
  return resp.json();
}

// URLs the browser fetches by itself (img, EventSource) carry the token as ?token=.
export function withToken(url) {
  if (!TOKEN) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(TOKEN);
}

export function isAbort(err) {
  return err && (err.name === 'AbortError' || err.code === 20);
}

// One in-flight request per key: starting a new one aborts the stale one.
const inflight = new Map();
export function latest(key, path, options = {}) {
  inflight.get(key)?.abort();
  const ctl = new AbortController();
  inflight.set(key, ctl);
  return api(path, { ...options, signal: ctl.signal }).finally(() => {
    if (inflight.get(key) === ctl) inflight.delete(key);
  });
}
