import { strict as assert } from "node:assert";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Echo } from "../../gen/echo_pb.js";
import { type LogLine, type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// --workers N: N processes share the listeners; a dead worker is replaced;
// SIGTERM drains them all.

const dir = mkdtempSync(join(tmpdir(), "workers-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One call on a connection of its own (node:cluster hands out connections, not calls). */
async function echoOnNewConnection(server: ServerProcess, message: string): Promise<string> {
  const client = createClient(Echo, createGrpcTransport({ baseUrl: server.baseUrl }));
  return (await client.reply({ message })).message;
}

const listening = (server: ServerProcess) => server.lines.filter((l) => l.msg === "server listening");

describe("--workers", () => {
  it("two workers share TCP and unix listeners, spread connections, and a killed worker is replaced", async () => {
    const socket = join(dir, "w.sock");
    const server = await startServerProcess(["--workers", "2", "--listen", "127.0.0.1:0", "--listen", `unix://${socket}`]);
    try {
      await server.waitForLog((l) => listening(server).length === 2 && l.msg === "server listening");
      const [first, second] = listening(server);
      assert.deepEqual(first!.addresses, second!.addresses, "both workers listen on the same addresses");
      assert.ok(existsSync(socket));

      const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => echoOnNewConnection(server, `m${i}`)));
      assert.deepEqual(
        replies,
        Array.from({ length: 8 }, (_, i) => `You said: m${i}`),
      );
      // (Log lines arrive in batches: wait for them.)
      const servedBy = () => new Set(server.lines.filter((l) => l.msg === "rpc ok").map((l) => l.worker));
      await server.waitForLog(() => servedBy().size === 2).catch(() => undefined);
      assert.deepEqual([...servedBy()].sort(), [1, 2], "calls were served by both workers");

      process.kill(first!.workerPid as number, "SIGKILL");
      await server.waitForLog((l) => l.msg === "worker died: starting a new one");
      await server.waitForLog((l: LogLine) => l.msg === "server listening" && l.worker === 3);
      assert.equal(await echoOnNewConnection(server, "after"), "You said: after");

      assert.equal(await server.stop("SIGTERM"), 0, "the primary exits 0 once every worker has drained");
      assert.equal(server.lines.filter((l) => l.msg === "worker exited" && l.code === 0).length, 2);
      assert.ok(!existsSync(socket), "the socket file is removed");
    } finally {
      if (server.child.exitCode === null) await server.stop("SIGKILL");
    }
  });

  it("a worker that cannot listen stops the whole server with exit code 1 (no restart loop)", async () => {
    const taken = net.createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const error = await startServerProcess(["--workers", "2", "--listen", `127.0.0.1:${port}`]).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof Error, "the server did not start");
      assert.match(error.message, /a worker failed to start: stopping/);
      assert.doesNotMatch(error.message, /starting a new one/);
    } finally {
      taken.close();
    }
  });
});
