import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it, type TestContext } from "node:test";
import { MemoryUserStore } from "../../src/users/memory-user-store.js";
import { openPglite, openPostgres } from "../../src/users/sql-driver.js";
import { SqlUserStore } from "../../src/users/sql-user-store.js";
import { SqliteUserStore, sqliteAvailable } from "../../src/users/sqlite-user-store.js";
import { UsernameTakenError, type UserStore, UserStoreUnavailableError } from "../../src/users/user-store.js";
import { freshPostgres } from "../helpers/postgres.js";

// One suite, every store: memory, SQLite (node:sqlite), embedded PGlite, and a real PostgreSQL server.

const dir = mkdtempSync(join(tmpdir(), "user-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Backend {
  readonly name: string;
  /** A new, empty store and a way to reopen the same data; undefined when the backend is not available (skipped). */
  open(t: TestContext): Promise<{ store: UserStore; reopen?: () => Promise<UserStore>; done(): Promise<void> } | undefined>;
  /** The schema versions recorded in the store (SQL stores). */
  schemaVersions?(store: UserStore): Promise<number[]>;
}

const sqlVersions = async (store: UserStore) =>
  (await (store as SqlUserStore).driver.query<{ version: number }>("SELECT version FROM users_schema")).map((v) => v.version);

const backends: Backend[] = [
  { name: "memory", open: async () => ({ store: new MemoryUserStore(), done: async () => undefined }) },
  {
    name: "SQLite",
    async open(t) {
      if (!sqliteAvailable) {
        t.skip(`node:sqlite needs Node.js 22.13 or newer (this is ${process.version}); CI's Node 24 run covers it`);
        return undefined;
      }
      const dataDir = mkdtempSync(join(dir, "sqlite-"));
      let store = await SqliteUserStore.open(dataDir);
      return {
        store,
        reopen: async () => {
          await store.close();
          store = await SqliteUserStore.open(dataDir);
          return store;
        },
        done: () => store.close(),
      };
    },
    async schemaVersions(store) {
      // A second connection to the same file, as another worker would have.
      const { DatabaseSync } = (await import("node:" + "sqlite")) as {
        DatabaseSync: new (path: string) => { prepare(sql: string): { all(): Array<{ version: number }> }; close(): void };
      };
      const db = new DatabaseSync((store as SqliteUserStore).file);
      try {
        return db
          .prepare("SELECT version FROM users_schema")
          .all()
          .map((r) => r.version);
      } finally {
        db.close();
      }
    },
  },
  {
    name: "PGlite",
    schemaVersions: sqlVersions,
    async open() {
      const dataDir = mkdtempSync(join(dir, "pglite-"));
      let store = await SqlUserStore.open(await openPglite(dataDir));
      return {
        store,
        reopen: async () => {
          await store.close();
          store = await SqlUserStore.open(await openPglite(dataDir));
          return store;
        },
        done: () => store.close(),
      };
    },
  },
  {
    name: "PostgreSQL",
    schemaVersions: sqlVersions,
    async open(t) {
      const db = await freshPostgres(t);
      if (db === undefined) return undefined;
      let store = await SqlUserStore.open(await openPostgres(db.url));
      return {
        store,
        reopen: async () => {
          await store.close();
          store = await SqlUserStore.open(await openPostgres(db.url));
          return store;
        },
        done: async () => {
          await store.close();
          await db.drop();
        },
      };
    },
  },
];

type Opened = NonNullable<Awaited<ReturnType<Backend["open"]>>>;

/** Runs `fn` on a new store of `backend` and closes it after; skips when the backend is not available. */
async function withStore(backend: Backend, t: TestContext, fn: (opened: Opened) => Promise<void>): Promise<void> {
  const opened = await backend.open(t);
  if (!opened) return;
  try {
    await fn(opened);
  } finally {
    await opened.done();
  }
}

for (const backend of backends) {
  describe(`user store: ${backend.name}`, () => {
    it("ids 1, 2, 3 in creation order, increasing after; unique names; lookups; fields round-trip", (t) =>
      withStore(backend, t, async ({ store }) => {
        const a = await store.create({ username: "a", email: "a@example.com", passwordHash: "scrypt$x" });
        const b = await store.create({ username: "b" });
        const c = await store.create({ username: "c" });
        assert.deepEqual([a.id, b.id, c.id], [1, 2, 3]);
        await assert.rejects(store.create({ username: "b" }), UsernameTakenError);
        const d = await store.create({ username: "d" });
        assert.ok(d.id > c.id, "later ids are larger (a sequence may skip the one a failed insert used)");
        assert.deepEqual(await store.findById(1), { id: 1, username: "a", email: "a@example.com", passwordHash: "scrypt$x" });
        assert.deepEqual(await store.findByUsername("b"), { id: 2, username: "b" });
        assert.equal(await store.findById(999), undefined);
        assert.equal(await store.findByUsername("nobody"), undefined);
      }));

    it("concurrent creates: distinct ids, and one winner per username", (t) =>
      withStore(backend, t, async ({ store }) => {
        const distinct = await Promise.all(Array.from({ length: 40 }, (_, i) => store.create({ username: `user${i}` })));
        assert.equal(new Set(distinct.map((u) => u.id)).size, 40);
        const same = await Promise.allSettled(Array.from({ length: 20 }, () => store.create({ username: "contested" })));
        assert.equal(same.filter((r) => r.status === "fulfilled").length, 1);
        assert.ok(same.every((r) => r.status === "fulfilled" || r.reason instanceof UsernameTakenError));
      }));

    it("list: every user in id order across pages, and it stops when aborted", (t) =>
      withStore(backend, t, async ({ store }) => {
        for (let i = 0; i < 250; i++) await store.create({ username: `u${String(i).padStart(3, "0")}` });
        const ids: number[] = [];
        for await (const u of store.list(new AbortController().signal)) ids.push(u.id);
        assert.equal(ids.length, 250);
        assert.deepEqual(
          ids,
          [...ids].sort((x, y) => x - y),
        );
        const ac = new AbortController();
        const seen: number[] = [];
        await assert.rejects(
          (async () => {
            for await (const u of store.list(ac.signal)) {
              seen.push(u.id);
              if (seen.length === 3) ac.abort();
            }
          })(),
        );
        assert.equal(seen.length, 3);
      }));

    if (backend.name !== "memory") {
      it("reopening keeps the users and the schema version (migrations run once)", (t) =>
        withStore(backend, t, async (opened) => {
          await opened.store.create({ username: "kept" });
          const again = await opened.reopen!();
          assert.equal((await again.findByUsername("kept"))?.id, 1);
          assert.equal((await again.create({ username: "next" })).id, 2);
          assert.deepEqual(await backend.schemaVersions!(again), [backend.name === "SQLite" ? SqliteUserStore.schemaVersion : SqlUserStore.schemaVersion]);
        }));
    }
  });
}

describe("user store failures", () => {
  it("SQLite refuses a directory that holds PGlite's data (it would hide those users), naming the way out", async () => {
    const dataDir = mkdtempSync(join(dir, "was-pglite-"));
    await (await SqlUserStore.open(await openPglite(dataDir))).close();
    await assert.rejects(
      SqliteUserStore.open(dataDir),
      (e: Error) => e instanceof UserStoreUnavailableError && e.message.includes(`${dataDir} holds a PGlite users store: start with --users-store pglite`),
    );
  });

  it("a database that cannot be reached is UserStoreUnavailableError", async () => {
    const driver = await openPostgres("postgres://nobody:x@127.0.0.1:1/none");
    await assert.rejects(SqlUserStore.open(driver), (e: Error) => e instanceof UserStoreUnavailableError && /users database, migrating/.test(e.message));
    await driver.close();
  });
});
