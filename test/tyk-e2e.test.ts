import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoPath } from "./helpers/paths.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { freePort, gatewayBinary, gatewayRequest, startGateway, startRedis, startUpstream, type Gateway } from "./helpers/tyk-real-gateway.js";

// The real Tyk Gateway in front of this project's server: real HTTP requests
// to the gateway, real processes (Redis, the gateway, an upstream written
// here that records what reaches it, the plugin server started from the
// shipped config as users start it). Needs a gateway binary
// (TYK_GATEWAY_BIN); skipped without one, except under `pnpm test:tyk`
// (TYK_E2E=required), where a missing binary fails. CI has no gateway: the
// behaviours found here are also pinned against the model of the gateway
// (test/tyk-gateway-contract.test.ts).

const binary = gatewayBinary();
const missing = "missing" in binary ? binary.missing : undefined;
if (missing !== undefined && process.env.TYK_E2E === "required") {
  throw new Error(`pnpm test:tyk needs a gateway: ${missing}`);
}
const gw = binary as { bin: string; templates: string };

/** The shipped plugin config with the test keys and plugins added (it listens where the test's --listen says). */
function pluginConfig(dir: string): string {
  const shipped = JSON.parse(readFileSync(repoPath("config", "plugins.json"), "utf8")) as {
    plugins: string[];
    pluginOptions: Record<string, Record<string, unknown>>;
  };
  const options = shipped.pluginOptions;
  options["custom-auth"]!["keys"] = {
    ...(options["custom-auth"]!["keys"] as object),
    "quota-key": { quotaMax: 2, quotaRenewalRate: 3600, metadata: { team: "quota" } },
    "rate-key": { rate: 2, per: 60, metadata: { team: "rate" } },
  };
  options["header-injection"]!["sessionMetadata"] = ["team", "testkey", "testkey2"];
  const config = { ...shipped, plugins: [...shipped.plugins, repoPath("dist", "test", "fixtures", "tyk-test-plugins.js")] };
  const path = join(dir, "plugins.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

const versions = { not_versioned: true, versions: { Default: { name: "Default" } } };

/** A keyless Classic API on `listenPath` with these custom_middleware hooks. */
function keyless(id: string, target: string, middleware: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name: id,
    api_id: id,
    org_id: "default",
    active: true,
    use_keyless: true,
    proxy: { listen_path: `/${id}/`, target_url: target, strip_listen_path: true },
    version_data: versions,
    custom_middleware: { driver: "grpc", ...middleware },
    ...extra,
  };
}

/** The shipped Tyk OAS API definition with only the upstream target rewritten. */
function oasDefinition(upstream: string): object {
  const oas = JSON.parse(readFileSync(repoPath("config", "tyk", "api-oas.json"), "utf8")) as { "x-tyk-api-gateway": { upstream: { url: string } } };
  oas["x-tyk-api-gateway"].upstream.url = `${upstream}/`;
  return oas;
}

/** The shipped Classic API definition with only the upstream target rewritten, and the ones the cases need. */
function apiDefinitions(upstream: string): object[] {
  const classic = JSON.parse(readFileSync(repoPath("config", "tyk", "api-classic.json"), "utf8")) as { proxy: { target_url: string } };
  classic.proxy.target_url = `${upstream}/`;
  return [
    classic,
    // The Tyk article's flow: a keyless API with one Pre hook (echo-log answers every name).
    keyless("article", `${upstream}/`, { pre: [{ name: "MyPreCustomPluginForBasicAuth" }] }),
    // Tyk's 'Pre Hook with SetHeaders'.
    keyless("inject", `${upstream}/`, { pre: [{ name: "injectHeaders" }] }),
    // Tyk's 'Post Hook with metadata': keys created through the Gateway API, with nested metadata.
    {
      ...keyless("meta", `${upstream}/`, { post_key_auth: [{ name: "sessionMetadataHeaders", require_session: true }], post: [{ name: "testPostHook1", require_session: true }] }),
      use_keyless: false,
      auth: { auth_header_name: "Authorization" },
    },
  ];
}

/** The value of a Prometheus counter of the plugin server's /metrics whose labels include all of `labels`. */
async function counter(plugins: ServerProcess, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${plugins.httpBaseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(" ").at(-1));
  }
  return total;
}

const transports = ["tcp", "unix"] as const;

for (const transport of transports) {
  describe(`the real Tyk Gateway, plugin server over ${transport}`, { skip: missing }, () => {
    let dir: string;
    let redis: Awaited<ReturnType<typeof startRedis>>;
    let upstream: Awaited<ReturnType<typeof startUpstream>>;
    let plugins: ServerProcess;
    let gateway: Gateway;
    const request = (path: string, init?: Parameters<typeof gatewayRequest>[2]) => gatewayRequest(gateway.baseUrl, path, init);

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "tyk-e2e-"));
      redis = await startRedis();
      upstream = await startUpstream();
      const listen = transport === "tcp" ? `127.0.0.1:${await freePort()}` : `unix://${join(dir, "plugins.sock")}`;
      plugins = await startServerProcess(["--config", pluginConfig(dir), "--listen", listen, "--http-listen", "127.0.0.1:0", "--log-objects", "--log-level", "info"]);
      const pluginTarget = transport === "tcp" ? `tcp://${listen}` : listen;
      gateway = await startGateway(gw, {
        redisPort: redis.port,
        pluginTarget,
        apis: apiDefinitions(upstream.url),
        oasApis: [oasDefinition(upstream.url)],
        coprocess: { grpc_recv_max_size: 64 * 2 ** 20, grpc_send_max_size: 64 * 2 ** 20 },
      });
    });
    after(async () => {
      await gateway?.stop();
      assert.equal(await plugins?.stop(), 0);
      await upstream?.stop();
      await redis?.stop();
    });

    it("the Tyk article's flow: a keyless API's Pre hook sees the request, the upstream gets it unchanged, the server logs the Object", async () => {
      const res = await request("/article/get?name=tyk", { headers: { "X-Custom": "kept", Authorization: "Basic dGVzdDp0ZXN0" } });
      assert.equal(res.status, 200, res.text);
      const seen = upstream.last("/get")!;
      assert.equal(seen.url, "/get?name=tyk");
      assert.equal(seen.headers["x-custom"], "kept");
      assert.equal(seen.headers["authorization"], "Basic dGVzdDp0ZXN0");
      const logged = await plugins.waitForLog((l) => l.msg === "dispatch object" && (l["object"] as { hookName?: string })?.hookName === "MyPreCustomPluginForBasicAuth");
      const object = logged["object"] as { hookType: string; request: { url: string; headers: Record<string, string> }; spec: Record<string, string> };
      assert.equal(object.hookType, "Pre");
      assert.equal(object.request.url, "/article/get?name=tyk");
      assert.equal(object.request.headers["X-Custom"], "kept");
      assert.equal(object.request.headers["Authorization"], "[redacted]");
      assert.equal(object.spec["APIID"], "article");
    });

    it("header injection ('Pre Hook with SetHeaders'): the upstream sees the plugin's header", async () => {
      const res = await request("/inject/anything");
      assert.equal(res.status, 200, res.text);
      assert.equal(upstream.last("/anything")!.headers["x-tyk-plugin"], "tyk-grpc-ts");
    });

    for (const [flavour, path] of [["Classic", "/grpc-ts-classic"], ["OAS", "/grpc-ts-oas"]] as const) {
      it(`custom auth (${flavour}, the shipped API definition): 200 with a good key, through every hook; 403 with a bad or missing one`, async () => {
        const ok = await request(`${path}/get`, { headers: { Authorization: "demo-key-change-me" } });
        assert.equal(ok.status, 200, ok.text);
        const seen = upstream.last("/get")!;
        assert.equal(seen.headers["x-tyk-plugin"], "tyk-grpc-ts", "Pre and Post injectHeaders");
        assert.equal(seen.headers["x-tyk-meta-team"], "demo", "PostKeyAuth copies the session's metadata");
        assert.equal(ok.headers["x-served-through"], "tyk-grpc-ts", "the Response hook ran");
        assert.equal(ok.headers["x-api-flavour"], flavour.toLowerCase(), "config_data reached the Response hook");
        for (const headers of [{ Authorization: "not-a-key" }, {}]) {
          const refused = await request(`${path}/get`, { headers });
          assert.equal(refused.status, headers.Authorization ? 403 : 400, refused.text);
        }
      });
    }

    it("custom auth: the session's quota and rate limit are enforced by the gateway; the ID extractor's cache spares the auth hook", async () => {
      const calls = () => counter(plugins, "tyk_hook_calls_total", { hook_name: "customAuth", outcome: "allow" });
      const before = await calls();
      // quota-key: 2 requests per hour.
      const quota = [];
      for (let i = 0; i < 3; i++) quota.push((await request("/grpc-ts-classic/get", { headers: { Authorization: "quota-key" } })).status);
      assert.deepEqual(quota, [200, 200, 403]);
      // The session came from the hook once; the gateway reused it for the next calls (ttlSeconds 60).
      assert.equal((await calls()) - before, 1);
      // rate-key: 2 requests per minute.
      const rate = [];
      for (let i = 0; i < 3; i++) rate.push((await request("/grpc-ts-classic/get", { headers: { Authorization: "rate-key" } })).status);
      assert.deepEqual(rate, [200, 200, 429]);
    });

    it("post-key-auth and Post hooks see a gateway key's nested metadata JSON-encoded ('Post Hook with metadata')", async () => {
      const created = await fetch(`${gateway.baseUrl}/tyk/keys/create`, {
        method: "POST",
        headers: { "x-tyk-authorization": gateway.secret, "content-type": "application/json" },
        body: JSON.stringify({
          org_id: "default",
          rate: 100,
          per: 1,
          quota_max: -1,
          access_rights: { meta: { api_id: "meta", api_name: "meta", versions: ["Default"] } },
          meta_data: { testkey: { nestedkey: "nestedvalue" }, testkey2: "testvalue" },
        }),
      });
      assert.equal(created.status, 200);
      const { key } = (await created.json()) as { key: string };
      // testPostHook1 answers 400 unless session.metadata.testkey is that JSON and Object.metadata equals it.
      const res = await request("/meta/get", { headers: { Authorization: key } });
      assert.equal(res.status, 200, res.text);
      const seen = upstream.last("/get")!;
      assert.deepEqual(JSON.parse(String(seen.headers["x-tyk-meta-testkey"])), { nestedkey: "nestedvalue" });
      assert.equal(seen.headers["x-tyk-meta-testkey2"], "testvalue");
    });

    it("events: an AuthFailure reaches the API's cp_dynamic_handler through DispatchEvent", async () => {
      const res = await request("/grpc-ts-classic/get", { headers: { Authorization: "wrong-key-for-the-event" } });
      assert.equal(res.status, 403);
      const line = await plugins.waitForLog((l) => l.msg === "tyk event" && l["eventType"] === "AuthFailure");
      assert.equal(line["apiId"], "tyk-grpc-ts-classic");
      const received = await plugins.waitForLog((l) => l.msg === "received event" && (l["event"] as { message?: { Type?: string } })?.message?.Type === "AuthFailure");
      assert.equal((received["event"] as { message: { Meta: { Key: string } } }).message.Meta.Key, "[redacted]");
    });
  });
}
