// The URL is the state: ?spec=<spec token> plus view settings (t, phase, sample, present, ...) on every page.
export function params() { return new URLSearchParams(window.location.search); }

export function get(name, fallback = null) {
  const v = params().get(name);
  return v === null ? fallback : v;
}

export function getInt(name, fallback = null) {
  const v = Number.parseInt(get(name, ""), 10);
  return Number.isFinite(v) ? v : fallback;
}

/** Set (or, with null, remove) view settings; push a history entry or replace the current one. */
export function update(values, { push = false } = {}) {
  const url = new URL(window.location.href);
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined || v === "") url.searchParams.delete(k); else url.searchParams.set(k, String(v));
  }
  if (url.href === window.location.href) return;
  if (push) history.pushState(history.state, "", url); else history.replaceState(history.state, "", url);
}
