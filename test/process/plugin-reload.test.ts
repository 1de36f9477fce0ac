import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { requestObject } from "../../src/testing/gateway-model.js";
import { repoPath } from "../helpers/paths.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";
import { GatewayClient } from "../helpers/tyk-gateway.js";

// Plugins given by path are reloaded into the running server (--watch, or
// SIGHUP) without touching the gateway's connection: calls in flight finish
// on the old plugins, new calls get the new ones, and a plugin that fails
// to reload leaves the old one serving. The plugin here is TypeScript,
// loaded without a build step, as a team's own plugin repository has it.

const pluginApi = pathToFileURL(repoPath("dist", "src", "tyk", "plugin.js")).href;

/** A plugin folder: `version.ts` holds the version the Pre hook `version` sets as X-Version. */
function pluginFolder(): { dir: string; plugin: string; setVersion(v: string): void; write(name: string, text: string): void } {
  const dir = mkdtempSync(join(tmpdir(), "plugin-reload-"));
  const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
  write("package.json", JSON.stringify({ type: "module" }));
  write(
    "reload.ts",
    `import { definePlugin, type RequestHook } from ${JSON.stringify(pluginApi)};
import { version } from "./version.js";

export default definePlugin(({ logger }) => {
  // Asynchronous, so that calls are in flight when a reload happens.
  const hook: RequestHook = async (req) => {
    await new Promise((r) => setTimeout(r, 2));
    req.setHeader("X-Version", version);
  };
  return { pre: { version: hook }, close: () => logger.info({ version }, "plugin closed") };
});
`,
  );
  const setVersion = (v: string) => write("version.ts", `export const version: string = ${JSON.stringify(v)};\n`);
  setVersion("v1");
  return { dir, plugin: join(dir, "reload.ts"), setVersion, write };
}

const call = (client: GatewayClient) =>
  client.dispatch(requestObject(HookType.Pre, "version", { method: "GET", url: "/get", headers: {} })).then((reply) => reply.request!.setHeaders["X-Version"]);

describe("plugin reload", () => {
  let folder: ReturnType<typeof pluginFolder>;
  let server: ServerProcess;
  let client: GatewayClient;

  before(async () => {
    folder = pluginFolder();
    server = await startServerProcess(["--plugin", folder.plugin, "--watch"]);
    client = new GatewayClient(server.address);
  });
  after(async () => {
    client?.close();
    assert.equal(await server?.stop(), 0);
  });

  it("--watch: each edit is reloaded under load; no call fails, a caller never sees an older version, the connection stays", async (t) => {
    assert.equal(await call(client), "v1");
    const versions = ["v2", "v3", "v4", "v5", "v6"];
    let reloading = true;
    let calls = 0;
    const failures: unknown[] = [];
    const callers = Array.from({ length: 16 }, async () => {
      const seen: string[] = [];
      while (reloading) {
        try {
          seen.push((await call(client))!);
          calls++;
        } catch (e) {
          failures.push(e);
        }
      }
      return seen;
    });
    for (const [i, v] of versions.entries()) {
      folder.setVersion(v);
      await server.waitForLog((l) => l.msg === "plugins reloaded" && l.generation === i + 1, 30_000);
      await server.waitForLog((l) => l.msg === "plugin closed" && l.version === (i === 0 ? "v1" : versions[i - 1]), 30_000);
    }
    assert.equal(await call(client), "v6");
    reloading = false;
    const seenByCaller = await Promise.all(callers);
    assert.deepEqual(failures, []);
    assert.ok(calls > 0);
    const order = ["v1", ...versions];
    for (const seen of seenByCaller) {
      const ranks = seen.map((v) => order.indexOf(v));
      assert.ok(
        ranks.every((r, i) => r >= 0 && (i === 0 || r >= ranks[i - 1]!)),
        `one caller's versions, in order: ${seen.join(",")}`,
      );
    }
    const accepted = server.lines.filter((l) => l.msg === "connection accepted").length;
    assert.equal(accepted, 1, "the client kept its one HTTP/2 connection through every reload");
    t.diagnostic(`${calls} calls from 16 callers through ${versions.length} reloads: ${failures.length} failed`);
  });

  it("a plugin that fails to reload keeps the old one serving, and the log says where (SIGHUP)", async () => {
    const before = await call(client);
    const reloaded = () => server.lines.filter((l) => l.msg === "plugins reloaded").length;
    const reloadedBefore = reloaded();
    folder.write("version.ts", 'export const version: string = "broken" +;\n');
    const failed = await server.waitForLog((l) => l.msg === "plugin reload failed: the old plugins stay", 30_000);
    assert.match(String((failed.err as { message?: string }).message), /reload\.ts" failed to load at .*version\.ts:1:\d+: SyntaxError: Unexpected ";"$/);
    assert.equal(await call(client), before);
    folder.setVersion("v7");
    await server.waitForLog(() => reloaded() > reloadedBefore, 30_000);
    assert.equal(await call(client), "v7");
    // SIGHUP reloads too (and says so); the version is unchanged, the call still answers.
    const reloads = reloaded();
    server.child.kill("SIGHUP");
    await server.waitForLog(() => reloaded() > reloads, 30_000);
    assert.equal(await call(client), "v7");
  });
});

describe("a plugin that fails to load stops the server at start, with the file, line and reason", () => {
  const start = (plugin: string) => {
    const run = spawnSync(process.execPath, [repoPath("dist", "src", "main.js"), "--listen", "127.0.0.1:0", "--users-store", "memory", "--plugin", plugin], {
      encoding: "utf8",
      timeout: 60_000,
    });
    const fatal = run.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } })
      .find((l) => l.level === 60);
    return { status: run.status, fatal };
  };

  it("a TypeScript syntax error", () => {
    const folder = pluginFolder();
    folder.write("bad.ts", `import { definePlugin } from ${JSON.stringify(pluginApi)};\nexport default definePlugin(() => ({ pre: { x( } }));\n`);
    const { status, fatal } = start(join(folder.dir, "bad.ts"));
    assert.equal(status, 1);
    assert.equal(fatal?.msg, "cannot load plugins");
    assert.match(fatal!.err!.message, /bad\.ts" failed to load at .*bad\.ts:2:\d+/);
  });

  it("a throw in setup: the TypeScript line, source-mapped", () => {
    const folder = pluginFolder();
    folder.write(
      "throws.ts",
      `import { definePlugin } from ${JSON.stringify(pluginApi)};\ninterface Options { keys?: string[] }\nexport default definePlugin<Options | undefined>(({ options }) => {\n  if (!options?.keys) throw new Error("no keys configured");\n  return {};\n});\n`,
    );
    const { status, fatal } = start(join(folder.dir, "throws.ts"));
    assert.equal(status, 1);
    assert.match(fatal!.err!.message, /throws\.ts" failed in setup at .*throws\.ts:4:\d+: no keys configured$/);
  });

  it("an import that is not there: the plugin is found, the missing module named", () => {
    const folder = pluginFolder();
    folder.write(
      "needs.ts",
      `import { definePlugin } from ${JSON.stringify(pluginApi)};\nimport { x } from "./missing-helper.js";\nexport default definePlugin(() => ({ pre: { x } }));\n`,
    );
    const { status, fatal } = start(join(folder.dir, "needs.ts"));
    assert.equal(status, 1);
    assert.match(fatal!.err!.message, /needs\.ts" failed to load.*missing-helper/);
  });

  it("a JavaScript syntax error", () => {
    const folder = pluginFolder();
    folder.write("bad.js", "export default () => ({ pre: { x( } });\n");
    const { status, fatal } = start(join(folder.dir, "bad.js"));
    assert.equal(status, 1);
    assert.match(fatal!.err!.message, /bad\.js" failed to load at .*bad\.js:1: SyntaxError/);
  });
});
