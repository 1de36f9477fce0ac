import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { useServerProcess } from "../helpers/server-process.js";

// Server streams must stop when their deadline passes or the client goes
// away. Health.Watch never ends on its own, so it shows whether the server
// really stops (its log says how each call ended).

describe("stream lifetime", () => {
  const server = useServerProcess();

  it("a stream past its deadline is ended by the server with DEADLINE_EXCEEDED", async () => {
    // A raw request: no client-side timer, so the status must come from the server().
    const started = Date.now();
    const res = await rawGrpcCall(server().baseUrl, "/grpc.health.v1.Health/Watch", grpcFrame(new Uint8Array()), { "grpc-timeout": "300m" });
    const elapsed = Date.now() - started;
    assert.equal(res.trailers["grpc-status"], "4");
    assert.ok(elapsed >= 250 && elapsed < 3000, `ended after ${elapsed} ms`);
    assert.ok(res.body.length > 0, "the current status was streamed first");
    await server().waitForLog((l) => l.rpc === "grpc.health.v1.Health/Watch" && l.code === "DeadlineExceeded");
  });

  it("a stream the client cancels ends on the server as CANCELED", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server().baseUrl }));
    const ac = new AbortController();
    const watching = (async () => {
      for await (const _ of health.watch({ service: "echo.Echo" }, { signal: ac.signal })) {
        ac.abort();
      }
    })();
    await assert.rejects(watching);
    await server().waitForLog((l) => l.rpc === "grpc.health.v1.Health/Watch" && l.code === "Canceled");
  });
});
