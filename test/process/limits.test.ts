import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { describe, it } from "node:test";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// The connection and call limits, observed from the client side of a real
// socket against a server process.

const emptyFrame = grpcFrame(new Uint8Array());

/**
 * Connects and makes one call, so that the server's own SETTINGS have
 * arrived: before a connection's first request the server has sent only an
 * empty SETTINGS frame (authority-sniff.ts).
 */
async function connect(server: ServerProcess): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(server.baseUrl);
  session.on("error", () => undefined); // failures show up on the streams or as "close"
  const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
  req.resume();
  req.end(emptyFrame);
  await once(req, "close");
  return session;
}

/** Opens a health Watch (a call that never ends by itself) and resolves with its fate. */
function watch(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders = {}) {
  const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers", ...headers });
  const responded = once(req, "response").then(
    () => true,
    () => false,
  );
  const ended = new Promise<{ status: string | undefined; rstCode: number | undefined }>((resolve) => {
    let status: string | undefined;
    req.on("trailers", (t) => (status = t["grpc-status"] as string));
    req.on("error", () => undefined);
    req.on("close", () => resolve({ status, rstCode: req.rstCode }));
  });
  req.resume();
  req.end(emptyFrame);
  return { req, responded, ended };
}

describe("connection and call limits", () => {
  it("max concurrent streams and header list size are announced and enforced", async () => {
    const server = await startServerProcess(["--max-concurrent-streams", "2", "--max-header-list-size", "8KiB"]);
    const session = await connect(server);
    try {
      assert.equal(session.remoteSettings.maxConcurrentStreams, 2);
      assert.equal(session.remoteSettings.maxHeaderListSize, 8192);
      // A client that knows the limit holds the third call back until a slot frees.
      const calls = [watch(session), watch(session), watch(session)];
      assert.deepEqual(await Promise.all([calls[0]!.responded, calls[1]!.responded]), [true, true]);
      const third = await Promise.race([calls[2]!.responded, new Promise((r) => setTimeout(() => r("waiting"), 300))]);
      assert.equal(third, "waiting");
      calls[0]!.req.close();
      // The client sends the held call the moment it has reset the first.
      // Node 20 serves it; Node 24's HTTP/2 server may still count the reset
      // stream at that instant and refuse it with ENHANCE_YOUR_CALM (node's
      // own check, before any handler). Either way a call made once the
      // server has seen the first end is served.
      const held = await calls[2]!.responded;
      if (!held) assert.equal((await calls[2]!.ended).rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      await server.waitForLog((l) => l.msg === "rpc failed" && l.rpc === "grpc.health.v1.Health/Watch" && l.code === "Canceled");
      const next = held ? undefined : watch(session);
      if (next) assert.equal(await next.responded, true, "served once the first call ended");

      // One that sends before it has the server's SETTINGS gets the stream
      // over the limit refused, which gRPC clients retry.
      const eager = http2.connect(server.baseUrl);
      eager.on("error", () => undefined);
      const burst = [watch(eager), watch(eager), watch(eager)];
      assert.equal((await burst[2]!.ended).rstCode, http2.constants.NGHTTP2_REFUSED_STREAM);
      assert.deepEqual(await Promise.all([burst[0]!.responded, burst[1]!.responded]), [true, true]);
      eager.destroy();
      const open = next ? [...calls, next] : calls;
      open.forEach((c) => c.req.close());
      await Promise.all(open.map((c) => c.ended));

      // Headers over the limit: the stream is reset with ENHANCE_YOUR_CALM
      // (gRPC clients report RESOURCE_EXHAUSTED); the connection lives on.
      const big = watch(session, { "x-big": "a".repeat(10_000) });
      assert.equal((await big.ended).rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      assert.equal(session.closed, false);
    } finally {
      session.destroy();
      assert.equal(await server.stop(), 0);
    }
  });

  it("idle timeout: a connection without calls gets a GOAWAY; one with a call open is left alone", async () => {
    const server = await startServerProcess(["--idle-timeout", "300ms"]);
    try {
      const idle = await connect(server);
      const busy = await connect(server);
      const call = watch(busy);
      assert.equal(await call.responded, true);
      const started = Date.now();
      const [code] = (await once(idle, "goaway")) as [number];
      assert.equal(code, http2.constants.NGHTTP2_NO_ERROR);
      assert.ok(Date.now() - started >= 200, "not before the timeout");
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(busy.closed, false, "the connection with an open call stays");
      call.req.close();
      await once(busy, "goaway"); // idle from now on
      idle.destroy();
      busy.destroy();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("keepalive: a peer that answers PINGs stays; one that does not is disconnected with a log line", async () => {
    const server = await startServerProcess(["--keepalive-interval", "100ms", "--keepalive-timeout", "200ms"]);
    try {
      const answering = await connect(server); // node:http2 answers PINGs itself
      const [host, port] = server.address.split(":");
      // A peer that speaks HTTP/2 once, then stops reading and answering.
      const silent = net.connect(Number(port), host!);
      await once(silent, "connect");
      silent.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
      silent.resume();
      const started = Date.now();
      await once(silent, "close");
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 200 && elapsed < 3000, `disconnected after ${elapsed} ms`);
      await server.waitForLog((l) => l.msg === "keepalive ping not answered: closing the connection");
      assert.equal(answering.closed, false);
      assert.equal(answering.destroyed, false);
      answering.destroy();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("deadline cap: calls without a deadline, or a longer one, end at the cap; shorter deadlines stay", async () => {
    const server = await startServerProcess(["--max-deadline", "300ms", "--plugin", "dist/test/fixtures/tyk-test-plugins.js", "--plugin-timeout", "60s"]);
    const session = await connect(server);
    try {
      const time = async (headers: http2.OutgoingHttpHeaders) => {
        const started = Date.now();
        const { status } = await watch(session, headers).ended;
        return { status, ms: Date.now() - started };
      };
      const [none, longer, shorter] = await Promise.all([time({}), time({ "grpc-timeout": "1H" }), time({ "grpc-timeout": "100m" })]);
      assert.equal(none.status, "4", "DEADLINE_EXCEEDED");
      assert.equal(longer.status, "4");
      assert.equal(shorter.status, "4");
      assert.ok(none.ms >= 250 && none.ms < 3000, `no deadline: ended after ${none.ms} ms`);
      assert.ok(longer.ms >= 250 && longer.ms < 3000, `1H: ended after ${longer.ms} ms`);
      assert.ok(shorter.ms < 250, `100m: ended after ${shorter.ms} ms`);

      // The Connect protocol over HTTP/1.1 (a unary Dispatch whose hook never returns) is capped too.
      const started = Date.now();
      const res = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
        const req = http.request(
          `${server.baseUrl}/coprocess.Dispatcher/Dispatch`,
          { method: "POST", headers: { "content-type": "application/json" } },
          (r) => {
            let body = "";
            r.on("data", (d: Buffer) => (body += d.toString()));
            r.on("end", () => resolve({ status: r.statusCode, body }));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ hookType: "Pre", hookName: "hangs", request: { url: "/" } }));
      });
      assert.equal(JSON.parse(res.body).code, "deadline_exceeded", res.body);
      assert.ok(Date.now() - started < 3000, "at the deadline, not at the 60 s plugin budget");
      await server.waitForLog((l) => l.msg === "the call ended while the plugin ran: abandoned");
    } finally {
      session.destroy();
      assert.equal(await server.stop(), 0);
    }
  });
});
