import { existsSync, mkdirSync } from "node:fs";
import { isBuiltin } from "node:module";
import { join } from "node:path";
import { keysetPages } from "./keyset-pages.js";
import { type NewUser, type StoredUser, UsernameTakenError, type UserStore, UserStoreUnavailableError } from "./user-store.js";

/** Whether this Node.js has `node:sqlite` (22.13 and newer; not 20). */
export const sqliteAvailable = isBuiltin("node:sqlite");

/** The database file inside the `--users-data` directory. */
export const sqliteFileName = "users.sqlite";

// Schema versions, applied in order, each once (recorded in users_schema).
// Never edit one that has shipped: add the next.
const migrations: readonly string[] = [
  `CREATE TABLE users (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     username TEXT NOT NULL UNIQUE,
     email TEXT,
     password_hash TEXT,
     created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
   )`,
];

// GetUsers reads the table in pages of this many rows, in id order.
const pageSize = 100;
// SQLITE_CONSTRAINT_UNIQUE: the username is taken.
const constraintUnique = 2067;
// How long a write waits for another process's (another worker's) write lock.
const busyTimeoutMs = 5000;

interface UserRow {
  id: number;
  username: string;
  email: string | null;
  password_hash: string | null;
}

const columns = "id, username, email, password_hash";

/**
 * The UserStore in an SQLite file, through Node's built-in `node:sqlite`:
 * no dependency, a few MiB of memory, opened in milliseconds. WAL with
 * `synchronous = FULL`: a CreateUser that was answered is on disk, even
 * after a power loss. Several processes may share the file (`--workers`):
 * SQLite's locks make each insert atomic, the UNIQUE constraint keeps
 * usernames unique and AUTOINCREMENT never hands out an id twice. Ids are
 * 1, 2, 3, ... with no gaps: a refused insert uses none.
 */
export class SqliteUserStore implements UserStore {
  readonly #db: SqliteDatabase;
  readonly #insert: SqliteStatement;
  readonly #byId: SqliteStatement;
  readonly #byName: SqliteStatement;
  readonly #page: SqliteStatement;

  private constructor(
    db: SqliteDatabase,
    /** The database file. */
    readonly file: string,
  ) {
    this.#db = db;
    this.#insert = db.prepare(`INSERT INTO users (username, email, password_hash) VALUES (?, ?, ?) RETURNING ${columns}`);
    this.#byId = db.prepare(`SELECT ${columns} FROM users WHERE id = ?`);
    this.#byName = db.prepare(`SELECT ${columns} FROM users WHERE username = ?`);
    this.#page = db.prepare(`SELECT ${columns} FROM users WHERE id > ? ORDER BY id LIMIT ${pageSize}`);
  }

  /** Opens (creating if needed) `dataDir/users.sqlite` and migrates its schema. */
  static async open(dataDir: string): Promise<SqliteUserStore> {
    // A directory the PGlite store wrote: serving an empty SQLite store
    // beside it would hide every user it holds.
    if (existsSync(join(dataDir, "PG_VERSION")) && !existsSync(join(dataDir, sqliteFileName))) {
      throw new UserStoreUnavailableError(`${dataDir} holds a PGlite users store: start with --users-store pglite to serve it, or choose another --users-data`);
    }
    if (!sqliteAvailable) {
      throw new UserStoreUnavailableError(`the sqlite users store needs node:sqlite (Node.js 22.13 or newer; this is ${process.version})`);
    }
    mkdirSync(dataDir, { recursive: true });
    // A variable specifier: TypeScript's node 20 types have no node:sqlite.
    const specifier = "node:sqlite";
    const { DatabaseSync } = (await import(specifier)) as { DatabaseSync: new (path: string) => SqliteDatabase };
    const file = join(dataDir, sqliteFileName);
    const db = new DatabaseSync(file);
    try {
      db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
      // Workers opening a new file together: switching it to WAL needs the
      // file to themselves, and SQLite answers "locked" at once (no busy
      // wait) to the ones that lose. WAL is then the file's mode for good.
      await retryWhileBusy(() => db.exec("PRAGMA journal_mode = WAL"));
      db.exec("PRAGMA synchronous = FULL");
      await retryWhileBusy(() => migrate(db));
      return new SqliteUserStore(db, file);
    } catch (e) {
      db.close();
      throw new UserStoreUnavailableError(`users database ${file}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The schema version this code writes. */
  static readonly schemaVersion = migrations.length;

  /** Closes the database file. */
  async close(): Promise<void> {
    this.#db.close();
  }

  async create(user: NewUser): Promise<StoredUser> {
    try {
      return toStored(this.#insert.get(user.username, user.email ?? null, user.passwordHash ?? null) as UserRow);
    } catch (e) {
      if ((e as { errcode?: number }).errcode === constraintUnique) throw new UsernameTakenError(user.username);
      throw new UserStoreUnavailableError(`users database: ${(e as Error).message}`, { cause: e });
    }
  }

  async findById(id: number): Promise<StoredUser | undefined> {
    return this.#one(this.#byId, id);
  }

  async findByUsername(username: string): Promise<StoredUser | undefined> {
    return this.#one(this.#byName, username);
  }

  list(signal: AbortSignal): AsyncIterable<StoredUser> {
    return keysetPages(signal, pageSize, (after) => unavailableOnError("listing users", () => this.#page.all(after) as UserRow[]).map(toStored));
  }

  #one(statement: SqliteStatement, key: number | string): StoredUser | undefined {
    const row = unavailableOnError("reading a user", () => statement.get(key) as UserRow | undefined);
    return row && toStored(row);
  }
}

// One migrator at a time, across processes: BEGIN IMMEDIATE takes the write lock first.
function migrate(db: SqliteDatabase): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec("CREATE TABLE IF NOT EXISTS users_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))");
    const row = db.prepare("SELECT max(version) AS version FROM users_schema").get() as { version: number | null };
    for (let v = (row.version ?? 0) + 1; v <= migrations.length; v++) {
      db.exec(migrations[v - 1]!);
      db.prepare("INSERT INTO users_schema (version) VALUES (?)").run(v);
    }
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
}

// SQLITE_BUSY and SQLITE_LOCKED (primary codes, below any extended code's bits).
const busyCodes = new Set([5, 6]);

async function retryWhileBusy(fn: () => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return fn();
    } catch (e) {
      const code = (e as { errcode?: number }).errcode;
      if (code === undefined || !busyCodes.has(code & 0xff) || attempt * 50 >= busyTimeoutMs) throw e;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function toStored(row: UserRow): StoredUser {
  return {
    id: row.id,
    username: row.username,
    ...(row.email !== null && { email: row.email }),
    ...(row.password_hash !== null && { passwordHash: row.password_hash }),
  };
}

function unavailableOnError<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new UserStoreUnavailableError(`users database, ${what}: ${(e as Error).message}`, { cause: e });
  }
}

// The part of node:sqlite's API used above.
interface SqliteStatement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): unknown;
}
interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  close(): void;
}
