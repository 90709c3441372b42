// Number formatting that tells the truth: NaN prints as NaN, missing as an em dash.

export function toNum(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  const x = Number(v);
  return Number.isNaN(x) ? NaN : x;
}

export function pct(v, digits = 1) {
  const x = toNum(v);
  if (x === null) return '—';
  if (Number.isNaN(x)) return 'NaN%';
  if (!Number.isFinite(x)) return (x > 0 ? '∞' : '−∞') + '%';
  return (100 * x).toFixed(digits) + '%';
}

export function int(v) {
  const x = toNum(v);
  if (x === null) return '—';
  if (!Number.isFinite(x)) return String(x);
  return Math.round(x).toLocaleString('en-US');
}

export function compact(v) {
  const x = toNum(v);
  if (x === null) return '—';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e9) return (x / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
  if (a >= 1e6) return (x / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
  if (a >= 1e4) return (x / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
  return Math.round(x).toLocaleString('en-US');
}

export function fixed(v, digits = 3) {
  const x = toNum(v);
  if (x === null) return '—';
  if (!Number.isFinite(x)) return String(x);
  return x.toFixed(digits);
}

export function shape(s) {
  if (!s) return '?';
  return s.length === 1 ? String(s[0]) : s.join('×');
}

export function duration(seconds) {
  const s = toNum(seconds);
  if (s === null || !Number.isFinite(s)) return '—';
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  if (m < 60) return `${m}:${String(r).padStart(2, '0')}`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

export function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts * 1000);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}
