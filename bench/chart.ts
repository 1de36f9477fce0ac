/** The part of a benchmark result the chart draws. */
export interface ChartCase {
  readonly name: string;
  readonly ratio: number;
  readonly project: { readonly reqPerSec: number; readonly p50Ms: number };
  readonly grpcJs: { readonly reqPerSec: number; readonly p50Ms: number };
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/**
 * A self-contained SVG: one group of two bars per case (project, grpc-js),
 * requests per second, with the ratio and the p50 latency under each group.
 */
export function renderChart(cases: readonly ChartCase[]): string {
  const width = 220 * cases.length + 80;
  const height = 360;
  const top = 50;
  const plot = 220;
  const max = Math.max(...cases.flatMap((c) => [c.project.reqPerSec, c.grpcJs.reqPerSec]), 1);
  const bars = cases
    .map((c, i) => {
      const x = 60 + i * 220;
      const bar = (value: number, dx: number, color: string) => {
        const h = (value / max) * plot;
        return (
          `<rect x="${x + dx}" y="${top + plot - h}" width="70" height="${h}" fill="${color}"/>` +
          `<text x="${x + dx + 35}" y="${top + plot - h - 5}" text-anchor="middle" font-size="12">${Math.round(value)}</text>`
        );
      };
      return [
        bar(c.project.reqPerSec, 0, "#2f6fdb"),
        bar(c.grpcJs.reqPerSec, 80, "#9a9a9a"),
        `<text x="${x + 75}" y="${top + plot + 20}" text-anchor="middle" font-size="13">${esc(c.name)}</text>`,
        `<text x="${x + 75}" y="${top + plot + 38}" text-anchor="middle" font-size="12">ratio ${c.ratio.toFixed(2)}x</text>`,
        `<text x="${x + 75}" y="${top + plot + 56}" text-anchor="middle" font-size="11">p50 ${c.project.p50Ms.toFixed(3)} / ${c.grpcJs.p50Ms.toFixed(3)} ms</text>`,
      ].join("");
    })
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="25" font-size="16">req/s (median): project (blue) vs @grpc/grpc-js (grey)</text>
<line x1="50" y1="${top + plot}" x2="${width - 20}" y2="${top + plot}" stroke="#333"/>
${bars}
</svg>
`;
}
