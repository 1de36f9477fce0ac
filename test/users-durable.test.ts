import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Echo } from "../gen/echo_pb.js";
import { Users } from "../gen/users_pb.js";
import { freshPostgres } from "./helpers/postgres.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";

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

describe("durable Users store", () => {
  it("PGlite: users survive a restart; ids go on from where they were", async () => {
    const args = ["--users-store", "pglite", "--users-data", join(dir, "restart")];
    const first = await startServerProcess(args);
    for (const username of ["alexa", "christie", "tom"]) await users(first).createUser({ username });
    const opened = await first.waitForLog((l) => l.msg === "users store open");
    assert.equal(typeof opened.ms, "number");
    assert.equal(await first.stop(), 0);

    const second = await startServerProcess(args);
    try {
      assert.deepEqual(await listAll(second), [[1, "alexa"], [2, "christie"], [3, "tom"]]);
      assert.equal((await users(second).createUser({ username: "dan" })).user?.userId, 4);
      await assert.rejects(users(second).createUser({ username: "tom" }), (e) => ConnectError.from(e).code === Code.AlreadyExists);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });

  it("opens lazily: a server that only serves other calls never creates the data directory; --users-store-open start opens it first", async () => {
    const lazyDir = join(dir, "lazy");
    const lazy = await startServerProcess(["--users-store", "pglite", "--users-data", lazyDir]);
    try {
      await createClient(Echo, createGrpcTransport({ baseUrl: lazy.baseUrl })).reply({ message: "no users here" });
      assert.equal(existsSync(lazyDir), false);
      assert.equal(lazy.lines.some((l) => l.msg === "users store open"), false);
    } finally {
      assert.equal(await lazy.stop(), 0);
    }
    const eagerDir = join(dir, "eager");
    const eager = await startServerProcess(["--users-store", "pglite", "--users-data", eagerDir, "--users-store-open", "start"]);
    try {
      assert.ok(existsSync(eagerDir));
      const open = eager.lines.findIndex((l) => l.msg === "users store open");
      const listening = eager.lines.findIndex((l) => l.msg === "server listening");
      assert.ok(open >= 0 && open < listening, "opened before listening");
    } finally {
      assert.equal(await eager.stop(), 0);
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
