// A small bar chart in SVG (no library): stacked bars per time bucket, one colour per series,
// with a legend. Enough for delivery counts over an hour.
const NS = "http://www.w3.org/2000/svg";
const COLOURS = { delivered: "#2f855a", retried: "#d69e2e", failed: "#c53030", dropped: "#718096", filtered: "#a0aec0" };

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/**
 * `buckets`: `[{label, counts: {series: n}}]`, oldest first. Returns an `<svg>` whose bars carry
 * their numbers as titles (hover) and as `data-` attributes (tests).
 */
export function barChart(buckets, series) {
  const width = 640, height = 180, pad = 28, legend = 22;
  const max = Math.max(1, ...buckets.map((b) => series.reduce((n, s) => n + (b.counts[s] ?? 0), 0)));
  const step = (width - pad) / Math.max(1, buckets.length);
  const scale = (height - pad - legend) / max;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": "Delivery metrics" });
  root.append(svg("text", { x: 0, y: legend + 10, class: "axis" }, String(max)), svg("text", { x: 0, y: height - pad, class: "axis" }, "0"));
  buckets.forEach((b, i) => {
    let y = height - pad;
    for (const s of series) {
      const n = b.counts[s] ?? 0;
      if (!n) continue;
      const hgt = n * scale;
      y -= hgt;
      root.append(svg("rect", { x: pad + i * step + 2, y, width: step - 4, height: hgt, fill: COLOURS[s] ?? "#4a5568", "data-series": s, "data-count": n }, svg("title", {}, `${b.label}: ${n} ${s}`)));
    }
    if (i % 2 === 0) root.append(svg("text", { x: pad + i * step + 2, y: height - 8, class: "axis" }, b.label));
  });
  series.forEach((s, i) => {
    root.append(svg("rect", { x: pad + i * 110, y: 4, width: 12, height: 12, fill: COLOURS[s] ?? "#4a5568" }), svg("text", { x: pad + i * 110 + 16, y: 14, class: "axis" }, s));
  });
  return root;
}
