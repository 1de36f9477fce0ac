import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { requestObject, responseObject } from "../../src/testing/gateway-model.js";
import { freePort } from "../helpers/free-port.js";
import { repoPath } from "../helpers/paths.js";
import { followLog } from "../helpers/server-process.js";
import { GatewayClient } from "../helpers/tyk-gateway.js";

// A plugin project outside this repository, as a team has one: the example
// in examples/plugin-project, copied out, depending on this package as the
// tarball `pnpm pack` makes, installed with pnpm, type-checked, its own
// tests run (node:test and vitest, through the gateway simulator), and the
// server started from the package's bin with its TypeScript plugins.

let work: string;
let project: string;

/** Runs a command to completion; fails the test with its output if it does not exit 0. */
function run(command: string, args: readonly string[], cwd: string, timeoutMs = 300_000): string {
  // (Without NODE_TEST_CONTEXT: a `node --test` started from a test would run nothing.)
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: timeoutMs, env: { ...env, CI: "true", NO_COLOR: "1" } });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  assert.equal(result.status, 0, `${command} ${args.join(" ")} in ${cwd} exited ${result.status} (${result.signal ?? "no signal"}):\n${output.slice(-6000)}`);
  return output;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), "tyk-grpc-ts-package-"));
  // The package is packed from a copy, so that its build (prepack) does not
  // rewrite the dist/ the other tests run from.
  const copy = join(work, "tyk-grpc-ts");
  mkdirSync(copy);
  for (const file of ["package.json", "tsconfig.json", "tsconfig.build.json", "README.md"]) cpSync(repoPath(file), join(copy, file));
  for (const dir of ["src", "gen", "config"]) cpSync(repoPath(dir), join(copy, dir), { recursive: true });
  mkdirSync(join(copy, "docs"));
  cpSync(repoPath("docs", "plugins.md"), join(copy, "docs", "plugins.md"));
  symlinkSync(repoPath("node_modules"), join(copy, "node_modules"));
  run("pnpm", ["pack", "--pack-destination", work], copy);
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "pnpm pack made a tarball");

  project = join(work, "plugin-project");
  cpSync(repoPath("examples", "plugin-project"), project, { recursive: true, filter: (src) => !/node_modules|pnpm-lock/.test(src) });
  const pkg = JSON.parse(readFileSync(join(project, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  pkg.dependencies["tyk-grpc-ts"] = `file:${join(work, tarball)}`;
  writeFileSync(join(project, "package.json"), JSON.stringify(pkg, null, 2));
  run("pnpm", ["install", "--prefer-offline"], project);
});
after(() => rmSync(work, { recursive: true, force: true }));

describe("a plugin project of its own, on the packed package", () => {
  it("the package holds the plugin API and testing kit with their types, and the bin", () => {
    const installed = join(project, "node_modules", "tyk-grpc-ts");
    for (const file of ["dist/src/tyk/plugin.d.ts", "dist/src/testing/index.d.ts", "dist/src/main.js"]) {
      assert.ok(readFileSync(join(installed, file)).length > 0, file);
    }
    assert.equal(readdirSync(join(installed, "dist")).includes("test"), false, "no tests in the package");
  });

  it("type-checks (tsc --noEmit: the schemas' types reach init.options and ctx.config)", () => {
    run("pnpm", ["typecheck"], project);
  });

  it("its tests pass under node:test and under vitest, through the gateway simulator", () => {
    // (TAP on Node 20, the spec reporter on Node 24.)
    assert.match(run("pnpm", ["test"], project), /[#ℹ] pass 4\b[\s\S]*[#ℹ] fail 0/);
    assert.match(run("pnpm", ["test:vitest"], project), /Tests\s+2 passed/);
  });

  it("the bin serves its TypeScript plugins (no build step): custom auth and the Response hook over gRPC", async () => {
    const port = await freePort();
    const server = spawn(
      join(project, "node_modules", ".bin", "tyk-grpc-ts"),
      ["--config", "config.json", "--listen", `127.0.0.1:${port}`, "--users-store", "memory", "--log-level", "info"],
      { cwd: project, stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = once(server, "exit");
    const log = followLog(server);
    const client = new GatewayClient(`127.0.0.1:${port}`);
    try {
      await log.waitForLog((l) => l.msg === "server listening", 60_000);
      // The shim execs node with the shebang's options: the production heap settings of `pnpm serve`.
      const cmdline = readFileSync(`/proc/${server.pid}/cmdline`, "utf8").split("\0");
      assert.deepEqual(cmdline.slice(1, 3), ["--max-semi-space-size=8", "--heap-growing-percent=100"]);
      const auth = await client.dispatch(
        requestObject(
          HookType.CustomKeyCheck,
          "apiKeyAuth",
          { method: "GET", url: "/orders/list", headers: { "X-Api-Key": "team-b-key" } },
          { apiId: "orders" },
        ),
      );
      assert.equal(auth.session?.metadata.owner, "team-b");
      assert.equal(auth.session?.rate, 5);
      assert.equal(auth.session?.quotaMax, 1000n);
      assert.equal(auth.metadata.token, "team-b-key");
      const response = await client.dispatch(
        responseObject(
          "securityHeaders",
          { method: "GET", url: "/orders/list", headers: {} },
          { status: 200, headers: { "Content-Type": ["application/json"] }, body: "{}" },
          { apiId: "orders", configData: { securityHeaders: { cacheControl: "no-store" } } },
        ),
      );
      assert.equal(response.response?.headers["X-Frame-Options"], "DENY");
      assert.equal(response.response?.headers["Cache-Control"], "no-store");
    } finally {
      client.close();
      server.kill("SIGTERM");
    }
    const [code] = await exited;
    assert.equal(code, 0, "the server drained and exited 0 on SIGTERM");
  });
});
