import { strict as assert } from "node:assert";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { LogTap } from "../../src/observability/log-tap.js";
import type { CallDetail, CallSummary } from "../../src/services/inspector/recorded-call.js";
import { loadPlugins } from "../../src/tyk/load-plugins.js";
import { startApp, type TestApp } from "../helpers/app.js";
import { type EventStreamClient, openEventStream } from "../helpers/event-stream.js";
import { tappedLogger } from "../helpers/loggers.js";
import { repoPath } from "../helpers/paths.js";
import { GatewayClient } from "../helpers/tyk-gateway.js";

// The call inspector over real sockets: Dispatch calls from grpc-js (as the
// gateway's Go client makes them), the page's event stream and call details
// from node:http. The browser's side is test/e2e/inspector-browser.test.ts.

const pluginFile = repoPath("dist", "test", "fixtures", "inspector-plugins.js");

function object(hookName: string, apiId = "orders", method = "GET"): Object$ {
  return create(ObjectSchema, {
    hookType: HookType.Pre,
    hookName,
    request: {
      method,
      url: "/orders/1?api_key=k1&page=2",
      headers: { Host: "gw", Authorization: "Bearer s3cret", "X-Internal": "1" },
      returnOverrides: { responseCode: -1 },
    },
    spec: { APIID: apiId, OrgID: "org" },
  });
}

interface Inspected {
  app: TestApp;
  client: GatewayClient;
  http: string;
  lines: Record<string, unknown>[];
}

async function start(args: string[] = []): Promise<Inspected> {
  const tap = new LogTap();
  const { logger, lines } = tappedLogger(tap);
  // The plugins log through the server's logger, as loadPlugins gives them in main.ts.
  const registry = await loadPlugins([pluginFile], {}, logger);
  const app = await startApp(["--inspect", "--http-listen", "127.0.0.1:0", ...args], { logger, registry, logTap: tap });
  const address = app.server.httpAddresses[0]!;
  assert.equal(address.kind, "tcp");
  return { app, client: new GatewayClient(app.url.slice("http://".length)), http: `http://127.0.0.1:${address.kind === "tcp" ? address.port : 0}`, lines };
}

async function stop(s: Inspected): Promise<void> {
  s.client.close();
  await s.app.stop(1000);
}

async function detail(s: Inspected, id: number): Promise<{ call: CallDetail; logs: Record<string, unknown>[]; replay: Record<string, string | null> }> {
  const res = await fetch(`${s.http}/inspect/calls/${id}`);
  assert.equal(res.status, 200, `detail of call ${id}`);
  return (await res.json()) as never;
}

// fetch() sends the URL's host whatever the headers say; node:http sends what it is given.
function getWithHost(url: string, host: string, headOnly = false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { host } }, (res) => {
      if (headOnly) {
        resolve({ status: res.statusCode ?? 0, body: "" });
        req.destroy();
        return;
      }
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}

/** Runs `fn` with a page's event stream open (its hello read), then closes it. */
async function watching(s: Inspected, fn: (stream: EventStreamClient) => Promise<void>): Promise<void> {
  const stream = await openEventStream(`${s.http}/inspect/events`);
  try {
    await stream.next("hello");
    await fn(stream);
  } finally {
    stream.close();
  }
}

const callNamed = (hookName: string) => (data: unknown) => (data as CallSummary[]).some((c) => c.hookName === hookName);
const summaryOf = async (stream: EventStreamClient, hookName: string) =>
  ((await stream.next("calls", callNamed(hookName))) as CallSummary[]).find((c) => c.hookName === hookName)!;

describe("the call inspector", () => {
  let s: Inspected;
  before(async () => (s = await start(["--plugin-timeout", "300ms"])));
  after(() => stop(s));

  it("records nothing while no page is open, and serves the page with a strict content policy", async () => {
    await s.client.dispatch(object("addUser"));
    const stream = await openEventStream(`${s.http}/inspect/events`);
    try {
      assert.equal(stream.status, 200);
      const hello = (await stream.next("hello")) as { calls: CallSummary[]; capacity: number; masked: boolean };
      assert.deepEqual(hello.calls, [], "a call made with no page open is not recorded");
      assert.equal(hello.capacity, 200);
      assert.equal(hello.masked, true);
    } finally {
      stream.close();
    }
    const page = await fetch(`${s.http}/inspect`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/inspect\/inspector.js">/);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const script = await fetch(`${s.http}/inspect/inspector.js`);
    assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.match(await script.text(), /new EventSource\("\/inspect\/events"\)/);
  });

  it("shows a call made while a page is open: what the plugin changed, credentials masked, its log lines and replay commands", async () => {
    await watching(s, async (stream) => {
      await s.client.dispatch(object("addUser"));
      const summary = await summaryOf(stream, "addUser");
      assert.equal(summary.plugin, "inspector-test");
      assert.equal(summary.outcome, "continue");
      assert.equal(summary.apiId, "orders");
      assert.equal(summary.hookType, "Pre");
      assert.equal(summary.url, "/orders/1?api_key=[redacted]&page=2");
      assert.ok(summary.ms >= 0);
      const { call, logs, replay } = await detail(s, summary.id);
      assert.deepEqual(
        call.changes.map((c) => `${c.kind} ${c.path.join(".")}`),
        ["added request.setHeaders.X-User", "added request.deleteHeaders"],
      );
      assert.deepEqual(call.notes, ['request header X-User set to "alice"', "deleted request headers: X-Internal"]);
      const received = call.received as { request: { headers: Record<string, string> } };
      assert.equal(received.request.headers.Authorization, "[redacted]");
      assert.equal(received.request.headers["X-Internal"], "1");
      const reply = call.reply as { request: { setHeaders: Record<string, string>; deleteHeaders: string[] } };
      assert.deepEqual(reply.request.setHeaders, { "X-User": "alice" });
      assert.deepEqual(reply.request.deleteHeaders, ["X-Internal"]);
      assert.ok(
        logs.some((l) => l.msg === "user header added" && l.user === "alice"),
        `the plugin's line is among the call's: ${JSON.stringify(logs)}`,
      );
      assert.match(replay.grpcurl!, /^grpcurl -plaintext -d @ 127\.0\.0\.1:\d+ coprocess\.Dispatcher\/Dispatch <<'JSON'\n\{.*\}\nJSON$/);
      assert.match(replay.client!, /^pnpm client dispatch --server http:\/\/127\.0\.0\.1:\d+ --file - <<'JSON'\n/);
      assert.match(replay.warning!, /credentials are masked/);
    });
  });

  it("names each outcome: reject with its status, error, timeout, and an asynchronous hook's lines", async () => {
    await watching(s, async (stream) => {
      await s.client.dispatch(object("blockDeletes", "orders", "DELETE"));
      await assert.rejects(s.client.dispatch(object("throws")), /plugin "inspector-test" failed/);
      await assert.rejects(s.client.dispatch(object("overruns")), /exceeded its 300 ms budget/);
      await s.client.dispatch(object("later"));
      const reject = await summaryOf(stream, "blockDeletes");
      assert.equal(reject.outcome, "reject");
      assert.equal(reject.status, 403);
      const thrown = await summaryOf(stream, "throws");
      assert.equal(thrown.outcome, "error");
      assert.match(thrown.error!, /^Internal: plugin "inspector-test" failed/);
      assert.deepEqual((await detail(s, thrown.id)).call.reply, null);
      const timedOut = await summaryOf(stream, "overruns");
      assert.equal(timedOut.outcome, "timeout");
      assert.match(timedOut.error!, /^DeadlineExceeded: /);
      assert.ok(timedOut.ms >= 250, `the timeout took its budget: ${timedOut.ms} ms`);
      const later = await summaryOf(stream, "later");
      const { call, logs } = await detail(s, later.id);
      assert.deepEqual(call.notes, ['query parameter checked set to "yes"']);
      assert.ok(
        logs.some((l) => l.msg === "asynchronous hook done"),
        `a line written after an await is the call's: ${JSON.stringify(logs)}`,
      );
      const failed = await detail(s, thrown.id);
      assert.ok(failed.logs.some((l) => l.msg === "plugin failed"));
    });
  });

  it("shows the session a custom-auth hook made, masked, and a Response hook's status and headers", async () => {
    await watching(s, async (stream) => {
      const auth = object("keyCheck");
      auth.hookType = HookType.CustomKeyCheck;
      await s.client.dispatch(auth);
      const response = object("teapot");
      response.hookType = HookType.Response;
      response.response = { $typeName: "coprocess.ResponseObject", statusCode: 200, rawBody: new Uint8Array(), body: "", headers: {}, multivalueHeaders: [] };
      await s.client.dispatch(response);
      const allowed = await summaryOf(stream, "keyCheck");
      assert.equal(allowed.outcome, "allow");
      assert.equal(allowed.hookType, "CustomKeyCheck");
      const { call } = await detail(s, allowed.id);
      assert.deepEqual(call.notes, [
        'session metadata owner set to "ops"',
        'session metadata token set to "[redacted]"',
        'metadata token set to "[redacted]"',
        "session created: rate, per",
      ]);
      const session = (call.reply as { session: { metadata: Record<string, string>; rate: number } }).session;
      assert.deepEqual(session.metadata, { owner: "ops", token: "[redacted]" }, "the token is masked where the session holds it too");
      assert.equal(session.rate, 5);
      const rewritten = await summaryOf(stream, "teapot");
      assert.equal(rewritten.status, 418);
      assert.deepEqual((await detail(s, rewritten.id)).call.notes, [
        "response status: 200 → 418",
        'response header X-Brewed set to "yes"',
        'response headers (multivalue) set to [{"key":"X-Brewed","values":["yes"]}]',
      ]);
    });
  });

  it("adds the lines that carry the call's trace id, written after it ended", async () => {
    await watching(s, async (stream) => {
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      await s.client.dispatch(object("addUser"), { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
      const summary = await summaryOf(stream, "addUser");
      assert.equal(summary.traceId, traceId);
      const { logs } = await detail(s, summary.id);
      assert.ok(
        logs.some((l) => l.msg === "rpc ok" && l.traceId === traceId),
        `the server's line about the call, written after it: ${JSON.stringify(logs)}`,
      );
    });
  });

  it("clears on POST /inspect/clear, which needs the page's header", async () => {
    const refused = await fetch(`${s.http}/inspect/clear`, { method: "POST" });
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /x-inspector/);
    const cleared = await fetch(`${s.http}/inspect/clear`, { method: "POST", headers: { "x-inspector": "clear" } });
    assert.equal(cleared.status, 204);
    const stream = await openEventStream(`${s.http}/inspect/events`);
    try {
      assert.deepEqual(((await stream.next("hello")) as { calls: unknown[] }).calls, []);
    } finally {
      stream.close();
    }
  });

  it("answers only requests to a loopback host name (DNS rebinding), and logs the refusal", async () => {
    const res = await getWithHost(`${s.http}/inspect`, "attacker.example");
    assert.equal(res.status, 403);
    assert.match(res.body, /loopback host name/);
    assert.ok(s.lines.some((l) => l.msg === "inspector request refused" && l.status === 403));
    assert.equal((await getWithHost(`${s.http}/inspect`, "localhost:1234")).status, 200);
    assert.equal((await getWithHost(`${s.http}/inspect/events`, "[::1]:80", true)).status, 200);
    assert.equal((await getWithHost(`${s.http}/healthz`, "attacker.example")).status, 200, "other routes are not the inspector's to refuse");
  });
});

describe("the call inspector's bounds", () => {
  it("keeps the last --inspect-calls calls", async () => {
    const s = await start(["--inspect-calls", "3"]);
    const stream = await openEventStream(`${s.http}/inspect/events`);
    try {
      await stream.next("hello");
      for (let i = 0; i < 5; i++) await s.client.dispatch(object("addUser", `api-${i}`));
      await stream.next("calls", (data) => (data as CallSummary[]).some((c) => c.apiId === "api-4"));
      const again = await openEventStream(`${s.http}/inspect/events`);
      const hello = (await again.next("hello")) as { calls: CallSummary[] };
      again.close();
      assert.deepEqual(
        hello.calls.map((c) => c.apiId),
        ["api-2", "api-3", "api-4"],
      );
      const gone = await fetch(`${s.http}/inspect/calls/${hello.calls[0]!.id - 1}`);
      assert.equal(gone.status, 404);
    } finally {
      stream.close();
      await stop(s);
    }
  });

  it("cuts large bodies for display, says their size, and offers no replay of a cut Object", async () => {
    const s = await start();
    const stream = await openEventStream(`${s.http}/inspect/events`);
    try {
      await stream.next("hello");
      const big = object("addUser");
      big.request!.body = "x".repeat(100_000);
      big.request!.rawBody = new TextEncoder().encode(big.request!.body);
      await s.client.dispatch(big);
      const summary = await summaryOf(stream, "addUser");
      const res = await fetch(`${s.http}/inspect/calls/${summary.id}`);
      const body = await res.text();
      assert.ok(body.length < 120_000, `the detail holds the cut bodies only: ${body.length} characters`);
      const { call, replay } = JSON.parse(body) as { call: CallDetail; replay: { unavailable?: string } };
      assert.deepEqual(
        call.cut.map((c) => `${c.side} ${c.path.join(".")} ${c.bytes}`),
        ["received request.body 100000", "received request.rawBody 100000", "reply request.body 100000", "reply request.rawBody 100000"],
      );
      assert.match(replay.unavailable ?? "", /cut for display/);
    } finally {
      stream.close();
      await stop(s);
    }
  });

  it("ends its event streams when the server stops, so the drain does not wait for them", async () => {
    const s = await start();
    const stream = await openEventStream(`${s.http}/inspect/events`);
    await stream.next("hello");
    s.client.close();
    const started = Date.now();
    const { forced } = await s.app.stop(10_000);
    assert.equal(forced, false);
    assert.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms with a page open`);
    stream.close();
  });
});

describe("the call inspector off loopback", () => {
  const token = "0123456789abcdef0123";
  let s: Inspected;
  before(async () => (s = await start(["--http-listen", "0.0.0.0:0", "--inspect-token", token])));
  after(() => stop(s));

  it("asks for the token, trades it for a cookie once, and takes the cookie or a bearer token", async () => {
    const none = await fetch(`${s.http}/inspect`);
    assert.equal(none.status, 401);
    assert.match(await none.text(), /open \/inspect\?token=TOKEN/);
    assert.equal((await fetch(`${s.http}/inspect?token=wrong`, { redirect: "manual" })).status, 401);
    const given = await fetch(`${s.http}/inspect?token=${token}`, { redirect: "manual" });
    assert.equal(given.status, 303);
    assert.equal(given.headers.get("location"), "/inspect", "the token leaves the address bar");
    const cookie = given.headers.get("set-cookie")!;
    assert.match(cookie, /^tyk_grpc_ts_inspector=[0-9a-f]{64}; Path=\/inspect; HttpOnly; SameSite=Strict$/);
    assert.ok(!cookie.includes(token), "the cookie is not the token");
    const withCookie = await fetch(`${s.http}/inspect`, { headers: { cookie: cookie.split(";")[0]! } });
    assert.equal(withCookie.status, 200);
    const stream = await openEventStream(`${s.http}/inspect/events`, { authorization: `Bearer ${token}` });
    assert.equal(stream.status, 200);
    stream.close();
    const forged = await fetch(`${s.http}/inspect`, { headers: { cookie: `tyk_grpc_ts_inspector=${"0".repeat(64)}` } });
    assert.equal(forged.status, 401);
  });
});
