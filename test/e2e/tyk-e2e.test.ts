import { strict as assert } from "node:assert";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { errorPage } from "../../src/testing/gateway-model.js";
import { freePort } from "../helpers/free-port.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";
import { apiDefinitions, keyless, oasDefinition, pluginConfig } from "../helpers/tyk-e2e-setup.js";
import { type Gateway, gatewayBinary, gatewayRequest, startGateway, startRedis, startUpstream } from "../helpers/tyk-real-gateway.js";

// The real Tyk Gateway in front of this project's server: real HTTP requests
// to the gateway, real processes (Redis, the gateway, an upstream written
// here that records what reaches it, the plugin server started from the
// shipped config as users start it). Needs a gateway binary
// (TYK_GATEWAY_BIN); skipped without one, except under `pnpm test:tyk`
// (TYK_E2E=required), where a missing binary fails. CI has no gateway: the
// behaviours found here are also pinned against the model of the gateway
// (test/e2e/tyk-gateway-contract.test.ts).

const binary = gatewayBinary();
const missing = "missing" in binary ? binary.missing : undefined;
if (missing !== undefined && process.env.TYK_E2E === "required") {
  throw new Error(`pnpm test:tyk needs a gateway: ${missing}`);
}
const gw = binary as { bin: string; templates: string };

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
      // Repeated response headers for the Response hook to carry through.
      upstream = await startUpstream((req) =>
        req.url.includes("/cookies")
          ? { headers: { "content-type": "text/plain", "set-cookie": ["a=1", "b=2"], "x-multi": ["p", "q"] }, body: "cookies" }
          : undefined,
      );
      const listen = transport === "tcp" ? `127.0.0.1:${await freePort()}` : `unix://${join(dir, "plugins.sock")}`;
      plugins = await startServerProcess([
        "--config",
        pluginConfig(dir),
        "--listen",
        listen,
        "--http-listen",
        "127.0.0.1:0",
        "--log-objects",
        "--log-level",
        "info",
      ]);
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
      const code = await plugins?.stop();
      assert.equal(code, 0, JSON.stringify(plugins?.lines.filter((l) => (l.level ?? 0) >= 50 || "raw" in l).slice(-5)));
      await upstream?.stop();
      await redis?.stop();
    });

    it("the Tyk article's flow: a keyless API's Pre hook sees the request, the upstream gets it unchanged, the server logs the Object", async () => {
      const res = await request("/article/get?name=tyk", { headers: { "X-Custom": "kept", Authorization: "Basic dGVzdDp0ZXN0" } });
      assert.equal(res.status, 200, res.text);
      const seen = upstream.last("/get")!;
      assert.equal(seen.url, "/get?name=tyk");
      assert.equal(seen.headers["x-custom"], "kept");
      assert.equal(seen.headers.authorization, "Basic dGVzdDp0ZXN0");
      const logged = await plugins.waitForLog(
        (l) => l.msg === "dispatch object" && (l.object as { hookName?: string })?.hookName === "MyPreCustomPluginForBasicAuth",
      );
      const object = logged.object as { hookType: string; request: { url: string; headers: Record<string, string> }; spec: Record<string, string> };
      assert.equal(object.hookType, "Pre");
      assert.equal(object.request.url, "/article/get?name=tyk");
      assert.equal(object.request.headers["X-Custom"], "kept");
      assert.equal(object.request.headers.Authorization, "[redacted]");
      assert.equal(object.spec.APIID, "article");
    });

    it("header injection ('Pre Hook with SetHeaders'): the upstream sees the plugin's header", async () => {
      const res = await request("/inject/anything");
      assert.equal(res.status, 200, res.text);
      assert.equal(upstream.last("/anything")!.headers["x-tyk-plugin"], "tyk-grpc-ts");
    });

    for (const [flavour, path] of [
      ["Classic", "/grpc-ts-classic"],
      ["OAS", "/grpc-ts-oas"],
    ] as const) {
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

    it("response rewrite: body, status and headers as config_data says, Content-Length follows; config_data_disabled hides it", async () => {
      const res = await request("/resp/get");
      assert.equal(res.status, 203, res.text);
      assert.equal(res.text, "newbody ✓");
      assert.equal(Number(res.headers["content-length"]), Buffer.byteLength("newbody ✓"));
      assert.equal(res.headers["x-rewritten"], "yes");
      assert.equal(res.headers["x-config-data"], "true");
      // The upstream's own headers, repeated ones too, survive the hook (multivalue_headers).
      assert.equal(res.headers["content-type"], "application/json");
      const off = await request("/resp-off/get");
      assert.equal(off.status, 200);
      assert.equal(off.headers["x-config-data"], "false");
      assert.notEqual(off.text, "hidden");
      assert.equal(off.headers["x-served-through"], "tyk-grpc-ts", "the plugin's own default still applies");
    });

    describe("return overrides: what the client gets", () => {
      const cases = [
        { query: "status=200", status: 200, body: '{"foo": "bar"}' },
        { query: "status=200&body=text", status: 200, body: "foobar" },
        { query: "status=400", status: 400, error: '{"foo": "bar"}' },
        { query: "status=400&body=text", status: 400, error: "foobar" },
        { query: "status=400&override_error=1", status: 400, body: '{"foo": "bar"}' },
        { query: "status=400&body=text&override_error=1", status: 400, body: "foobar" },
        { query: "status=401", status: 401, error: '{"foo": "bar"}' },
        { query: "status=401&body=text", status: 401, error: "foobar" },
        { query: "status=401&override_error=1", status: 401, body: '{"foo": "bar"}' },
        { query: "status=401&body=text&override_error=1", status: 401, body: "foobar" },
      ];
      for (const c of cases) {
        it(`?${c.query}: ${c.status}, ${c.error !== undefined ? "the gateway's JSON error page" : "the body as the hook sent it"}`, async () => {
          const before = upstream.requests.length;
          const res = await request(`/overrides/get?${c.query}`);
          assert.equal(res.status, c.status);
          assert.equal(res.headers["x-foo"], "Bar");
          if (c.error !== undefined) {
            assert.equal(res.headers["content-type"], "application/json");
            assert.equal(res.headers["x-generator"], "tyk.io");
            assert.deepEqual(JSON.parse(res.text), { error: c.error });
            assert.equal(res.text, errorPage(c.error), "the model of the gateway writes the same page");
          } else {
            // Go sniffs a type for a body written without one.
            assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
            assert.equal(res.text, c.body);
          }
          assert.equal(Number(res.headers["content-length"]), res.body.length);
          assert.equal(upstream.requests.length, before, "the upstream is not called");
        });
      }
    });

    it("reject(): the gateway's error page is valid JSON whatever the message holds (quotes, <, &, =, \\, unicode)", async () => {
      const res = await request("/quote/get");
      assert.equal(res.status, 400);
      assert.deepEqual(JSON.parse(res.text), { error: `it’s <b> & "quoted" = \\ é ✓` });
    });

    it("bodies: JSON arrives as text and bytes, a binary multipart upload as bytes only; both reach the upstream byte for byte", async () => {
      const json = JSON.stringify({ name: "tyk", unicode: "héllo ✓" });
      const ok = await request("/bodies/post", { method: "POST", headers: { "content-type": "application/json" }, body: json });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(upstream.last("/post")!.body.toString(), json);
      const boundary = "XyZ";
      const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28]);
      const multipart = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
        binary,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const up = await request("/bodies/upload", { method: "POST", headers: { "content-type": `multipart/form-data; boundary=${boundary}` }, body: multipart });
      assert.equal(up.status, 200, up.text);
      assert.deepEqual(upstream.last("/upload")!.body, multipart);
    });

    it("a 20 MB body passes with raised grpc_recv_max_size/grpc_send_max_size; one over the limit gets the gateway's 500", async () => {
      const big = "x".repeat(20 * 2 ** 20);
      const ok = await request("/bodies/big", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ big }) });
      assert.equal(ok.status, 200, ok.text.slice(0, 200));
      assert.equal(upstream.last("/big")!.body.length, big.length + 10);
      // 40 MB sent twice (body and raw_body) is more than the gateway's 64 MiB send limit.
      const tooBig = await request("/bodies/huge", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ big: "y".repeat(40 * 2 ** 20) }),
      });
      assert.equal(tooBig.status, 500);
      assert.equal(upstream.last("/huge"), undefined);
    });

    it("headers and queries: repeated request and response headers, unicode, parameter edits", async () => {
      const res = await request("/edits/get?a=1&b=2&remove=me&q=%C3%A9t%C3%A9", {
        headers: { "X-Multi": ["one", "two"], Deletethisheader: "gone", "X-Unicode": Buffer.from("héllo ✓").toString("latin1") },
      });
      assert.equal(res.status, 200, res.text);
      const seen = upstream.last("/get?")!;
      const query = new URL(seen.url, "http://x").searchParams;
      assert.deepEqual([query.get("a"), query.get("b"), query.get("remove"), query.get("customparam"), query.get("q")], ["1", "2", null, "customvalue", "été"]);
      assert.equal(seen.headers.test, "value");
      assert.equal(seen.headers.deletethisheader, undefined);
      const multi = seen.rawHeaders.filter((_, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === "x-multi");
      assert.deepEqual(multi, ["one", "two"], "both values of a repeated header reach the upstream");
      assert.equal(Buffer.from(String(seen.headers["x-unicode"]), "latin1").toString("utf8"), "héllo ✓");
      // Repeated response headers through a Response hook: the gateway rebuilds them from multivalue_headers.
      const cookies = await request("/resp-off/cookies");
      assert.equal(cookies.status, 200);
      assert.deepEqual(cookies.headers["set-cookie"], ["a=1", "b=2"]);
      assert.deepEqual(
        cookies.rawHeaders.filter((_, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === "x-multi"),
        ["p", "q"],
      );
      assert.equal(cookies.headers["x-served-through"], "tyk-grpc-ts");
    });

    it("URL rewrite and method transform, then a Post hook sends the request to another API with tyk://", async () => {
      const res = await request("/loop/get");
      assert.equal(res.status, 200, res.text);
      const seen = upstream.last("/api2/")!;
      assert.equal(seen.method, "GET");
      assert.equal(seen.url, "/api2/newpath");
    });

    it("events: an AuthFailure reaches the API's cp_dynamic_handler through DispatchEvent", async () => {
      const res = await request("/grpc-ts-classic/get", { headers: { Authorization: "wrong-key-for-the-event" } });
      assert.equal(res.status, 403);
      const line = await plugins.waitForLog((l) => l.msg === "tyk event" && l.eventType === "AuthFailure");
      assert.equal(line.apiId, "tyk-grpc-ts-classic");
      const received = await plugins.waitForLog(
        (l) => l.msg === "received event" && (l.event as { message?: { Type?: string } })?.message?.Type === "AuthFailure",
      );
      assert.equal((received.event as { message: { Meta: { Key: string } } }).message.Meta.Key, "[redacted]");
    });
  });
}

describe("the real Tyk Gateway: tracing, failures, restarts", { skip: missing }, () => {
  let dir: string;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let port: number;
  let gateway: Gateway;
  let plugins: ServerProcess | undefined;
  const request = (path: string, init?: Parameters<typeof gatewayRequest>[2]) => gatewayRequest(gateway.baseUrl, path, init);
  const startPlugins = (extra: string[] = []) =>
    startServerProcess(["--config", pluginConfig(dir), "--listen", `127.0.0.1:${port}`, "--log-level", "info", "--plugin-timeout", "1s", ...extra]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tyk-e2e-"));
    redis = await startRedis();
    // Also the OpenTelemetry collector: it takes the gateway's spans (OTLP over HTTP) and answers 200.
    upstream = await startUpstream((req) => (req.url.startsWith("/v1/") ? { status: 200, body: "" } : undefined));
    port = await freePort();
    plugins = await startPlugins();
    gateway = await startGateway(gw, {
      redisPort: redis.port,
      pluginTarget: `tcp://127.0.0.1:${port}`,
      apis: [
        keyless("traced", `${upstream.url}/`, { pre: [{ name: "showTrace" }] }),
        keyless("inject", `${upstream.url}/`, { pre: [{ name: "injectHeaders" }] }),
        keyless("throws", `${upstream.url}/`, { pre: [{ name: "throws" }] }),
        keyless("hangs", `${upstream.url}/`, { pre: [{ name: "hangs" }] }),
        {
          ...keyless("auth-throws", `${upstream.url}/`, { auth_check: { name: "authThrows" } }),
          use_keyless: false,
          enable_coprocess_auth: true,
          custom_plugin_auth_enabled: true,
          auth: { auth_header_name: "Authorization" },
        },
      ],
      conf: {
        opentelemetry: {
          enabled: true,
          exporter: "http",
          endpoint: upstream.url.replace("http://", ""),
          span_processor_type: "simple",
          context_propagation: "tracecontext",
          sampling: { type: "AlwaysOn" },
        },
      },
    });
  });
  after(async () => {
    await gateway?.stop();
    if (plugins) assert.equal(await plugins.stop(), 0);
    await upstream?.stop();
    await redis?.stop();
  });

  it("W3C trace context: with the gateway's OpenTelemetry on, the hook sees the traceparent of the request's trace", async () => {
    const res = await request("/traced/get");
    assert.equal(res.status, 200, res.text);
    const line = await plugins!.waitForLog((l) => l.msg === "hook saw trace context" && l.trace !== null);
    const trace = line.trace as { traceId: string; traceparent: string };
    assert.match(trace.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    assert.equal(line.traceId, trace.traceId, "the plugin's log lines carry the trace id");
    // The upstream request belongs to the same trace.
    const upstreamTrace = String(upstream.last("/get")!.headers.traceparent ?? "");
    assert.equal(upstreamTrace.split("-")[1], trace.traceId);
  });

  it("a hook that throws: the gateway answers 500 (403 for custom auth); one that hangs is cut off at --plugin-timeout; both logged", async () => {
    const thrown = await request("/throws/get");
    assert.equal(thrown.status, 500);
    assert.deepEqual(JSON.parse(thrown.text), { error: "Middleware error" });
    const auth = await request("/auth-throws/get", { headers: { Authorization: "anything" } });
    assert.equal(auth.status, 403);
    const started = performance.now();
    const hung = await request("/hangs/get");
    assert.equal(hung.status, 500);
    assert.ok(performance.now() - started >= 900, "answered once the 1 s budget ran out");
    for (const code of ["Internal", "DeadlineExceeded"]) {
      await plugins!.waitForLog((l) => l.msg === "rpc failed" && l.code === code);
    }
  });

  it("the plugin server stopped: the gateway answers 500; once it is back, requests are served again", async () => {
    assert.equal(await plugins!.stop(), 0);
    plugins = undefined;
    const down = await request("/inject/get");
    assert.equal(down.status, 500);
    plugins = await startPlugins();
    // grpc-go reconnects with a backoff: wait (generously) until a request is served.
    const deadline = Date.now() + 60_000;
    let status = 0;
    while (Date.now() < deadline && (status = (await request("/inject/get")).status) !== 200) {
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(status, 200, "served again within 60 s of the plugin server's restart");
  });

  it("SIGTERM of the plugin server under load: no request gets a wrong answer, and the gateway reconnects to its successor", async () => {
    let running = true;
    const outcomes: string[] = [];
    const client = async () => {
      while (running) {
        const before = upstream.requests.length;
        const res = await request("/inject/get");
        if (res.status === 200) {
          // Served: the upstream got the request with the plugin's header.
          const seen = upstream.requests.slice(before).find((r) => r.url === "/get");
          outcomes.push(seen?.headers["x-tyk-plugin"] === "tyk-grpc-ts" ? "ok" : `wrong: ${JSON.stringify(seen?.headers)}`);
        } else {
          outcomes.push(res.status === 500 && JSON.parse(res.text).error === "Middleware error" ? "refused" : `wrong: ${res.status} ${res.text}`);
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await plugins!.stop("SIGTERM"), 0, "drained and exited 0");
    plugins = await startPlugins();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && outcomes.slice(-20).filter((o) => o === "ok").length < 20) {
      await new Promise((r) => setTimeout(r, 250));
    }
    running = false;
    await Promise.all(clients);
    const wrong = outcomes.filter((o) => o.startsWith("wrong"));
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} wrong answers of ${outcomes.length}`);
    assert.ok(
      outcomes.slice(-20).every((o) => o === "ok"),
      "served again after the restart",
    );
  });

  it("--workers 2 behind the gateway: calls are served, and SIGTERM drains both workers", async () => {
    assert.equal(await plugins!.stop(), 0);
    plugins = await startPlugins(["--workers", "2", "--users-store", "memory"]);
    const deadline = Date.now() + 60_000;
    let served = 0;
    while (Date.now() < deadline && served < 20) {
      if ((await request("/inject/get")).status === 200) served++;
      else await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(served, 20);
    assert.equal(upstream.last("/get")!.headers["x-tyk-plugin"], "tyk-grpc-ts");
  });
});
