import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as net from "node:net";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { GrpcLoad } from "../helpers/grpc-load.js";
import { runH2load } from "../helpers/h2load.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// Under load, with calls in flight: SIGTERM drains, and a worker killed
// under --workers loses only its own calls. The load is h2load plus a
// raw-HTTP/2 client that classifies every call (h2load cannot read
// grpc-status). Each Dispatch takes 50 ms (the "slow" test hook), so many
// calls are in flight at any moment.

// h2load (Debian's nghttp2-client) adds load; CI installs it. Elsewhere the
// test runs without it, and says so.
const hasH2load = (() => {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const plugins = ["--plugin", "dist/test/fixtures/tyk-test-plugins.js"];
const slowDispatch = grpcFrame(toBinary(ObjectSchema, create(ObjectSchema, { hookType: HookType.Pre, hookName: "slow", request: { url: "/" } })));

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `promise`, or a failure naming what did not finish and the server's last log lines. */
async function within<T>(ms: number, what: string, server: ServerProcess, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not done after ${ms} ms; server's last lines:\n${server.stdout().split("\n").slice(-15).join("\n")}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function connectRefused(server: ServerProcess): Promise<boolean> {
  const [host, port] = server.address.split(":") as [string, string];
  const socket = net.connect(Number(port), host);
  return new Promise((resolve) => {
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

describe("drain and crashes under load", () => {
  it("SIGTERM under load: every accepted call completes OK, new connections are refused, exit 0 within the grace period", { timeout: 60_000 }, async (t) => {
    const graceMs = 5000;
    const server = await startServerProcess([...plugins, "--log-level", "info", "--grace-period", `${graceMs}ms`]);
    const load = new GrpcLoad({
      baseUrl: server.baseUrl,
      path: "/coprocess.Dispatcher/Dispatch",
      body: slowDispatch,
      connections: 4,
      streamsPerConnection: 16,
    });
    load.start();
    // h2load stops by itself once the server has gone (or is killed after 60 s).
    const h2load = hasH2load
      ? runH2load(`${server.baseUrl}/coprocess.Dispatcher/Dispatch`, slowDispatch, 1_000_000, 4, 16, 60_000).catch((e: Error) => e)
      : undefined;
    try {
      await until(() => load.calls.ok >= 500);
      const okAtSignal = load.calls.ok;
      const signalled = Date.now();
      server.child.kill("SIGTERM");
      await server.waitForLog((l) => l.msg === "shutting down: draining in-flight calls", 20_000);
      const refusedDuringDrain = await connectRefused(server);
      const code = await within(15_000, "the drain", server, server.exited);
      const exitMs = Date.now() - signalled;
      const report = await within(10_000, "the checking client's stop", server, load.stop());
      const h2 = await within(10_000, "h2load's exit", server, h2load ?? Promise.resolve(undefined));

      t.diagnostic(`checking client: ${JSON.stringify(report.calls)} (${okAtSignal} OK before the signal), refused connections ${report.refusedConnections}`);
      t.diagnostic(
        `h2load: ${h2 === undefined ? "not run" : h2 instanceof Error ? h2.message.split("\n")[0] : `${h2.succeeded} calls succeeded`}; exit ${exitMs} ms after the signal`,
      );
      assert.equal(code, 0);
      assert.ok(exitMs < graceMs, `exited ${exitMs} ms after the signal`);
      assert.equal((await server.waitForLog((l) => l.msg === "server stopped")).forced, false);
      assert.equal(refusedDuringDrain, true, "a new connection during the drain is refused");
      assert.deepEqual(report.failedStatuses, {});
      assert.equal(report.calls.failed, 0);
      assert.equal(report.calls.lost, 0, "no accepted call was lost");
      assert.ok(report.calls.ok > okAtSignal, "calls in flight at the signal completed");
    } finally {
      await server.stop("SIGKILL");
      await load.stop();
      await h2load;
    }
  });

  it("--workers 2: a worker killed under load loses only its own in-flight calls and is replaced", { timeout: 60_000 }, async (t) => {
    const server = await startServerProcess([...plugins, "--log-level", "info", "--workers", "2"]);
    const streams = 8;
    const load = new GrpcLoad({
      baseUrl: server.baseUrl,
      path: "/coprocess.Dispatcher/Dispatch",
      body: slowDispatch,
      connections: 8,
      streamsPerConnection: streams,
    });
    try {
      await server.waitForLog(() => server.lines.filter((l) => l.msg === "server listening").length === 2, 20_000);
      load.start();
      await until(() => load.calls.ok >= 500);

      const victim = server.lines.find((l) => l.msg === "server listening")!;
      process.kill(victim.workerPid as number, "SIGKILL");
      await server.waitForLog((l) => l.msg === "worker died: starting a new one", 20_000);
      await server.waitForLog((l) => l.msg === "server listening" && l.worker === 3, 20_000);
      const okAfterRestart = load.calls.ok;
      await until(() => load.calls.ok >= okAfterRestart + 500);
      const report = await within(10_000, "the checking client's stop", server, load.stop());

      t.diagnostic(`${JSON.stringify(report.calls)}; lost per connection ${JSON.stringify(report.lostOn)}; unserved connections ${report.unservedConnections}`);
      assert.equal(report.calls.failed, 0, JSON.stringify(report.failedStatuses));
      assert.ok(report.calls.lost > 0, "the killed worker had calls in flight");
      for (const { lost, connectionLost } of report.lostOn) {
        assert.ok(connectionLost, "calls were lost only with their connection");
        assert.ok(lost <= streams, "no more than that connection's calls in flight");
      }
      assert.ok(report.lostOn.length < 8, "connections on the other worker lost nothing");
      // A connection in transit to the worker as it died is never served (cluster.ts); at most one per connection slot.
      assert.ok(report.unservedConnections <= 8);
      assert.equal(await within(20_000, "the drain of both workers", server, server.stop()), 0);
    } finally {
      await load.stop();
      if (server.child.exitCode === null) {
        // The primary's workers drain and exit once it is gone.
        await server.stop("SIGKILL");
      }
    }
  });
});
