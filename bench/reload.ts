import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { HookType } from "../gen/coprocess_common_pb.js";
import { requestObject } from "../src/testing/gateway-model.js";
import { repoPath } from "../test/helpers/paths.js";
import { productionNodeArgs } from "../test/helpers/production-args.js";
import { startServerProcess } from "../test/helpers/server-process.js";
import { GatewayClient } from "../test/helpers/tyk-gateway.js";

// `pnpm bench:reload`: Dispatch under load while the plugin is edited and
// reloaded (--watch) again and again, against the same load without
// reloads, in alternating rounds on one server and one HTTP/2 connection.
// Every reply is checked: a call that fails, or a caller that sees an older
// version after a newer one, is counted. See bench/README.md.

const { values: opts } = parseArgs({
  options: { rounds: { type: "string" }, seconds: { type: "string" }, callers: { type: "string" }, every: { type: "string" } },
});
const rounds = Number(opts.rounds ?? 4);
const seconds = Number(opts.seconds ?? 5);
const callers = Number(opts.callers ?? 64);
const everyMs = Number(opts.every ?? 250);

const dir = mkdtempSync(join(tmpdir(), "bench-reload-"));
writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
const api = JSON.stringify(pathToFileURL(repoPath("dist", "src", "tyk", "plugin.js")).href);
writeFileSync(
  join(dir, "plugin.ts"),
  `import { definePlugin } from ${api};\nimport { version } from "./version.js";\nexport default definePlugin(() => ({ pre: { version: (req) => { req.setHeader("X-Version", String(version)); } } }));\n`,
);
const setVersion = (v: number) => writeFileSync(join(dir, "version.ts"), `export const version: number = ${v};\n`);
setVersion(0);

const server = await startServerProcess(["--plugin", join(dir, "plugin.ts"), "--watch", "--log-level", "info"], { nodeArgs: productionNodeArgs() });
const client = new GatewayClient(server.address);
const object = requestObject(HookType.Pre, "version", { method: "GET", url: "/get", headers: {} });
let version = 0;
await client.dispatch(object);
// The connection is watched from the client: READY throughout, or it was lost and made again.
const ready = 2; // grpc.connectivityState.READY
let connectionLost = 0;
const watch = setInterval(() => {
  if (client.channel().getConnectivityState(false) !== ready) connectionLost++;
}, 10);

async function round(reloading: boolean) {
  const until = Date.now() + seconds * 1000;
  const reloadsBefore = server.lines.filter((l) => l.msg === "plugins reloaded").length;
  const editor = reloading ? setInterval(() => setVersion(++version), everyMs) : undefined;
  let ok = 0;
  let failed = 0;
  let regressions = 0;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: callers }, async () => {
      let last = -1;
      while (Date.now() < until) {
        const started = performance.now();
        try {
          const reply = await client.dispatch(object);
          latencies.push(performance.now() - started);
          const seen = Number(reply.request?.setHeaders["X-Version"]);
          if (seen < last) regressions++;
          last = seen;
          ok++;
        } catch {
          failed++;
        }
      }
    }),
  );
  clearInterval(editor);
  // Let the last edit's reload land before the next round.
  await new Promise((r) => setTimeout(r, 500));
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]?.toFixed(2);
  const reloads = server.lines.filter((l) => l.msg === "plugins reloaded").length - reloadsBefore;
  return { reloading, reloads, ok, failed, regressions, perSecond: Math.round(ok / seconds), p50: at(0.5), p99: at(0.99), max: latencies.at(-1)?.toFixed(1) };
}

const results = [];
for (let i = 0; i < rounds; i++) {
  results.push(await round(i % 2 === 1));
  console.error(JSON.stringify(results.at(-1)));
}
clearInterval(watch);
client.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });

console.log(`| round | reloads | calls ok | failed | older version seen | calls/s | p50 ms | p99 ms | max ms |`);
console.log(`|---|---|---|---|---|---|---|---|---|`);
results.forEach((r, i) =>
  console.log(
    `| ${i + 1} ${r.reloading ? "reloading" : "steady"} | ${r.reloads} | ${r.ok} | ${r.failed} | ${r.regressions} | ${r.perSecond} | ${r.p50} | ${r.p99} | ${r.max} |`,
  ),
);
console.log(`\nthe client's connection was seen not READY ${connectionLost} times (sampled every 10 ms)`);
const lost = results.reduce((n, r) => n + r.failed + r.regressions, 0);
if (lost > 0 || connectionLost > 0) {
  console.error(`reload lost calls or the connection: ${lost} failed or regressed`);
  process.exit(1);
}
