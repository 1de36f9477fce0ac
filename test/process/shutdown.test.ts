import { strict as assert } from "node:assert";
import * as http from "node:http";
import type * as net from "node:net";
import { describe, it } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, type ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { PushQueue } from "../helpers/push-queue.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { startServerProcess } from "../helpers/server-process.js";

type ReflectionRequest = MessageInitShape<typeof ServerReflectionRequestSchema>;
const listServices: ReflectionRequest = { messageRequest: { case: "listServices", value: "" } };

/**
 * Starts a server and opens a reflection stream on it (a call that stays in
 * flight until we close it), after one request on it has been answered.
 */
async function serverWithOpenStream(args: string[] = []) {
  const server = await startServerProcess(args);
  const requests = new PushQueue<ReflectionRequest>();
  const client = createClient(ServerReflection, createGrpcTransport({ baseUrl: server.baseUrl }));
  const responses = client.serverReflectionInfo(requests)[Symbol.asyncIterator]();
  requests.push(listServices);
  const first = await responses.next();
  return { server, requests, responses, first };
}

describe("graceful shutdown", () => {
  it("health Watch sees SERVING, then NOT_SERVING on SIGTERM; the stream ends and the process exits 0", async () => {
    const server = await startServerProcess();
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
    const seen: Status[] = [];
    const watching = (async () => {
      for await (const r of health.watch({ service: "" })) {
        seen.push(r.status);
        if (seen.length === 1) {
          server.child.kill("SIGTERM");
        }
      }
    })();
    await watching;
    assert.deepEqual(seen, [Status.SERVING, Status.NOT_SERVING]);
    assert.equal(await server.exited, 0);
  });

  it("Watch of an unknown service says SERVICE_UNKNOWN; Check says NOT_FOUND", async () => {
    const server = await startServerProcess();
    try {
      const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
      await assert.rejects(health.check({ service: "nope.Nope" }), (e) => ConnectError.from(e).code === Code.NotFound);
      const statuses: Status[] = [];
      for await (const r of health.watch({ service: "nope.Nope" })) {
        statuses.push(r.status);
        break; // leaving the loop cancels the call
      }
      assert.deepEqual(statuses, [Status.SERVICE_UNKNOWN]);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("SIGTERM lets an in-flight stream finish, refuses new connections, then exits 0", async () => {
    const { server, requests, responses, first } = await serverWithOpenStream();
    assert.equal(first.value?.messageResponse.case, "listServicesResponse");

    server.child.kill("SIGTERM");
    await server.waitForLog((l) => l.msg === "shutting down: draining in-flight calls");

    // The stream is still served during the drain...
    requests.push({ messageRequest: { case: "fileContainingSymbol", value: "echo.Echo" } });
    const r = await responses.next();
    assert.equal(r.value?.messageResponse.case, "fileDescriptorResponse");
    // ...while new connections are refused.
    await assert.rejects(rawGrpcCall(server.baseUrl, "/echo.Echo/Reply", new Uint8Array(5)));
    assert.equal(server.child.exitCode, null, "still running while a call is in flight");

    requests.close();
    assert.equal((await responses.next()).done, true, "stream ends with OK");
    assert.equal(await server.exited, 0);
    const stopped = await server.waitForLog((l) => l.msg === "server stopped");
    assert.equal(stopped.forced, false);
  });

  it("calls still running after the grace period end with UNAVAILABLE, and the exit code is still 0", async () => {
    const { server, responses } = await serverWithOpenStream(["--grace-period", "300ms"]);
    server.child.kill("SIGTERM");
    await assert.rejects(responses.next(), (e) => {
      const err = ConnectError.from(e);
      assert.equal(err.code, Code.Unavailable);
      assert.match(err.rawMessage, /shutting down/);
      return true;
    });
    assert.equal(await server.exited, 0);
    assert.equal((await server.waitForLog((l) => l.msg === "server stopped")).forced, true);
  });

  it("an idle HTTP/1.1 keep-alive connection is closed at once and does not hold up the drain", async () => {
    const server = await startServerProcess(["--grace-period", "3s"]);
    const agent = new http.Agent({ keepAlive: true });
    const socketClosed = new Promise<void>((resolve) => agent.on("free", (socket: net.Socket) => socket.once("close", () => resolve())));
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${server.baseUrl}/echo.Echo/Reply`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", reject);
      req.end('{"message":"keep me alive"}');
    });
    const started = Date.now();
    server.child.kill("SIGTERM");
    assert.equal(await server.exited, 0);
    await socketClosed;
    assert.ok(Date.now() - started < 2000, "well before the grace period and node's 5 s keep-alive timeout");
    assert.equal((await server.waitForLog((l) => l.msg === "server stopped")).forced, false);
    agent.destroy();
  });

  it("a second signal exits at once", async () => {
    const { server, responses } = await serverWithOpenStream(["--grace-period", "60s"]);
    server.child.kill("SIGTERM");
    await server.waitForLog((l) => l.msg === "shutting down: draining in-flight calls");
    const started = Date.now();
    server.child.kill("SIGTERM");
    assert.equal(await server.exited, 128 + 15);
    assert.ok(Date.now() - started < 2000);
    await responses.next().catch(() => undefined);
  });
});
