import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { requireH2load, runH2load } from "../test/helpers/h2load.js";
import type { MemoryFigures } from "../test/helpers/memory-probe.js";
import { repoPath } from "../test/helpers/paths.js";
import { dispatchBody } from "../test/helpers/payloads.js";
import { productionNodeArgs } from "../test/helpers/production-args.js";
import { rawGrpcCall } from "../test/helpers/raw-http2.js";
import { type MemorySample, renderMemoryChart } from "./memory-chart.js";

// `pnpm bench:soak`: one production server (plus --expose-gc and the memory
// probe, for heap figures after a full GC) gets 1M Dispatch calls in
// chunks over long-lived connections, then 10k connection open/close
// cycles with one call each. Memory is sampled after every step and
// written as markdown, JSON and an SVG chart. Fails (exit 1) when memory
// grows more than the stated bounds between the first sample after
// warm-up and the last. Manual, not in CI.

const { values: opts } = parseArgs({
  options: {
    calls: { type: "string", default: "1000000" },
    chunk: { type: "string", default: "100000" },
    cycles: { type: "string", default: "10000" },
    out: { type: "string", default: repoPath("bench", "results") },
  },
});
const calls = Number(opts.calls);
const chunk = Number(opts.chunk);
const cycles = Number(opts.cycles);
// Bounds: what may stay behind once everything is warm.
const maxHeapGrowthMiB = 5;
const maxRssGrowthMiB = 50;
const cyclesPerRun = 500; // h2load -c 500 -n 500: 500 connections, one call each
requireH2load();

const body = dispatchBody();
const port = 50000 + Math.floor(Math.random() * 10000);
const url = `http://127.0.0.1:${port}`;
const probe = pathToFileURL(repoPath("dist", "test", "helpers", "memory-probe.js")).href;
const server = spawn(
  process.execPath,
  [...productionNodeArgs(), "--expose-gc", "--import", probe, repoPath("dist", "src", "main.js"), "--listen", `127.0.0.1:${port}`, "--log-level", "warn"],
  { stdio: ["ignore", "ignore", "inherit", "ipc"] },
);

const mib = (bytes: number) => Math.round(bytes / 104857.6) / 10;
async function sample(label: string): Promise<MemorySample & { heapTotalMiB: number; externalMiB: number }> {
  const reply = once(server, "message");
  server.send("memory");
  const [{ memory }] = (await reply) as [{ memory: MemoryFigures }];
  const s = { label, rssMiB: mib(memory.rss), heapUsedMiB: mib(memory.heapUsed), heapTotalMiB: mib(memory.heapTotal), externalMiB: mib(memory.external) };
  process.stderr.write(`  ${label}: RSS ${s.rssMiB} MiB, heap used ${s.heapUsedMiB} MiB\n`);
  return s;
}

/** h2load with one call per connection: `n` connections opened, used once and closed; how many succeeded. */
async function connectionCycles(n: number): Promise<number> {
  return (await runH2load(`${url}/coprocess.Dispatcher/Dispatch`, body, n, n, 1)).succeeded;
}

const outDir = opts.out;
mkdirSync(outDir, { recursive: true });
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
  const samples = [await sample("started")];
  const rates: number[] = [];
  for (let done = 0; done < calls; ) {
    const n = Math.min(chunk, calls - done);
    const r = await runH2load(`${url}/coprocess.Dispatcher/Dispatch`, body, n, 16, 32);
    if (r.succeeded !== n || r.dataBytes !== n * body.length) {
      throw new Error(`chunk at ${done}: ${r.succeeded}/${n} succeeded, ${r.dataBytes} data bytes`);
    }
    done += n;
    rates.push(Math.round(r.reqPerSec));
    samples.push(await sample(`${done} calls`));
  }
  for (let done = 0; done < cycles; ) {
    const n = Math.min(cyclesPerRun, cycles - done);
    const ok = await connectionCycles(n);
    if (ok !== n) throw new Error(`connection cycles at ${done}: ${ok}/${n} calls succeeded`);
    done += n;
    if (done % 2000 === 0 || done === cycles) samples.push(await sample(`+${done} connections`));
  }
  const warm = samples[1]!;
  const last = samples.at(-1)!;
  const heapGrowth = Math.round((last.heapUsedMiB - warm.heapUsedMiB) * 10) / 10;
  const rssGrowth = Math.round((last.rssMiB - warm.rssMiB) * 10) / 10;
  const passed = heapGrowth <= maxHeapGrowthMiB && rssGrowth <= maxRssGrowthMiB;
  const report = `# Soak ${new Date().toISOString()}

${calls} Dispatch calls (505-byte Pre-hook Object; h2load -c 16 -m 32, chunks of ${chunk}, every call
checked), then ${cycles} connections opened, used for one call and closed (h2load -c ${cyclesPerRun} -n ${cyclesPerRun}).
Production node options plus --expose-gc; heap figures are taken after a full GC.

| after | RSS MiB | heap used MiB | heap total MiB | external MiB |
| --- | ---: | ---: | ---: | ---: |
${samples.map((s) => `| ${s.label} | ${s.rssMiB} | ${s.heapUsedMiB} | ${s.heapTotalMiB} | ${s.externalMiB} |`).join("\n")}

Throughput per chunk (req/s): ${rates.join(", ")}.

From the first chunk to the end: heap used ${warm.heapUsedMiB} -> ${last.heapUsedMiB} MiB (${heapGrowth}, bound ${maxHeapGrowthMiB}),
RSS ${warm.rssMiB} -> ${last.rssMiB} MiB (${rssGrowth}, bound ${maxRssGrowthMiB}): **${passed ? "pass" : "FAIL"}**.
`;
  writeFileSync(join(outDir, "soak-latest.md"), report);
  writeFileSync(join(outDir, "soak-latest.json"), JSON.stringify({ calls, chunk, cycles, samples, rates, heapGrowth, rssGrowth, passed }, null, 2));
  writeFileSync(join(outDir, "soak-latest.svg"), renderMemoryChart(`Soak: ${calls} calls, then ${cycles} connections`, samples));
  process.stdout.write(report);
  process.exitCode = passed ? 0 : 1;
} finally {
  server.kill("SIGKILL");
}
