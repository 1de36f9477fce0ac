import { strict as assert } from "node:assert";
import * as http from "node:http";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { useServerProcess } from "../helpers/server-process.js";

// --http-listen, as curl would use it: plain HTTP/1.1 requests (node:http,
// no RPC library) against every route; metrics counted on every path; W3C
// trace context on the log lines of its call.

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function request(url: string, options: http.RequestOptions = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const postJson = (url: string, body: unknown, headers: http.OutgoingHttpHeaders = {}) =>
  request(url, { method: "POST", headers: { "content-type": "application/json", ...headers } }, JSON.stringify(body));

/** One sample's value from Prometheus text, by metric name and label subset. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

describe("--http-listen", () => {
  const server = useServerProcess(["--http-listen", "127.0.0.1:0", "--plugin", "dist/test/fixtures/tyk-test-plugins.js", "--plugin", "custom-auth"]);
  const base = () => server().httpBaseUrl!;

  it("/healthz and /readyz", async () => {
    const live = await request(`${base()}/healthz`);
    assert.equal(live.status, 200);
    assert.equal(live.body, "ok\n");
    const ready = await request(`${base()}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { status: "SERVING" });
    assert.equal((await request(`${base()}/readyz`, { method: "POST" })).status, 405);
  });

  it("every method over Connect with JSON, as curl sends it; errors in the Connect shape", async () => {
    const echo = await postJson(`${base()}/echo.Echo/Reply`, { message: "curl" });
    assert.equal(echo.status, 200);
    assert.deepEqual(JSON.parse(echo.body), { message: "You said: curl" });
    const created = await postJson(`${base()}/Users/CreateUser`, { username: "alexa", email: "alexa@example.com" });
    assert.equal(created.status, 200, created.body);
    assert.equal(JSON.parse(created.body).user.username, "alexa");
    const dup = await postJson(`${base()}/Users/CreateUser`, { username: "alexa" });
    assert.equal(dup.status, 409);
    assert.equal(JSON.parse(dup.body).code, "already_exists");
    const dispatched = await postJson(`${base()}/coprocess.Dispatcher/Dispatch`, {
      hookType: "Pre",
      hookName: "postProcess",
      request: { url: "/x", headers: { Deletethisheader: "1" } },
    });
    assert.equal(dispatched.status, 200);
    assert.deepEqual(JSON.parse(dispatched.body).request.setHeaders, { Test: "value" });
    const health = await postJson(`${base()}/grpc.health.v1.Health/Check`, {});
    assert.deepEqual(JSON.parse(health.body), { status: "SERVING" });
    const event = await postJson(`${base()}/coprocess.Dispatcher/DispatchEvent`, { payload: "not json" });
    assert.equal(event.status, 400);
    assert.equal(JSON.parse(event.body).code, "invalid_argument");
  });

  it("gRPC-Web works on the same port", async () => {
    const body = Buffer.from(grpcFrame(new Uint8Array([10, 3, 119, 101, 98])));
    const res = await request(
      `${base()}/echo.Echo/Reply`,
      { method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" } },
      body.toString("latin1"),
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/grpc-web+proto");
    assert.match(res.body, /You said: web/);
    assert.match(res.body, /grpc-status:\s*0/);
  });

  it("GET /users streams NDJSON, one user per line, in GetUsers order; NOT_FOUND mid-list ends with an error line", async () => {
    await postJson(`${base()}/Users/CreateUser`, { username: "christie" });
    const all = await request(`${base()}/users`);
    assert.equal(all.status, 200);
    assert.equal(all.headers["content-type"], "application/x-ndjson");
    const users = all.body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { username: string; userId: number });
    assert.deepEqual(users.map((u) => u.username).slice(0, 2), ["alexa", "christie"]);
    assert.ok(users.every((u) => u.userId > 0));
    const some = await request(`${base()}/users?username=christie&username=nobody`);
    const lines = some.body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines[0].username, "christie");
    assert.deepEqual(lines[1], { error: { code: "not_found", message: 'user "nobody" not found' } });
    const none = await request(`${base()}/users?username=nobody`);
    assert.equal(none.status, 404, "an error before any user is the HTTP status");
    assert.equal(JSON.parse(none.body).code, "not_found");
  });

  it("/metrics counts calls on every path (fast path, connect, HTTP) and Tyk hook outcomes", async () => {
    const grpcDispatch = (hookType: HookType, hookName: string) =>
      rawGrpcCall(
        server().baseUrl,
        "/coprocess.Dispatcher/Dispatch",
        grpcFrame(toBinary(ObjectSchema, create(ObjectSchema, { hookType, hookName, request: { url: "/", headers: {} } }))),
      );
    const before = (await request(`${base()}/metrics`)).body;
    await grpcDispatch(HookType.Pre, "postProcess"); // fast path: continue
    await grpcDispatch(HookType.Pre, "throws"); // error
    await grpcDispatch(HookType.CustomKeyCheck, "customAuth"); // custom-auth without a key: deny
    await grpcDispatch(HookType.Pre, "not-configured"); // no plugin
    await postJson(`${base()}/coprocess.Dispatcher/Dispatch`, { hookType: "Pre", hookName: "postProcess", request: { url: "/" } }); // connect, HTTP/1.1
    const res = await request(`${base()}/metrics`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain/);
    const delta = (name: string, labels: Record<string, string>) => sample(res.body, name, labels) - sample(before, name, labels);
    const dispatch = { grpc_service: "coprocess.Dispatcher", grpc_method: "Dispatch", grpc_type: "unary" };
    assert.equal(delta("grpc_server_started_total", dispatch), 5);
    assert.equal(delta("grpc_server_handled_total", { ...dispatch, grpc_code: "OK" }), 4);
    assert.equal(delta("grpc_server_handled_total", { ...dispatch, grpc_code: "Internal" }), 1);
    assert.equal(delta("grpc_server_handling_seconds_count", dispatch), 5);
    assert.equal(sample(res.body, "grpc_server_in_flight", dispatch), 0);
    assert.equal(delta("tyk_hook_calls_total", { hook_type: "Pre", hook_name: "postProcess", outcome: "continue" }), 2);
    assert.equal(delta("tyk_hook_calls_total", { hook_type: "Pre", hook_name: "throws", outcome: "error" }), 1);
    assert.equal(delta("tyk_hook_calls_total", { hook_type: "CustomKeyCheck", hook_name: "customAuth", outcome: "deny" }), 1);
    assert.equal(delta("tyk_hook_calls_total", { hook_type: "Pre", hook_name: "", outcome: "no_plugin" }), 1);
    assert.match(res.body, /^process_resident_memory_bytes \d+/m, "default process metrics");
  });

  it("traceparent: every log line of the call carries its trace and span ids; plugins see the context", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const spanId = "00f067aa0ba902b7";
    const object = create(ObjectSchema, { hookType: HookType.Pre, hookName: "showTrace", request: { url: "/traced", headers: {} } });
    const res = await rawGrpcCall(server().baseUrl, "/coprocess.Dispatcher/Dispatch", grpcFrame(toBinary(ObjectSchema, object)), {
      traceparent: `00-${traceId}-${spanId}-01`,
      tracestate: "tyk=1",
    });
    assert.equal(res.trailers["grpc-status"], "0");
    const seen = await server().waitForLog((l) => l.msg === "hook saw trace context");
    assert.deepEqual(seen.trace, { traceId, spanId, sampled: true, traceparent: `00-${traceId}-${spanId}-01`, tracestate: "tyk=1" });
    await server().waitForLog((l) => l.msg === "rpc ok" && l.traceId === traceId);
    const ofCall = server().lines.filter((l) => l.traceId === traceId);
    assert.ok(ofCall.length >= 3, `lines of the call: ${ofCall.map((l) => l.msg).join(", ")}`);
    assert.ok(ofCall.every((l) => l.spanId === spanId));
    // Another call without the header: no trace fields, and the plugin sees none.
    await rawGrpcCall(server().baseUrl, "/coprocess.Dispatcher/Dispatch", grpcFrame(toBinary(ObjectSchema, object)), {
      traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    });
    const untraced = await server().waitForLog((l) => l.msg === "hook saw trace context" && l.trace === null);
    assert.equal(untraced.traceId, undefined);
  });
});
