import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parseConfig } from "../../src/config/config.js";
import { formatListenAddress } from "../../src/transport/listen-address.js";
import { loadPlugins } from "../../src/tyk/load-plugins.js";
import type { HookKind, PluginRegistry } from "../../src/tyk/registry.js";
import { silentLogger } from "../helpers/loggers.js";
import { repoPath } from "../helpers/paths.js";

// The Tyk configuration shipped in config/: valid JSON of the documented
// shape, pointing at where config/plugins.json listens, and naming only hooks
// and event handlers that the plugins it loads register.

const json = (path: string) => JSON.parse(readFileSync(repoPath(path), "utf8")) as Record<string, any>;

async function shippedRegistry(): Promise<{ registry: PluginRegistry; listen: string[] }> {
  const config = parseConfig(["--config", repoPath("config", "plugins.json")], {})!;
  const registry = await loadPlugins(config.plugins, config.pluginOptions, silentLogger());
  return { registry, listen: config.listen.map(formatListenAddress) };
}

function assertRegistered(registry: PluginRegistry, kind: HookKind, names: string[]) {
  assert.ok(names.length > 0, `the definition names ${kind} hooks`);
  for (const name of names) {
    assert.ok(registry.has(kind, name), `${kind} hook "${name}" is registered by config/plugins.json`);
  }
}

describe("shipped Tyk configuration (config/)", () => {
  it("Classic API definition: grpc driver, every hook type, ID extractor, cp_dynamic_handler events", async () => {
    const { registry } = await shippedRegistry();
    const api = json("config/tyk/api-classic.json");
    assert.equal(typeof api.api_id, "string");
    assert.equal(api.use_keyless, false);
    assert.equal(api.enable_coprocess_auth, true);
    assert.equal(typeof api.proxy.listen_path, "string");
    const mw = api.custom_middleware;
    assert.equal(mw.driver, "grpc");
    const names = (list: Array<{ name: string }>) => list.map((h) => h.name);
    assertRegistered(registry, "pre", names(mw.pre));
    assertRegistered(registry, "postKeyAuth", names(mw.post_key_auth));
    assertRegistered(registry, "post", names(mw.post));
    assertRegistered(registry, "response", names(mw.response));
    assertRegistered(registry, "auth", [mw.auth_check.name]);
    assert.deepEqual(Object.keys(mw.id_extractor).sort(), ["extract_from", "extract_with", "extractor_config"]);
    const handlers = Object.values(api.event_handlers.events as Record<string, Array<{ handler_name: string; handler_meta: { name: string } }>>).flat();
    assert.ok(handlers.length > 0);
    for (const h of handlers) {
      assert.equal(h.handler_name, "cp_dynamic_handler");
      assert.ok(registry.handler(h.handler_meta.name), `event handler "${h.handler_meta.name}" is registered`);
    }
  });

  it("Tyk OAS API definition: x-tyk-api-gateway with grpc plugins and custom authentication", async () => {
    const { registry } = await shippedRegistry();
    const api = json("config/tyk/api-oas.json");
    assert.match(api.openapi, /^3\./);
    const x = api["x-tyk-api-gateway"];
    assert.equal(typeof x.info.name, "string");
    // The gateway stores an OAS API as <id>.json and <id>-oas.json, and when it reloads from disk
    // it skips every file ending in "-oas.json" as a companion: an id ending in "-oas" is never
    // loaded again (found against the real gateway, v5.14.0).
    assert.doesNotMatch(x.info.id, /-oas$/);
    assert.equal(x.info.state.active, true);
    assert.equal(typeof x.upstream.url, "string");
    assert.equal(typeof x.server.listenPath.value, "string");
    const auth = x.server.authentication;
    assert.equal(auth.enabled, true);
    assert.equal(auth.custom.enabled, true);
    assert.equal(auth.custom.config.enabled, true);
    assertRegistered(registry, "auth", [auth.custom.config.functionName]);
    assert.deepEqual(Object.keys(auth.custom.config.idExtractor).sort(), ["config", "enabled", "source", "with"]);
    const g = x.middleware.global;
    assert.equal(g.pluginConfig.driver, "grpc");
    const names = (list: Array<{ enabled: boolean; functionName: string }>) => {
      list.forEach((p) => assert.equal(p.enabled, true));
      return list.map((p) => p.functionName);
    };
    assertRegistered(registry, "pre", names(g.prePlugins));
    assertRegistered(registry, "postKeyAuth", names(g.postAuthenticationPlugins));
    assertRegistered(registry, "post", names(g.postPlugins));
    assertRegistered(registry, "response", names(g.responsePlugins));
  });

  it("tyk.conf snippets and env form point at where config/plugins.json listens", async () => {
    const { listen } = await shippedRegistry();
    const tcp = json("config/tyk/tyk.tcp.conf").coprocess_options;
    const unix = json("config/tyk/tyk.unix.conf").coprocess_options;
    for (const c of [tcp, unix]) {
      assert.equal(c.enable_coprocess, true);
      assert.equal(c.grpc_authority, "localhost", "set for gateways <= 5.8.2");
      assert.ok(c.grpc_recv_max_size >= 64 * 1024 * 1024 && c.grpc_send_max_size >= 64 * 1024 * 1024);
    }
    const port = (a: string) => a.slice(a.lastIndexOf(":") + 1);
    assert.ok(
      listen.some((a) => a.startsWith("[") && port(a) === port(tcp.coprocess_grpc_server)),
      `${tcp.coprocess_grpc_server} vs ${listen}`,
    );
    assert.ok(listen.includes(unix.coprocess_grpc_server), `${unix.coprocess_grpc_server} vs ${listen}`);

    const env = Object.fromEntries(
      readFileSync(repoPath("config", "tyk", "tyk.env"), "utf8")
        .split("\n")
        .filter((l) => /^[A-Z]/.test(l))
        .map((l) => l.split("=", 2) as [string, string]),
    );
    assert.deepEqual(env, {
      TYK_GW_COPROCESSOPTIONS_ENABLECOPROCESS: "true",
      TYK_GW_COPROCESSOPTIONS_COPROCESSGRPCSERVER: tcp.coprocess_grpc_server,
      TYK_GW_COPROCESSOPTIONS_GRPCAUTHORITY: tcp.grpc_authority,
      TYK_GW_COPROCESSOPTIONS_GRPCRECVMAXSIZE: String(tcp.grpc_recv_max_size),
      TYK_GW_COPROCESSOPTIONS_GRPCSENDMAXSIZE: String(tcp.grpc_send_max_size),
    });
  });

  it("an unknown plugin name fails with the list of built-in plugins", async () => {
    await assert.rejects(loadPlugins(["no-such-plugin"], {}, silentLogger()), (e: Error) => {
      assert.match(e.message, /unknown plugin "no-such-plugin"/);
      assert.match(e.message, /custom-auth, echo-log, header-injection, response-rewrite, return-overrides/);
      return true;
    });
  });
});
