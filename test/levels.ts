import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { repoPath } from "./helpers/paths.js";

// `pnpm test`: runs the suite one level at a time, from the cheapest to the
// one with the most moving parts, and ends with which levels failed:
//   unit        functions and classes, no sockets
//   in-process  the server built by createApp (or a router) in the test's own process, over real sockets
//   process     the server process (node dist/src/main.js) and what it does over the wire
//   e2e         real clients, tools and gateways: Tyk Gateway, grpcurl, buf curl, grpcio, grpc-js, pnpm, the image's stages
// `pnpm test unit process` runs only those levels.

const levels = ["unit", "in-process", "process", "e2e"] as const;
type Level = (typeof levels)[number];

const { positionals } = parseArgs({ allowPositionals: true });
const chosen = positionals.length === 0 ? [...levels] : positionals;
const unknown = chosen.filter((l) => !(levels as readonly string[]).includes(l));
if (unknown.length > 0) {
  process.stderr.write(`unknown test level ${unknown.join(", ")}: expected ${levels.join(", ")}\n`);
  process.exit(2);
}

const results: { level: Level; code: number | null; seconds: number }[] = [];
for (const level of chosen as Level[]) {
  const dir = repoPath("dist", "test", level);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".test.js"))
    .sort()
    .map((f) => join(dir, f));
  process.stdout.write(`\n=== ${level} tests (${files.length} files) ===\n`);
  const started = Date.now();
  // Each level gets node's own runner; the process-level tests start servers that need the time.
  const run = spawnSync(process.execPath, ["--test", "--test-timeout=120000", ...files], { stdio: "inherit", cwd: repoPath() });
  results.push({ level, code: run.status, seconds: Math.round((Date.now() - started) / 1000) });
}

process.stdout.write("\n=== test levels ===\n");
for (const r of results) {
  process.stdout.write(`${r.code === 0 ? "pass" : "FAIL"}  ${r.level.padEnd(10)} ${r.seconds} s\n`);
}
const failed = results.filter((r) => r.code !== 0).map((r) => r.level);
if (failed.length > 0) {
  process.stdout.write(`failed: ${failed.join(", ")}\n`);
  process.exit(1);
}
