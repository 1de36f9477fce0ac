import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Echo } from "../../gen/echo_pb.js";
import { Users } from "../../gen/users_pb.js";
import { sqliteAvailable } from "../../src/users/sqlite-user-store.js";
import { freshPostgres } from "../helpers/postgres.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// The Users store behind real server processes: it survives restarts, opens
// only when used, is shared by servers on one PostgreSQL, and reports a
// database it cannot reach as UNAVAILABLE.

const dir = mkdtempSync(join(tmpdir(), "users-durable-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const users = (server: ServerProcess) => createClient(Users, createGrpcTransport({ baseUrl: server.baseUrl }));
const listAll = async (server: ServerProcess) => {
  const out: Array<[number, string]> = [];
  for await (const r of users(server).getUsers({})) out.push([r.user!.userId, r.user!.username]);
  return out;
};

// The embedded stores, each as a user selects it; SQLite needs node:sqlite (Node.js 22.13+).
const embedded = [
  { kind: "sqlite", available: sqliteAvailable },
  { kind: "pglite", available: true },
] as const;

for (const { kind, available } of embedded) {
  describe(`durable Users store: ${kind}`, {
    skip: !available && `node:sqlite needs Node.js 22.13 or newer (this is ${process.version}); CI's Node 24 run covers it`,
  }, () => {
    it("users survive a restart; ids go on from where they were", async () => {
      const args = ["--users-store", kind, "--users-data", join(dir, kind, "restart")];
      const first = await startServerProcess(args);
      for (const username of ["alexa", "christie", "tom"]) await users(first).createUser({ username });
      const opened = await first.waitForLog((l) => l.msg === "users store open");
      assert.equal(typeof opened.ms, "number");
      assert.equal(await first.stop(), 0);

      const second = await startServerProcess(args);
      try {
        assert.deepEqual(await listAll(second), [
          [1, "alexa"],
          [2, "christie"],
          [3, "tom"],
        ]);
        assert.equal((await users(second).createUser({ username: "dan" })).user?.userId, 4);
        await assert.rejects(users(second).createUser({ username: "tom" }), (e) => ConnectError.from(e).code === Code.AlreadyExists);
      } finally {
        assert.equal(await second.stop(), 0);
      }
    });

    it("every CreateUser that was answered survives kill -9", async () => {
      const args = ["--users-store", kind, "--users-data", join(dir, kind, "crash")];
      const first = await startServerProcess(args);
      // Creates one after another until the process dies; what was acknowledged is recorded.
      const acknowledged: string[] = [];
      const creating = (async () => {
        for (let i = 0; i < 10_000; i++) {
          const username = `crash${i}`;
          await users(first).createUser({ username });
          acknowledged.push(username);
        }
      })().catch(() => undefined);
      // Let a good number of creates land (bounded: the first open of PGlite is slow).
      for (let i = 0; i < 600 && acknowledged.length < 20; i++) await sleep(100);
      assert.ok(acknowledged.length >= 20, `only ${acknowledged.length} creates answered in 60 s`);
      first.child.kill("SIGKILL");
      await first.exited;
      await creating;

      const second = await startServerProcess(args);
      try {
        const listed = new Set((await listAll(second)).map(([, name]) => name));
        const lost = acknowledged.filter((name) => !listed.has(name));
        assert.deepEqual(lost, [], `${acknowledged.length} acknowledged, ${lost.length} lost`);
      } finally {
        assert.equal(await second.stop(), 0);
      }
    });

    it("opens lazily: a server that only serves other calls never creates the data directory; --users-store-open start opens it first", async () => {
      const lazyDir = join(dir, kind, "lazy");
      const lazy = await startServerProcess(["--users-store", kind, "--users-data", lazyDir]);
      try {
        await createClient(Echo, createGrpcTransport({ baseUrl: lazy.baseUrl })).reply({ message: "no users here" });
        assert.equal(existsSync(lazyDir), false);
        assert.equal(
          lazy.lines.some((l) => l.msg === "users store open"),
          false,
        );
      } finally {
        assert.equal(await lazy.stop(), 0);
      }
      const eagerDir = join(dir, kind, "eager");
      // startServerProcess waits up to 60 s for "server listening": a new PGlite directory took 8 s on a loaded machine.
      const eager = await startServerProcess(["--users-store", kind, "--users-data", eagerDir, "--users-store-open", "start"]);
      try {
        assert.ok(existsSync(eagerDir));
        const open = eager.lines.findIndex((l) => l.msg === "users store open");
        const listening = eager.lines.findIndex((l) => l.msg === "server listening");
        assert.ok(open >= 0 && open < listening, "opened before listening");
      } finally {
        assert.equal(await eager.stop(), 0);
      }
    });
  });
}

describe("durable Users store: shared", () => {
  it("SQLite under --workers 2: parallel CreateUser from both workers never hands out an id or a username twice", {
    skip: !sqliteAvailable && "node:sqlite needs Node.js 22.13 or newer",
  }, async () => {
    const server = await startServerProcess(["--workers", "2", "--users-store", "sqlite", "--users-data", join(dir, "sqlite-workers")]);
    try {
      await server.waitForLog((l) => l.msg === "server listening" && l.worker === 2, 60_000);
      await server.waitForLog((l) => l.msg === "server listening" && l.worker === 1, 60_000);
      // Separate connections: node:cluster hands them to the workers in turn.
      const clients = Array.from({ length: 4 }, () => createClient(Users, createGrpcTransport({ baseUrl: server.baseUrl })));
      const names = Array.from({ length: 40 }, (_, i) => `user${i}`);
      const results = await Promise.allSettled(names.flatMap((username) => clients.map((c) => c.createUser({ username }))));
      const created = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.user!] : []));
      const otherErrors = results.flatMap((r) =>
        r.status === "rejected" && ConnectError.from(r.reason).code !== Code.AlreadyExists ? [ConnectError.from(r.reason).message] : [],
      );
      assert.deepEqual(otherErrors, [], "refusals are ALREADY_EXISTS only");
      assert.equal(created.length, names.length, "one success per username");
      assert.deepEqual(
        created.map((u) => u.userId).sort((a, b) => a - b),
        names.map((_, i) => i + 1),
        "ids 1..40, each once",
      );
      // Log lines arrive in batches: wait (bounded) for both workers' lines.
      const openedBy = () => new Set(server.lines.filter((l) => l.msg === "users store open").map((l) => l.worker));
      await server.waitForLog(() => openedBy().size === 2, 20_000).catch(() => undefined);
      assert.deepEqual(openedBy(), new Set([1, 2]), "both workers served CreateUser");
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("a database it cannot reach: UNAVAILABLE with a log line, and the server keeps serving", async () => {
    const server = await startServerProcess(["--users-store", "postgres", "--database-url", "postgres://nobody:x@127.0.0.1:1/none"]);
    try {
      await assert.rejects(users(server).createUser({ username: "x" }), (e) => ConnectError.from(e).code === Code.Unavailable);
      await assert.rejects(listAll(server), (e) => ConnectError.from(e).code === Code.Unavailable);
      await server.waitForLog((l) => l.msg === "cannot open the users store");
      assert.equal((await createClient(Echo, createGrpcTransport({ baseUrl: server.baseUrl })).reply({ message: "up" })).message, "You said: up");
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("two servers on one PostgreSQL: parallel CreateUser never hands out an id or a username twice", async (t) => {
    const db = await freshPostgres(t);
    if (!db) return;
    const args = ["--users-store", "postgres", "--database-url", db.url];
    const [a, b] = await Promise.all([startServerProcess(args), startServerProcess(args)]);
    try {
      const names = Array.from({ length: 30 }, (_, i) => `user${i}`);
      // Every name sent to both servers at once: exactly one of each pair may win.
      const results = await Promise.allSettled(names.flatMap((username) => [users(a).createUser({ username }), users(b).createUser({ username })]));
      const created = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.user!] : []));
      const refused = results.filter((r) => r.status === "rejected");
      assert.equal(created.length, names.length, "one success per username");
      assert.ok(refused.every((r) => ConnectError.from((r as PromiseRejectedResult).reason).code === Code.AlreadyExists));
      assert.equal(new Set(created.map((u) => u.userId)).size, names.length, "distinct ids");
      assert.deepEqual(new Set(created.map((u) => u.username)), new Set(names));
      // Both servers see the same table.
      assert.deepEqual(await listAll(a), await listAll(b));
    } finally {
      assert.equal(await a.stop(), 0);
      assert.equal(await b.stop(), 0);
      await db.drop();
    }
  });
});
