import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema } from "../gen/echo_pb.js";
import { freePort } from "../test/helpers/free-port.js";
import { grpcFrame } from "../test/helpers/grpc-frame.js";
import { type H2loadResult, requireH2load, runH2load } from "../test/helpers/h2load.js";
import { repoPath } from "../test/helpers/paths.js";
import { dispatchBody, uploadDispatchBody } from "../test/helpers/payloads.js";
import { productionNodeArgs } from "../test/helpers/production-args.js";
import { rawGrpcCall } from "../test/helpers/raw-http2.js";
import { renderChart } from "./chart.js";

// `pnpm bench`: the project's server against a @grpc/grpc-js reference server,
// same machine, same calls, interleaved A/B runs; see bench/README.md.

const { values: opts } = parseArgs({
  options: {
    smoke: { type: "boolean" },
    runs: { type: "string" },
    out: { type: "string" },
  },
});
const smoke = opts.smoke ?? false;
// Five runs: single runs of one server vary by 10-20 % on this machine, more
// on a bad day, and a median of three moved with one outlier.
const runs = Number(opts.runs ?? (smoke ? 1 : 5));
const outDir = opts.out ?? repoPath("bench", "results");

requireH2load();

const dispatchFrame = dispatchBody();
// A 16 MiB Object (an 8 MiB upload): assembling a large message must stay linear.
const uploadFrame = uploadDispatchBody(8 * 2 ** 20);
const echoBody = grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "Hello World!" })));

interface BenchCase {
  readonly name: string;
  readonly path: string;
  readonly body: Uint8Array;
  /** Bytes of the expected reply frame: every response must be exactly this long. */
  readonly replyBytes: number;
  /** Log each Dispatch Object as JSON (stdout to /dev/null). */
  readonly log: boolean;
  readonly requests: number;
  readonly clients: number;
  readonly streams: number;
  /** --workers of the project's server (grpc-js stays one process). */
  readonly workers?: number;
}

const throughput = smoke ? 2000 : 50_000;
// The Pre-hook Object's Dispatch, and the load of the throughput cases.
const dispatch = { path: "/coprocess.Dispatcher/Dispatch", body: dispatchFrame, replyBytes: dispatchFrame.length };
const underLoad = { requests: throughput, clients: 16, streams: 32 };
const cases: BenchCase[] = [
  { name: "Dispatch, log off", ...dispatch, log: false, ...underLoad },
  { name: "Dispatch, JSON log on", ...dispatch, log: true, ...underLoad },
  { name: "Echo", path: "/echo.Echo/Reply", body: echoBody, replyBytes: 5 + 24, log: false, ...underLoad },
  { name: "Dispatch, log off, --workers 2", ...dispatch, log: false, ...underLoad, workers: 2 },
  { name: "Dispatch, one call at a time", ...dispatch, log: false, requests: smoke ? 200 : 5000, clients: 1, streams: 1 },
  {
    name: "Dispatch, 16 MiB Object, 2 at a time",
    path: "/coprocess.Dispatcher/Dispatch",
    body: uploadFrame,
    replyBytes: uploadFrame.length,
    log: false,
    requests: smoke ? 4 : 40,
    clients: 1,
    streams: 2,
  },
];

type ServerName = "project" | "grpc-js";

function startServer(name: ServerName, port: number, log: boolean, workers = 1): ChildProcess {
  const args =
    name === "project"
      ? [
          ...productionNodeArgs(),
          repoPath("dist", "src", "main.js"),
          "--listen",
          `127.0.0.1:${port}`,
          ...(log ? ["--log-level", "info", "--log-objects"] : ["--log-level", "warn"]),
          "--workers",
          String(workers),
          "--users-store",
          "memory",
        ]
      : [repoPath("dist", "bench", "grpc-js-server.js"), String(port), ...(log ? ["--log"] : [])];
  // stdout to /dev/null, as a server logging to a file or a collector would not wait on a terminal.
  return spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
}

/** One call over a raw HTTP/2 connection: the status must be 0 and the reply the expected size. */
async function checkCall(baseUrl: string, c: BenchCase): Promise<void> {
  const res = await rawGrpcCall(baseUrl, c.path, c.body);
  const status = res.trailers["grpc-status"] ?? res.headers["grpc-status"];
  if (status !== "0" || res.body.length !== c.replyBytes) {
    throw new Error(`${c.name} at ${baseUrl}: grpc-status ${String(status)}, ${res.body.length} reply bytes (expected 0, ${c.replyBytes})`);
  }
}

async function waitReady(baseUrl: string, c: BenchCase): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await checkCall(baseUrl, c);
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Peak resident set size of a process so far, in MiB (Linux VmHWM), plus
 * its child processes' (the workers under --workers).
 */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
    .split(" ")
    .filter((c) => c.trim() !== "");
  const own = m ? Number(m[1]) / 1024 : NaN;
  return Math.round((own + children.reduce((sum, c) => sum + peakRssMiB(Number(c)), 0)) * 10) / 10;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface ServerResult {
  readonly runs: H2loadResult[];
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly peakRssMiB: number;
}

interface CaseResult {
  readonly name: string;
  readonly requests: number;
  readonly concurrency: string;
  readonly project: ServerResult;
  readonly grpcJs: ServerResult;
  /** project req/s over grpc-js req/s, medians of the same run. */
  readonly ratio: number;
}

async function benchCase(c: BenchCase): Promise<CaseResult> {
  const ports = { project: await freePort(), "grpc-js": await freePort() };
  const procs = { project: startServer("project", ports.project, c.log, c.workers), "grpc-js": startServer("grpc-js", ports["grpc-js"], c.log) };
  try {
    const order: ServerName[] = ["project", "grpc-js"];
    const results: Record<ServerName, H2loadResult[]> = { project: [], "grpc-js": [] };
    for (const name of order) {
      const url = `http://127.0.0.1:${ports[name]}`;
      await waitReady(url, c);
      // Warm-up: one run's worth of calls, so that both servers' code is optimized before the measured runs.
      await runH2load(url + c.path, c.body, c.requests, c.clients, c.streams);
    }
    for (let i = 0; i < runs; i++) {
      for (const name of order) {
        const url = `http://127.0.0.1:${ports[name]}`;
        const r = await runH2load(url + c.path, c.body, c.requests, c.clients, c.streams);
        // h2load counts HTTP 2xx; a gRPC error is HTTP 200 too, so check the bytes and a status.
        if (r.succeeded !== c.requests || r.dataBytes !== c.requests * c.replyBytes) {
          throw new Error(`${c.name} on ${name}: ${r.succeeded}/${c.requests} succeeded, ${r.dataBytes} data bytes (expected ${c.requests * c.replyBytes})`);
        }
        await checkCall(url, c);
        results[name].push(r);
        process.stderr.write(`  ${c.name} | ${name} run ${i + 1}: ${r.reqPerSec.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(3)} ms\n`);
      }
    }
    const summary = (name: ServerName): ServerResult => ({
      runs: results[name],
      reqPerSec: median(results[name].map((r) => r.reqPerSec)),
      p50Ms: median(results[name].map((r) => r.p50Ms)),
      p99Ms: median(results[name].map((r) => r.p99Ms)),
      peakRssMiB: peakRssMiB(procs[name].pid!),
    });
    const project = summary("project");
    const grpcJs = summary("grpc-js");
    return { name: c.name, requests: c.requests, concurrency: `-c ${c.clients} -m ${c.streams}`, project, grpcJs, ratio: project.reqPerSec / grpcJs.reqPerSec };
  } finally {
    for (const p of Object.values(procs)) {
      p.kill("SIGKILL");
    }
  }
}

const started = new Date();
const results: CaseResult[] = [];
for (const c of cases) {
  process.stderr.write(`${c.name} (${c.requests} calls, -c ${c.clients} -m ${c.streams}, ${runs} run(s) each, interleaved)\n`);
  results.push(await benchCase(c));
}

const fmt = (n: number, d = 0) => n.toFixed(d);
const table = [
  "| case | project req/s | grpc-js req/s | ratio | project p50 / p99 ms | grpc-js p50 / p99 ms | peak RSS project / grpc-js MiB |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...results.map(
    (r) =>
      `| ${r.name} | ${fmt(r.project.reqPerSec)} | ${fmt(r.grpcJs.reqPerSec)} | ${fmt(r.ratio, 2)}x | ${fmt(r.project.p50Ms, 3)} / ${fmt(r.project.p99Ms, 3)} | ${fmt(r.grpcJs.p50Ms, 3)} / ${fmt(r.grpcJs.p99Ms, 3)} | ${r.project.peakRssMiB} / ${r.grpcJs.peakRssMiB} |`,
  ),
].join("\n");
const header = `# Benchmark ${started.toISOString()}${smoke ? " (smoke: too short to compare)" : ""}

Node ${process.version}; h2load over h2c on 127.0.0.1, server and load generator on the same
machine; medians of ${runs} interleaved run(s) after a warm-up; every call checked (all succeeded,
exact reply bytes, grpc-status 0 before and after). Ratios compare medians from this one run only.
`;
const markdown = `${header}\n${table}\n`;
mkdirSync(outDir, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, "-");
for (const name of [`bench-${stamp}`, "latest"]) {
  writeFileSync(join(outDir, `${name}.md`), markdown);
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify({ started, node: process.version, smoke, runs, results }, null, 2));
  writeFileSync(join(outDir, `${name}.svg`), renderChart(results));
}
process.stdout.write(`${markdown}\nWritten to ${outDir}/latest.{md,json,svg}\n`);
