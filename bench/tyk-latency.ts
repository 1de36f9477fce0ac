import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../test/helpers/free-port.js";
import { grpcFrame } from "../test/helpers/grpc-frame.js";
import { requireH2load } from "../test/helpers/h2load.js";
import { repoPath } from "../test/helpers/paths.js";
import { productionNodeArgs } from "../test/helpers/production-args.js";
import { rawGrpcCall } from "../test/helpers/raw-http2.js";
import { gatewayBinary, keylessApi, startGateway, startRedis, startUpstream } from "../test/helpers/tyk-real-gateway.js";

// `pnpm bench:tyk`: the latency a plugin adds, measured through the real Tyk
// Gateway (TYK_GATEWAY_BIN): HTTP/1.1 load from h2load (--h1) against the
// gateway, for an API with no plugin, one Pre hook, all five hook types, and
// custom auth alone, interleaved; the plugin server runs with production
// settings at log level warn. Prints a Markdown table (docs/tyk-gateway.md).

const { values: opts } = parseArgs({ options: { rounds: { type: "string" }, rate: { type: "string" }, seconds: { type: "string" } } });
const rounds = Number(opts.rounds ?? 3);
// Latency at a moderate, fixed rate (2 connections, half of it each), well
// under what the slowest case sustains; throughput from a closed loop.
const rate = Number(opts.rate ?? 100);
const seconds = Number(opts.seconds ?? 20);
const throughputRequests = 5000;

requireH2load();
const binary = gatewayBinary();
if ("missing" in binary) {
  process.stderr.write(`${binary.missing}\n`);
  process.exit(2);
}

const api = keylessApi;
// Custom auth without an ID extractor, so that the hook is called on every request.
const customAuth = { use_keyless: false, enable_coprocess_auth: true, custom_plugin_auth_enabled: true, auth: { auth_header_name: "Authorization" } };

interface Case {
  readonly name: string;
  readonly path: string;
  readonly hooks: number;
}
const cases: Case[] = [
  { name: "keyless, no plugin", path: "/none/get", hooks: 0 },
  { name: "keyless, one Pre hook (echo-log)", path: "/pre/get", hooks: 1 },
  { name: "custom auth only", path: "/auth/get", hooks: 1 },
  { name: "all five hook types (Pre, custom auth, PostKeyAuth, Post, Response)", path: "/all/get", hooks: 5 },
];

interface Run {
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

function load(url: string, mode: "latency" | "throughput"): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), "h2load-"));
  const logFile = join(dir, "requests.log");
  const requests = mode === "latency" ? rate * seconds : throughputRequests;
  const shape = mode === "latency" ? ["-c", "2", `--rps=${rate / 2}`] : ["-c", "4"];
  const args = ["--h1", "-n", String(requests), ...shape, "-t", "1", "-H", "Authorization: bench-key", `--log-file=${logFile}`, url];
  return new Promise((resolve, reject) => {
    execFile("h2load", args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      try {
        if (err) throw new Error(`h2load failed: ${err.message}\n${stdout}`);
        const succeeded = Number(/(\d+) succeeded/.exec(stdout)?.[1]);
        const status2xx = Number(/status codes: (\d+) 2xx/.exec(stdout)?.[1]);
        if (succeeded !== requests || status2xx !== requests) throw new Error(`${url}: ${status2xx} of ${requests} answered 2xx\n${stdout}`);
        const ms = readFileSync(logFile, "utf8")
          .trim()
          .split("\n")
          .map((l) => Number(l.split("\t")[2]) / 1000)
          .sort((a, b) => a - b);
        const pct = (p: number) => ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))]!;
        resolve({ reqPerSec: Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout)?.[1]), p50Ms: pct(50), p99Ms: pct(99) });
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "tyk-latency-"));
// The shipped config, with a key whose rate limit the load does not reach.
const shipped = JSON.parse(readFileSync(repoPath("config", "plugins.json"), "utf8")) as { pluginOptions: Record<string, { keys?: object }> };
shipped.pluginOptions["custom-auth"]!.keys = { ...shipped.pluginOptions["custom-auth"]!.keys, "bench-key": { rate: 1_000_000_000, per: 1 } };
writeFileSync(join(dir, "plugins.json"), JSON.stringify(shipped));
const redis = await startRedis();
const upstream = await startUpstream();
const port = await freePort();
// At log level warn (echo-log's line per call is info), so ready when health answers.
const plugins = spawn(
  process.execPath,
  [
    ...productionNodeArgs(),
    repoPath("dist", "src", "main.js"),
    "--config",
    join(dir, "plugins.json"),
    "--listen",
    `127.0.0.1:${port}`,
    "--log-level",
    "warn",
    "--users-store",
    "memory",
  ],
  {
    stdio: ["ignore", "ignore", "inherit"],
  },
);
for (let ready = false, deadline = Date.now() + 60_000; !ready; ) {
  ready = await rawGrpcCall(`http://127.0.0.1:${port}`, "/grpc.health.v1.Health/Check", grpcFrame(new Uint8Array())).then(
    (r) => r.trailers["grpc-status"] === "0",
    () => false,
  );
  if (!ready && Date.now() > deadline) throw new Error("the plugin server did not answer health checks within 60 s");
  if (!ready) await new Promise((r) => setTimeout(r, 100));
}
const target = `${upstream.url}/`;
const gateway = await startGateway(binary, {
  redisPort: redis.port,
  pluginTarget: `tcp://127.0.0.1:${port}`,
  apis: [
    api("none", target, {}),
    api("pre", target, { custom_middleware: { driver: "grpc", pre: [{ name: "anyHook" }] } }),
    api("auth", target, { ...customAuth, custom_middleware: { driver: "grpc", auth_check: { name: "customAuth" } } }),
    api("all", target, {
      ...customAuth,
      custom_middleware: {
        driver: "grpc",
        pre: [{ name: "injectHeaders" }],
        auth_check: { name: "customAuth" },
        post_key_auth: [{ name: "sessionMetadataHeaders" }],
        post: [{ name: "injectHeaders" }],
        response: [{ name: "rewriteResponse" }],
      },
    }),
  ],
});
try {
  const results = new Map<string, { latency: Run[]; throughput: Run[] }>(cases.map((c) => [c.name, { latency: [], throughput: [] }]));
  for (const c of cases) await load(gateway.baseUrl + c.path, "throughput"); // warm-up
  for (let i = 0; i < rounds; i++) {
    for (const c of cases) {
      const t = await load(gateway.baseUrl + c.path, "throughput");
      const l = await load(gateway.baseUrl + c.path, "latency");
      results.get(c.name)!.throughput.push(t);
      results.get(c.name)!.latency.push(l);
      process.stderr.write(
        `  ${c.name} run ${i + 1}: ${t.reqPerSec.toFixed(0)} req/s closed loop; at ${rate} req/s p50 ${l.p50Ms.toFixed(3)} ms, p99 ${l.p99Ms.toFixed(3)} ms\n`,
      );
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary = cases.map((c) => {
    const r = results.get(c.name)!;
    return {
      c,
      reqPerSec: median(r.throughput.map((x) => x.reqPerSec)),
      p50: median(r.latency.map((x) => x.p50Ms)),
      p99: median(r.latency.map((x) => x.p99Ms)),
    };
  });
  const base = summary[0]!;
  const lines = [
    `h2load --h1; req/s: closed loop, -c 4, ${throughputRequests} requests; latency: ${rate} req/s from 2 connections for ${seconds} s; medians of ${rounds} interleaved rounds; Node ${process.version}`,
    "",
    "| API | req/s (closed loop) | p50 ms at the fixed rate | p99 ms | p50 added vs no plugin, per hook (ms) |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...summary.map(
      (s) =>
        `| ${s.c.name} | ${s.reqPerSec.toFixed(0)} | ${s.p50.toFixed(3)} | ${s.p99.toFixed(3)} | ${s.c.hooks === 0 ? "" : ((s.p50 - base.p50) / s.c.hooks).toFixed(3)} |`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await gateway.stop();
  plugins.kill("SIGTERM");
  await once(plugins, "exit");
  await upstream.stop();
  await redis.stop();
}
