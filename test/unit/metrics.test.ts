import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { createMetrics, type HookMetricOutcome } from "../../src/observability/metrics.js";
import { definePlugin, reject } from "../../src/tyk/plugin.js";
import { PluginHost } from "../../src/tyk/plugin-host.js";
import { PluginRegistry } from "../../src/tyk/registry.js";
import { silentLogger } from "../helpers/loggers.js";

// Hook outcome counting: bounded labels whatever names callers send.

describe("hook metrics", () => {
  it("hooks are counted under their registered name ('*' for a catch-all), unknown ones under ''", async () => {
    const logger = silentLogger();
    const registry = new PluginRegistry();
    const plugin = await definePlugin(() => ({ name: "t", pre: { "*": () => undefined, strict: () => reject(403, "no") } })).setup({
      options: undefined,
      logger,
    });
    registry.add("t", plugin, logger);
    const seen: Array<[string, string, HookMetricOutcome]> = [];
    const host = new PluginHost(registry, { logger, timeoutMs: 1000, onHookDone: (...args) => seen.push(args) });
    const call = { signal: new AbortController().signal };
    for (const hookName of ["a", "b", "strict"]) {
      await host.dispatch(create(ObjectSchema, { hookType: HookType.Pre, hookName, request: { url: "/" } }), call);
    }
    await host.dispatch(create(ObjectSchema, { hookType: HookType.Post, hookName: "whatever", request: { url: "/" } }), call);
    assert.deepEqual(seen, [
      ["Pre", "*", "continue"],
      ["Pre", "*", "continue"],
      ["Pre", "strict", "reject"],
      ["Post", "whatever", "no_plugin"],
    ]);

    const metrics = createMetrics({ worker: "7" });
    seen.forEach(([type, name, outcome]) => metrics.hookDone(type, name, outcome));
    const text = await metrics.registry.metrics();
    assert.match(text, /^tyk_hook_calls_total\{hook_type="Pre",hook_name="\*",outcome="continue",worker="7"\} 2$/m);
    assert.match(text, /^tyk_hook_calls_total\{hook_type="Post",hook_name="",outcome="no_plugin",worker="7"\} 1$/m);
  });
});
