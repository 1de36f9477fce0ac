import { keysetPages } from "./keyset-pages.js";
import type { SqlDriver } from "./sql-driver.js";
import { type NewUser, type StoredUser, UsernameTakenError, type UserStore, UserStoreUnavailableError } from "./user-store.js";

// Schema versions, applied in order, each once (recorded in users_schema).
// Never edit one that has shipped: add the next.
const migrations: readonly string[] = [
  `CREATE TABLE users (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     username text NOT NULL UNIQUE,
     email text,
     password_hash text,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
];

// Any value: the key of the advisory lock that lets one server at a time migrate.
const migrationLockKey = 0x7479_6b31;
// GetUsers reads the table in pages of this many rows, in id order.
const pageSize = 100;

interface UserRow extends Record<string, unknown> {
  id: number | string;
  username: string;
  email: string | null;
  password_hash: string | null;
}

const columns = "id, username, email, password_hash";

/**
 * The UserStore in SQL, for PostgreSQL semantics (PGlite or a real server):
 * the database enforces unique usernames and hands out ids from an
 * identity sequence, so concurrent creates, from any number of servers on
 * one database, never share an id or a username. Ids are increasing but
 * may skip (a failed insert uses one up). Database failures become
 * UserStoreUnavailableError.
 */
export class SqlUserStore implements UserStore {
  private constructor(readonly driver: SqlDriver) {}

  /** Opens the store: creates or migrates the schema to the current version. */
  static async open(driver: SqlDriver): Promise<SqlUserStore> {
    await unavailableOnError("migrating the users schema", () =>
      driver.transaction(async (query) => {
        await query("SELECT pg_advisory_xact_lock($1)", [migrationLockKey]);
        await query("CREATE TABLE IF NOT EXISTS users_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
        const [row] = await query<{ version: number | null }>("SELECT max(version) AS version FROM users_schema");
        for (let v = (row?.version ?? 0) + 1; v <= migrations.length; v++) {
          await query(migrations[v - 1]!);
          await query("INSERT INTO users_schema (version) VALUES ($1)", [v]);
        }
      }),
    );
    return new SqlUserStore(driver);
  }

  /** The schema version this code writes. */
  static readonly schemaVersion = migrations.length;

  /** Closes the database connection (PGlite: flushes and releases its data directory). */
  close(): Promise<void> {
    return this.driver.close();
  }

  async create(user: NewUser): Promise<StoredUser> {
    try {
      const [row] = await this.driver.query<UserRow>(`INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3) RETURNING ${columns}`, [
        user.username,
        user.email ?? null,
        user.passwordHash ?? null,
      ]);
      return toStored(row!);
    } catch (e) {
      if ((e as { code?: string }).code === "23505") {
        throw new UsernameTakenError(user.username); // unique_violation
      }
      throw new UserStoreUnavailableError(`users database: ${(e as Error).message}`, { cause: e });
    }
  }

  findById(id: number): Promise<StoredUser | undefined> {
    return this.#one("WHERE id = $1", [id]);
  }

  findByUsername(username: string): Promise<StoredUser | undefined> {
    return this.#one("WHERE username = $1", [username]);
  }

  list(signal: AbortSignal): AsyncIterable<StoredUser> {
    return keysetPages(signal, pageSize, async (after) =>
      (
        await unavailableOnError("listing users", () =>
          this.driver.query<UserRow>(`SELECT ${columns} FROM users WHERE id > $1 ORDER BY id LIMIT ${pageSize}`, [after]),
        )
      ).map(toStored),
    );
  }

  async #one(where: string, params: unknown[]): Promise<StoredUser | undefined> {
    const [row] = await unavailableOnError("reading a user", () => this.driver.query<UserRow>(`SELECT ${columns} FROM users ${where}`, params));
    return row && toStored(row);
  }
}

function toStored(row: UserRow): StoredUser {
  return {
    id: Number(row.id), // bigint arrives as a string from pg
    username: row.username,
    ...(row.email !== null && { email: row.email }),
    ...(row.password_hash !== null && { passwordHash: row.password_hash }),
  };
}

async function unavailableOnError<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new UserStoreUnavailableError(`users database, ${what}: ${(e as Error).message}`, { cause: e });
  }
}
