import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create, equals } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { SessionStateSchema } from "../../gen/coprocess_session_state_pb.js";
import { applyAuthReply, applyRequestReply, applyResponseReply, type HttpRequest, requestObject, responseObject } from "../../src/testing/gateway-model.js";
import { grpc } from "../helpers/grpc-js.js";
import { repoPath } from "../helpers/paths.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";
import { GatewayClient } from "../helpers/tyk-gateway.js";

// Tyk's own gRPC plugin tests (G1-G10 in tyk-gateway.md section 7) and the
// return-overrides matrix, at the plugin-server boundary: each test builds the
// Object the way the gateway does, sends it with grpc-js (as the gateway's
// grpc-go client would), and checks what the gateway would apply from the reply.

const testPlugins = repoPath("dist", "test", "fixtures", "tyk-test-plugins.js");
const get = (url: string, headers: Record<string, string> = {}): HttpRequest => ({ method: "GET", url, headers });

/** The reply keeps everything the gateway dereferences or reads (section 3.2, 3.4). */
function assertGatewaySafe(sent: Object$, reply: Object$): void {
  assert.ok(reply.request, "reply has request");
  assert.ok(reply.request.returnOverrides, "reply has request.return_overrides");
  assert.notEqual(reply.request.url, "", "reply has request.url");
  assert.notEqual(reply.request.method, "", "reply has request.method");
  if (sent.request!.rawBody.length > 0) {
    assert.ok(reply.request.rawBody.length > 0 || sent.hookType === HookType.Response, "reply keeps raw_body");
  }
  if (sent.hookType === HookType.Response) {
    const res = reply.response;
    assert.ok(res && res.statusCode >= 100, "Response reply keeps response.status_code");
    assert.deepEqual(
      Object.entries(res.headers).sort(),
      res.multivalueHeaders.map((h) => [h.key, h.values[0]]).sort(),
      "headers and multivalue_headers in sync",
    );
  }
}

describe("Tyk gateway contract (grpc-js client, gateway-built Objects)", () => {
  let dir: string;
  let server: ServerProcess;
  let gw: GatewayClient;
  const call = async (object: Object$) => {
    const reply = await gw.dispatch(object);
    assertGatewaySafe(object, reply);
    return reply;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tyk-contract-"));
    const config = join(dir, "plugins.json");
    writeFileSync(
      config,
      JSON.stringify({
        plugins: ["echo-log", "header-injection", "custom-auth", "response-rewrite", "return-overrides", testPlugins],
        pluginOptions: {
          "header-injection": { headers: { Testheader: "testvalue" }, sessionMetadata: ["sessionMetaKey"] },
          "custom-auth": {
            keys: { abc: { rate: 100, per: 1, quotaMax: 1, quotaRenewalRate: 60, metadata: { sessionMetaKey: "customAuthSessionMetaValue" } } },
            ttlSeconds: 2,
          },
          "response-rewrite": { body: "newbody" },
        },
        pluginTimeout: "300ms",
      }),
    );
    server = await startServerProcess(["--config", config]);
    gw = new GatewayClient(server.address);
  });
  after(async () => {
    gw.close();
    assert.equal(await server.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("G1: a Pre hook's header reaches the upstream, everything else as sent", async () => {
    const req: HttpRequest = { method: "POST", url: "/api/get?a=1", headers: { "Content-Type": "text/plain" }, body: "hello" };
    const result = applyRequestReply(req, await call(requestObject(HookType.Pre, "injectHeaders", req)));
    assert.equal(result.kind, "continue");
    assert.ok(result.kind === "continue");
    assert.equal(result.request.headers.Testheader, "testvalue");
    assert.equal(result.request.headers["Content-Type"], "text/plain");
    assert.equal(result.request.url, "/api/get?a=1");
    assert.equal(result.request.method, "POST");
    assert.equal(new TextDecoder().decode(result.request.body), "hello", "body survives (gateway reads raw_body)");
  });

  it("G2: JSON body as text and bytes; binary multipart only as bytes; both continue", async () => {
    const json: HttpRequest = { method: "POST", url: "/", headers: { "Content-Type": "application/json" }, body: '{"a":1}' };
    assert.equal(applyRequestReply(json, await call(requestObject(HookType.Pre, "testPreHook2", json))).kind, "continue");
    const binary = new Uint8Array([0x2d, 0x2d, 0xff, 0xfe, 0x00, 0x01]);
    const multipart: HttpRequest = { method: "POST", url: "/", headers: { "Content-Type": "multipart/form-data; boundary=x" }, body: binary };
    const sent = requestObject(HookType.Pre, "testPreHook2", multipart);
    assert.equal(sent.request!.body, "", "gateway omits body for non-UTF-8");
    const result = applyRequestReply(multipart, await call(sent));
    assert.ok(result.kind === "continue");
    assert.deepEqual(new Uint8Array(result.request.body), binary);
  });

  it("G3: a Post hook sees session metadata JSON-encoded, and Object.metadata equal to it", async () => {
    const session = create(SessionStateSchema, { metadata: { testkey: JSON.stringify({ nestedkey: "nestedvalue" }), testkey2: "testvalue" } });
    const req = get("/get");
    assert.equal(applyRequestReply(req, await call(requestObject(HookType.Post, "testPostHook1", req, {}, session))).kind, "continue");
  });

  it("G4: a Response hook's body replaces the upstream's; Content-Length follows", async () => {
    const sent = responseObject("rewriteResponse", get("/get"), {
      status: 200,
      headers: { "Content-Type": ["text/plain"], "Set-Cookie": ["a=1", "b=2"] },
      body: "original",
    });
    const result = applyResponseReply(sent, await call(sent));
    assert.ok(result.kind === "response");
    assert.equal(new TextDecoder().decode(result.body), "newbody");
    assert.equal(result.contentLength, 7);
    assert.equal(result.status, 200);
    assert.deepEqual(result.headers["Set-Cookie"], ["a=1", "b=2"], "multi-value headers survive");
    assert.deepEqual(result.headers["Content-Type"], ["text/plain"]);
  });

  it("G5: a 20 MB body (sent twice: body and raw_body) goes through untouched", async () => {
    // Its own server at info level: a debug dump of a 40 MB Object is slow and not what G5 is about.
    const quiet = await startServerProcess(["--log-level", "info", "--plugin", "header-injection"]);
    const big = "x".repeat(20 * 1024 * 1024);
    const req: HttpRequest = { method: "POST", url: "/big", headers: { "Content-Type": "text/plain" }, body: big };
    const bigGw = new GatewayClient(quiet.address, { "grpc.max_receive_message_length": -1 });
    try {
      const result = applyRequestReply(req, await bigGw.dispatch(requestObject(HookType.Post, "injectHeaders", req)));
      assert.ok(result.kind === "continue");
      assert.equal(result.request.body.length, big.length);
      assert.equal(result.request.headers["X-Tyk-Plugin"], "header-injection");
    } finally {
      bigGw.close();
      assert.equal(await quiet.stop(), 0);
    }
  });

  it("G6: custom auth with no hook name: passed through, so the gateway answers 403", async () => {
    const req = get("/get", { Authorization: "abc" });
    const result = applyAuthReply(req, await call(requestObject(HookType.CustomKeyCheck, "", req)));
    assert.equal(result.kind, "forbidden");
    await server.waitForLog((l) => l.level === 40 && l.hookType === "CustomKeyCheck" && l.hookName === "");
  });

  it("G7/G8: custom auth accepts the configured key with a session, token and a deadline in Unix seconds", async () => {
    const req = get("/get", { Authorization: "abc" });
    const before = Math.floor(Date.now() / 1000);
    const result = applyAuthReply(req, await call(requestObject(HookType.CustomKeyCheck, "customAuth", req)));
    assert.ok(result.kind === "authenticated", result.kind);
    assert.equal(result.key, "abc");
    assert.equal(result.session.rate, 100);
    assert.equal(result.session.per, 1);
    assert.equal(result.session.quotaMax, 1n);
    assert.equal(result.session.quotaRenewalRate, 60n);
    assert.equal(result.session.metadata.sessionMetaKey, "customAuthSessionMetaValue");
    const deadline = Number(result.session.idExtractorDeadline);
    assert.ok(deadline >= before + 2 && deadline <= before + 4, `deadline ${deadline} is now+2 s in seconds, not milliseconds`);
  });

  it("G7: custom auth refuses a wrong or missing key with 403 through return_overrides", async () => {
    for (const headers of [{ Authorization: "abd" }, {}] as Record<string, string>[]) {
      const req = get("/get", headers);
      const reply = await call(requestObject(HookType.CustomKeyCheck, "customAuth", req));
      const result = applyAuthReply(req, reply);
      assert.ok(result.kind === "error", result.kind);
      assert.equal(result.status, 403);
      assert.equal(reply.session, undefined, "no session on refusal");
    }
  });

  it("G7 (Bearer): a 'Bearer ' prefix is accepted", async () => {
    const req = get("/get", { Authorization: "Bearer abc" });
    assert.equal(applyAuthReply(req, await call(requestObject(HookType.CustomKeyCheck, "customAuth", req))).kind, "authenticated");
  });

  it("G9 (at this boundary): PostKeyAuth copies the custom-auth session's metadata into a header", async () => {
    const session = create(SessionStateSchema, { metadata: { sessionMetaKey: "customAuthSessionMetaValue", token: "abc" } });
    const req = get("/get");
    const result = applyRequestReply(req, await call(requestObject(HookType.PostKeyAuth, "sessionMetadataHeaders", req, {}, session)));
    assert.ok(result.kind === "continue");
    assert.equal(result.request.headers["X-Tyk-Meta-Sessionmetakey"], "customAuthSessionMetaValue");
  });

  it("G10: the Response hook tells whether config_data is sent, in headers and multivalue_headers", async () => {
    for (const [disabled, expected] of [
      [false, "true"],
      [true, "false"],
    ] as const) {
      const sent = responseObject(
        "rewriteResponse",
        get("/get"),
        { status: 200, headers: {}, body: "" },
        { configData: { key: "value" }, configDataDisabled: disabled },
      );
      const reply = await call(sent);
      assert.equal(reply.response?.headers["X-Config-Data"], expected);
      assert.deepEqual(reply.response?.multivalueHeaders.find((h) => h.key === "X-Config-Data")?.values, [expected]);
      const result = applyResponseReply(sent, reply);
      assert.ok(result.kind === "response");
      assert.deepEqual(result.headers["X-Config-Data"], [expected]);
    }
  });

  describe("return-overrides matrix", () => {
    const cases = [
      { status: 200, body: "json", override: false, expect: { kind: "respond", body: '{"foo": "bar"}' } },
      { status: 200, body: "text", override: false, expect: { kind: "respond", body: "foobar" } },
      // The error pages as the real gateway writes them (test/e2e/tyk-e2e.test.ts checks the same cases against it).
      { status: 400, body: "json", override: false, expect: { kind: "error", body: '{\n    "error": "{\\"foo\\": \\"bar\\"}"\n}' } },
      { status: 400, body: "text", override: false, expect: { kind: "error", body: '{\n    "error": "foobar"\n}' } },
      { status: 401, body: "text", override: false, expect: { kind: "error", body: '{\n    "error": "foobar"\n}' } },
      { status: 400, body: "json", override: true, expect: { kind: "respond", body: '{"foo": "bar"}' } },
      { status: 401, body: "text", override: true, expect: { kind: "respond", body: "foobar" } },
    ] as const;
    for (const c of cases) {
      it(`status ${c.status}, ${c.body} body, override_error ${c.override}: ${c.expect.kind}`, async () => {
        const req = get(`/get?status=${c.status}&body=${c.body}${c.override ? "&override_error=1" : ""}`);
        const result = applyRequestReply(req, await call(requestObject(HookType.Pre, "returnOverrides", req)));
        assert.equal(result.kind, c.expect.kind);
        assert.ok(result.kind === "error" || result.kind === "respond");
        assert.equal(result.status, c.status);
        assert.equal(result.body, c.expect.body);
        assert.equal(result.headers["X-Foo"], "Bar");
        // Seen from the real gateway: its page is JSON with a generator header; a body sent
        // without a type gets one sniffed by Go.
        assert.equal(result.headers["Content-Type"], result.kind === "error" ? "application/json" : "text/plain; charset=utf-8");
      });
    }

    it("reject() with quotes, <, &, =, \\ and an apostrophe: the gateway's page is still valid JSON (the apostrophe is sent as ’)", async () => {
      const req = get("/get");
      const result = applyRequestReply(req, await call(requestObject(HookType.Pre, "rejectQuote", req)));
      assert.ok(result.kind === "error");
      assert.deepEqual(JSON.parse(result.body), { error: `it’s <b> & "quoted" = \\ é ✓` });
    });
  });

  it("coprocess ObjectPostProcess: set and delete headers and query parameters", async () => {
    const req = get("/get?a=1&b=2&remove=3", { Deletethisheader: "x", Keep: "y" });
    const result = applyRequestReply(req, await call(requestObject(HookType.Pre, "postProcess", req)));
    assert.ok(result.kind === "continue");
    assert.equal(result.request.headers.Test, "value");
    assert.equal(result.request.headers.Deletethisheader, undefined);
    assert.equal(result.request.headers.Keep, "y");
    const params = new URL(result.request.url, "http://x").searchParams;
    assert.deepEqual([...params.keys()].sort(), ["a", "b", "customparam"]);
    assert.equal(params.get("customparam"), "customvalue");
  });

  it("Python coprocess test: a Post hook loops into another API with tyk://", async () => {
    const req = { method: "POST", url: "/test2", headers: {} };
    const result = applyRequestReply(req, await call(requestObject(HookType.Post, "urlRewrite", req)));
    assert.ok(result.kind === "continue");
    assert.equal(result.request.url, "tyk://test-api-2/newpath");
    assert.equal(result.request.method, "GET");
  });

  it("every hook type echoes an unknown hook name unchanged, warning once per name", async () => {
    const req: HttpRequest = { method: "PUT", url: "/x?y=1", headers: { A: "b" }, body: "body" };
    for (const hookType of [HookType.Pre, HookType.PostKeyAuth, HookType.Post, HookType.CustomKeyCheck]) {
      const sent = requestObject(hookType, "noSuchHook", req);
      assert.ok(equals(ObjectSchema, await call(sent), sent), HookType[hookType]);
      assert.ok(equals(ObjectSchema, await call(sent), sent), HookType[hookType]);
    }
    const sent = responseObject("noSuchHook", req, { status: 201, headers: { A: ["1", "2"] }, body: "r" });
    assert.ok(equals(ObjectSchema, await call(sent), sent));
    // echo-log covers Pre/PostKeyAuth/Post/Response; custom auth has no default and is warned about once.
    await server.waitForLog((l) => l.hookName === "noSuchHook" && l.level === 40);
    assert.equal(server.lines.filter((l) => l.hookName === "noSuchHook" && l.level === 40).length, 1);
  });

  it("a throwing hook gets a gRPC error (gateway: 500, or 403 for auth), is logged, and the server keeps serving", async () => {
    const req = get("/get");
    await assert.rejects(gw.dispatch(requestObject(HookType.Pre, "throws", req)), (e: grpc.ServiceError) => e.code === grpc.status.INTERNAL);
    await assert.rejects(gw.dispatch(requestObject(HookType.CustomKeyCheck, "authThrows", req)), (e: grpc.ServiceError) => e.code === grpc.status.INTERNAL);
    await assert.rejects(gw.dispatch(requestObject(HookType.CustomKeyCheck, "noDecision", req)), (e: grpc.ServiceError) => e.code === grpc.status.INTERNAL);
    const failed = await server.waitForLog((l) => l.msg === "plugin failed" && String(l.what).includes("throws"));
    assert.match(JSON.stringify(failed.err), /hook bug/);
    assert.equal(applyRequestReply(req, await call(requestObject(HookType.Pre, "injectHeaders", req))).kind, "continue");
  });

  it("a hook that never returns is cut off at its time budget with DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    await assert.rejects(gw.dispatch(requestObject(HookType.Pre, "hangs", get("/"))), (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 3000, `cut off after ${elapsed} ms (budget 300 ms)`);
    await server.waitForLog((l) => l.msg === "plugin timed out");
    assert.equal(applyRequestReply(get("/"), await call(requestObject(HookType.Pre, "injectHeaders", get("/")))).kind, "continue");
  });

  it("events: typed delivery by handler_name; unknown handlers and handler errors are logged; the reply is always {}", async () => {
    const payload = {
      message: {
        Type: "AuthFailure",
        Meta: { Message: "Auth Failure", Path: "/get", Origin: "127.0.0.1", Key: "secret-key-123", OriginatingRequest: "R0VUIC8=" },
        TimeStamp: "2026-08-21 15:39:47.123 +0300 EEST",
      },
      handler_name: "my_handler",
      spec: { APIID: "api-1", OrgID: "org-1" },
    };
    await gw.event(payload);
    const got = await server.waitForLog((l) => l.msg === "test handler got event");
    assert.deepEqual([got.type, got.apiId, got.path, got.timestamp], ["AuthFailure", "api-1", "/get", "2026-08-21 15:39:47.123 +0300 EEST"]);
    await gw.event({ ...payload, handler_name: "logEvent" });
    const logged = await server.waitForLog((l) => l.msg === "tyk event");
    assert.deepEqual([logged.plugin, logged.eventType, logged.apiId, logged.path], ["echo-log", "AuthFailure", "api-1", "/get"]);
    await gw.event({ ...payload, handler_name: "nobody" });
    await server.waitForLog((l) => l.msg === "no event handler registered under this name" && l.handlerName === "nobody");
    await gw.event({ ...payload, handler_name: "failing_handler" });
    await server.waitForLog((l) => l.msg === "plugin failed" && String(l.what).includes("failing_handler"));
    assert.doesNotMatch(server.stdout(), /secret-key-123/, "the event's key is masked in the log");
  });

  it("credentials never reach the log unmasked", async () => {
    const session = create(SessionStateSchema, {
      basicAuthData: { password: "SECRET-pw", hash: "SECRET-hash" },
      jwtData: { secret: "SECRET-jwt" },
      hmacSecret: "SECRET-hmac",
      oauthKeys: { client: "SECRET-oauth" },
      metadata: { token: "SECRET-token", plain: "visible-value" },
    });
    const req = get("/get?page=2&api_key=SECRET-query&access%5Ftoken=SECRET-encoded", {
      Authorization: "Bearer SECRET-auth",
      Cookie: "sid=SECRET-cookie",
      "X-Api-Key": "SECRET-key",
      "Proxy-Authorization": "SECRET-proxy",
    });
    await call(requestObject(HookType.Post, "injectHeaders", req, {}, session));
    await call(responseObject("rewriteResponse", req, { status: 200, headers: { "Set-Cookie": ["s=SECRET-set-cookie"] }, body: "" }, {}, session));
    await server.waitForLog((l) => l.msg === "dispatch object" && JSON.stringify(l).includes("visible-value"));
    const leaks = server
      .stdout()
      .split("\n")
      .filter((line) => line.includes("SECRET-"));
    assert.deepEqual(leaks, []);
  });
});
