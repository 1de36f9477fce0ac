import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { repoPath } from "../helpers/paths.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { requireH2load, runH2load } from "./h2load.js";
import { dispatchBody } from "./payloads.js";
import { productionNodeArgs } from "./production.js";

// `pnpm bench:soak`: drives the production server with many Dispatch calls
// (default 1M) in chunks and records its resident memory after each chunk,
// to show whether memory grows with the number of calls. Manual, not in CI.

const { values: opts } = parseArgs({ options: { calls: { type: "string" }, chunk: { type: "string" }, out: { type: "string" } } });
const calls = Number(opts.calls ?? 1_000_000);
const chunk = Number(opts.chunk ?? 100_000);
const outDir = opts.out ?? repoPath("bench-results");
requireH2load();

const body = dispatchBody();
const port = 50000 + Math.floor(Math.random() * 10000);
const url = `http://127.0.0.1:${port}`;
const server = spawn(process.execPath, [...productionNodeArgs(), repoPath("dist", "src", "main.js"), "--listen", `127.0.0.1:${port}`, "--log-level", "warn"], {
  stdio: ["ignore", "ignore", "inherit"],
});

const rssMiB = (field: "VmRSS" | "VmHWM") => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${server.pid}/status`, "utf8"));
  return Math.round(Number(m?.[1]) / 102.4) / 10;
};

try {
  for (let i = 0; ; i++) {
    try {
      await rawGrpcCall(url, "/coprocess.Dispatcher/Dispatch", body);
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const samples: Array<{ calls: number; rssMiB: number; reqPerSec: number }> = [{ calls: 0, rssMiB: rssMiB("VmRSS"), reqPerSec: 0 }];
  for (let done = 0; done < calls; ) {
    const n = Math.min(chunk, calls - done);
    const r = await runH2load(url + "/coprocess.Dispatcher/Dispatch", body, n, 16, 32);
    if (r.succeeded !== n || r.dataBytes !== n * body.length) {
      throw new Error(`chunk at ${done}: ${r.succeeded}/${n} succeeded, ${r.dataBytes} data bytes`);
    }
    done += n;
    samples.push({ calls: done, rssMiB: rssMiB("VmRSS"), reqPerSec: Math.round(r.reqPerSec) });
    process.stderr.write(`  ${done} calls: RSS ${samples.at(-1)!.rssMiB} MiB, ${Math.round(r.reqPerSec)} req/s\n`);
  }
  const afterFirst = samples[1]!.rssMiB;
  const last = samples.at(-1)!.rssMiB;
  const report = `# Soak ${new Date().toISOString()}

${calls} Dispatch calls (505-byte Pre-hook Object) in chunks of ${chunk}, h2load -c 16 -m 32,
every call checked. RSS after each chunk (MiB):

| calls | RSS MiB | req/s |
| ---: | ---: | ---: |
${samples.map((s) => `| ${s.calls} | ${s.rssMiB} | ${s.reqPerSec || ""} |`).join("\n")}

Peak RSS ${rssMiB("VmHWM")} MiB. From the first chunk to the last: ${afterFirst} -> ${last} MiB (${(last - afterFirst).toFixed(1)} MiB).
`;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "soak-latest.md"), report);
  writeFileSync(join(outDir, "soak-latest.json"), JSON.stringify({ calls, chunk, samples, peakRssMiB: rssMiB("VmHWM") }, null, 2));
  process.stdout.write(report);
} finally {
  server.kill("SIGKILL");
}
