import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { openEventStream } from "../test/helpers/event-stream.js";
import { freePort } from "../test/helpers/free-port.js";
import { requireH2load, runH2load } from "../test/helpers/h2load.js";
import { repoPath } from "../test/helpers/paths.js";
import { dispatchBody } from "../test/helpers/payloads.js";
import { productionNodeArgs } from "../test/helpers/production-args.js";
import { rawGrpcCall } from "../test/helpers/raw-http2.js";

// `pnpm bench:inspect`: what the call inspector costs Dispatch. Four modes
// in one run, their rounds interleaved (the order rotates each round): a
// server without --inspect (two of them: how far apart two processes of one
// build are is the noise); one with --inspect and no page open; the same
// with one viewer reading the event stream (a node:http reader, the tests'
// own; a real browser would share the two cores with the server and
// measure itself). h2load sends the benchmark's Pre
// Object (echo-log, credentials to mask); throughput and the server's CPU
// time per call (/proc) are compared. See bench/README.md.

const { values: opts } = parseArgs({ options: { rounds: { type: "string" }, requests: { type: "string" }, calls: { type: "string" } } });
const rounds = Number(opts.rounds ?? 5);
const requests = Number(opts.requests ?? 50_000);
// --inspect-calls of the inspecting server.
const kept = opts.calls ?? "200";
const clients = 16;
const streams = 32;

requireH2load();
const body = dispatchBody();
const clockTicks = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s

interface Server {
  readonly child: ChildProcess;
  readonly grpcUrl: string;
  readonly httpUrl: string | undefined;
}

async function start(inspect: boolean): Promise<Server> {
  const port = await freePort();
  const httpPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...productionNodeArgs(),
      repoPath("dist", "src", "main.js"),
      "--listen",
      `127.0.0.1:${port}`,
      "--log-level",
      "warn",
      "--users-store",
      "memory",
      ...(inspect ? ["--inspect", "--http-listen", `127.0.0.1:${httpPort}`, "--inspect-calls", kept] : []),
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const grpcUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await rawGrpcCall(grpcUrl, "/coprocess.Dispatcher/Dispatch", body);
      if ((res.trailers["grpc-status"] ?? res.headers["grpc-status"]) === "0") break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("the server did not answer Dispatch within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, grpcUrl, httpUrl: inspect ? `http://127.0.0.1:${httpPort}` : undefined };
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : Number.NaN;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime, stime
}

/** A viewer: reads the event stream; counts the calls it was sent, and those it was told it was not. */
async function openViewer(url: string): Promise<{ calls: () => number; dropped: () => number; close(): void }> {
  const stream = await openEventStream(`${url}/inspect/events`);
  const total = (event: string, count: (data: unknown) => number) =>
    stream.events.filter((e) => e.event === event).reduce((sum, e) => sum + count(JSON.parse(e.data)), 0);
  return {
    calls: () => total("calls", (data) => (data as unknown[]).length),
    dropped: () => total("dropped", (data) => (data as { calls: number }).calls),
    close: () => stream.close(),
  };
}

// "off, again" is a second server without --inspect: the noise between two processes of one build.
type Mode = "off" | "off, again" | "on, no viewer" | "on, one viewer";
const modes: Mode[] = ["off", "off, again", "on, no viewer", "on, one viewer"];
const results = new Map<Mode, { reqPerSec: number; cpuUsPerCall: number; p99Ms: number }[]>(modes.map((m) => [m, []]));
let viewerCalls = 0;
let viewerDropped = 0;

const off = await start(false);
const offAgain = await start(false);
const on = await start(true);
try {
  for (let r = 0; r < rounds; r++) {
    const order = modes.map((_, i) => modes[(i + r) % modes.length]!);
    for (const mode of order) {
      const server = mode === "off" ? off : mode === "off, again" ? offAgain : on;
      const viewer = mode === "on, one viewer" ? await openViewer(on.httpUrl!) : undefined;
      const cpuBefore = cpuSeconds(server.child.pid!);
      const run = await runH2load(`${server.grpcUrl}/coprocess.Dispatcher/Dispatch`, body, requests, clients, streams, 300_000);
      const cpu = cpuSeconds(server.child.pid!) - cpuBefore;
      if (run.succeeded !== requests) throw new Error(`${mode}: ${run.succeeded} of ${requests} calls succeeded`);
      if (viewer) {
        await new Promise((resolve) => setTimeout(resolve, 300)); // the last batch
        viewerCalls += viewer.calls();
        viewerDropped += viewer.dropped();
        viewer.close();
        await new Promise((resolve) => setTimeout(resolve, 100)); // the server sees the viewer leave
      }
      results.get(mode)!.push({ reqPerSec: run.reqPerSec, cpuUsPerCall: (cpu / requests) * 1e6, p99Ms: run.p99Ms });
      process.stdout.write(
        `round ${r + 1} ${mode.padEnd(15)} ${Math.round(run.reqPerSec)} req/s, ${((cpu / requests) * 1e6).toFixed(1)} µs CPU/call, p99 ${run.p99Ms} ms\n`,
      );
    }
  }
  process.stdout.write(`\npeak RSS: ${peakRssMiB(off.child.pid!)} MiB without --inspect, ${peakRssMiB(on.child.pid!)} MiB with it (--inspect-calls ${kept})\n`);
} finally {
  for (const server of [off, offAgain, on]) server.child.kill("SIGTERM");
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = results.get("off")!;
process.stdout.write(`Dispatch, ${requests} calls per round, ${clients} connections x ${streams} streams, ${rounds} rounds (medians)\n`);
process.stdout.write("| mode | req/s | vs off | CPU µs/call | vs off | p99 ms |\n|---|---|---|---|---|---|\n");
for (const mode of modes) {
  const rs = results.get(mode)!;
  const rps = median(rs.map((x) => x.reqPerSec));
  const cpu = median(rs.map((x) => x.cpuUsPerCall));
  process.stdout.write(
    `| ${mode} | ${Math.round(rps)} | ${(rps / median(base.map((x) => x.reqPerSec))).toFixed(3)}x | ${cpu.toFixed(1)} | ${(cpu / median(base.map((x) => x.cpuUsPerCall))).toFixed(3)}x | ${median(rs.map((x) => x.p99Ms))} |\n`,
  );
}
process.stdout.write(
  `\nThe viewer was sent ${viewerCalls} of ${rounds * requests} calls; and told of ${viewerDropped} more it was not sent (a batch holds what the page keeps, --inspect-calls).\n`,
);
