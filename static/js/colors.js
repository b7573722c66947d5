// The product's colours, read from <html data-colors> (rendered from app/views/colors.py: one source).
// NEGATIVE/POSITIVE are the sign of a value on every chart; palette[k] is contestant k; classes[k] is class k.
const config = JSON.parse(document.documentElement.dataset.colors || "{}");

export const NEGATIVE = config.negative;
export const POSITIVE = config.positive;
export const NEUTRAL = config.neutral;
export const NEGATIVE_PALE = config.negative_pale;
export const POSITIVE_PALE = config.positive_pale;
export const GOOD = config.good;
export const MARK = config.mark;
export const INK = config.ink;
export const PALETTE = config.palette || [];
export const CLASSES = config.classes || [];
/** The diverging scale as a Plotly colorscale; use it with zmid: 0 so that zero is NEUTRAL. */
export const DIVERGING = config.diverging || [];

function rgb(hex) {
  const h = hex.replace("#", "");
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}

/** A lookup table of `n` RGB triples from NEGATIVE through NEUTRAL to POSITIVE (for canvas heatmaps). */
export function divergingTable(n = 256, pale = false) {
  const lo = rgb(pale ? NEGATIVE_PALE : NEGATIVE), mid = rgb(NEUTRAL), hi = rgb(pale ? POSITIVE_PALE : POSITIVE);
  const out = new Uint8ClampedArray(n * 3);
  for (let i = 0; i < n; i++) {
    const s = (i / (n - 1)) * 2 - 1;  // -1 .. 1
    const [a, b, t] = s < 0 ? [mid, lo, -s] : [mid, hi, s];
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(a[c] + (b[c] - a[c]) * t);
  }
  return out;
}

/** The colour of `value` on the diverging scale with ends -scale..+scale, as an rgb() string. */
export function diverging(value, scale) {
  if (value === null || !Number.isFinite(value) || !(scale > 0)) return NEUTRAL;
  const t = Math.min(Math.abs(value) / scale, 1);
  const a = rgb(NEUTRAL), b = rgb(value > 0 ? POSITIVE : NEGATIVE);
  return `rgb(${a.map((x, c) => Math.round(x + (b[c] - x) * t)).join(",")})`;
}
