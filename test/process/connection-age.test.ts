import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as http2 from "node:http2";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { collectStream, grpc, grpcJsClients, unary } from "../helpers/grpc-js.js";
import { startServerProcess } from "../helpers/server-process.js";

// --max-connection-age, with grpc-go's semantics: a GOAWAY after the age
// (+-10 %), calls in flight finish, the grace cuts off what is still open,
// and clients reconnect for new calls without losing any.

describe("--max-connection-age", () => {
  it("a GOAWAY (NO_ERROR) about the age after the connection opened; a call in flight is not cut", async () => {
    // A short drain: node's own HTTP/2 client keeps its connection after the GOAWAY (grpc-js and grpc-go close theirs).
    const server = await startServerProcess(["--max-connection-age", "1s", "--grace-period", "1s"]);
    try {
      const session = http2.connect(server.baseUrl);
      await once(session, "connect");
      const opened = performance.now();
      const goaway = once(session, "goaway");
      // A health Watch: a call that stays open, in flight when the GOAWAY comes.
      const watch = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
      watch.end(Buffer.from([0, 0, 0, 0, 0]));
      const [errorCode, lastStreamId] = (await goaway) as [number, number];
      const after = performance.now() - opened;
      assert.equal(errorCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.equal(lastStreamId, 1, "the Watch (stream 1) was accepted and may finish");
      // 1 s +-10 %, with room for a loaded machine's timers on the late side.
      assert.ok(after >= 850, `GOAWAY after ${Math.round(after)} ms, not before 0.9 s`);
      assert.ok(after < 10_000, `GOAWAY after ${Math.round(after)} ms`);
      assert.equal(watch.closed, false, "the call in flight was not cut (no grace set)");
      assert.equal(session.destroyed, false);
      session.destroy();
      await server.waitForLog((l) => l.msg === "connection reached --max-connection-age: GOAWAY");
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("grpc-js calls one after another across several ages: none fails, and they arrive over new connections", async () => {
    const server = await startServerProcess(["--max-connection-age", "500ms", "--max-connection-age-grace", "5s"]);
    const clients = grpcJsClients(server.address);
    try {
      const started = performance.now();
      let calls = 0;
      // Bounded: 3 s of calls, back to back and with pauses, as a gateway sends them.
      while (performance.now() - started < 3000) {
        const reply = await unary<{ message: string }>(clients.echo, "Reply", { message: `call ${calls}` });
        assert.equal(reply.message, `You said: call ${calls}`);
        calls++;
        if (calls % 20 === 0) await sleep(50);
      }
      const goaways = server.lines.filter((l) => l.msg === "connection reached --max-connection-age: GOAWAY").length;
      assert.ok(goaways >= 2, `${goaways} GOAWAYs in 3 s of a 0.5 s age (${calls} calls, all answered)`);
    } finally {
      clients.close();
      assert.equal(await server.stop(), 0);
    }
  });

  it("the grace: a call still open that long after the GOAWAY is ended and the connection closed; a new call is served", async () => {
    const server = await startServerProcess(["--max-connection-age", "500ms", "--max-connection-age-grace", "1s"]);
    const clients = grpcJsClients(server.address);
    try {
      // A health Watch never ends on its own: only the grace ends it.
      const watchClient = new grpc.Client(server.address, grpc.credentials.createInsecure());
      const watch = watchClient.makeServerStreamRequest(
        "/grpc.health.v1.Health/Watch",
        (req: Buffer) => req,
        (b: Buffer) => b,
        Buffer.alloc(0),
      ) as grpc.ClientReadableStream<Buffer>;
      const began = performance.now();
      const { error } = await collectStream(watch);
      const lasted = performance.now() - began;
      assert.ok(error, "the Watch was ended by the server");
      assert.equal(error.code, grpc.status.UNAVAILABLE);
      // Age 0.45-0.55 s plus 1 s grace; generous on the late side.
      assert.ok(lasted >= 1300 && lasted < 15_000, `the Watch lasted ${Math.round(lasted)} ms`);
      await server.waitForLog((l) => l.msg === "calls still open after --max-connection-age-grace: closing the connection");
      assert.equal((await unary<{ message: string }>(clients.echo, "Reply", { message: "after" })).message, "You said: after");
      watchClient.close();
    } finally {
      clients.close();
      assert.equal(await server.stop(), 0);
    }
  });
});
