/** One memory sample of a soak run. */
export interface MemorySample {
  /** What had been done when the sample was taken, e.g. "200000 calls". */
  readonly label: string;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
}

/** A self-contained SVG line chart of RSS and heap used (after a full GC) over a soak run's samples. */
export function renderMemoryChart(title: string, samples: readonly MemorySample[]): string {
  const width = Math.max(600, 60 * samples.length + 120);
  const height = 380;
  const left = 60;
  const top = 50;
  const plot = 240;
  const max = Math.ceil(Math.max(...samples.map((s) => s.rssMiB), 1) / 50) * 50;
  const x = (i: number) => left + (i * (width - left - 40)) / Math.max(1, samples.length - 1);
  const y = (mib: number) => top + plot - (mib / max) * plot;
  const line = (values: number[], color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`;
  const ticks = Array.from({ length: 6 }, (_, k) => (max * k) / 5)
    .map(
      (v) =>
        `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v}</text><line x1="${left}" y1="${y(v)}" x2="${width - 30}" y2="${y(v)}" stroke="#eee"/>`,
    )
    .join("");
  const labels = samples
    .map(
      (s, i) =>
        `<text transform="translate(${x(i)},${top + plot + 14}) rotate(40)" font-size="10">${s.label.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</text>`,
    )
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="25" font-size="16">${title.replace(/&/g, "&amp;").replace(/</g, "&lt;")}: RSS (blue) and heap used after a full GC (orange), MiB</text>
${ticks}
<line x1="${left}" y1="${top + plot}" x2="${width - 30}" y2="${top + plot}" stroke="#333"/>
${line(
  samples.map((s) => s.rssMiB),
  "#2f6fdb",
)}
${line(
  samples.map((s) => s.heapUsedMiB),
  "#e07b00",
)}
${labels}
</svg>
`;
}
