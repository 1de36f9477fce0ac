import { mkdirSync } from "node:fs";

/** Runs one statement; rows as plain objects. */
export type Query = <T extends Record<string, unknown>>(text: string, params?: readonly unknown[]) => Promise<T[]>;

/** A PostgreSQL connection (embedded or real) as the SQL user store needs it. */
export interface SqlDriver {
  /** "pglite" or "postgres", for logs. */
  readonly kind: string;
  readonly query: Query;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (query: Query) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * Embedded PostgreSQL (PGlite, WebAssembly) persisted in `dataDir`. One
 * process only: PGlite does not share a data directory.
 */
export async function openPglite(dataDir: string): Promise<SqlDriver> {
  mkdirSync(dataDir, { recursive: true });
  // PGlite's type declarations need the DOM and Emscripten typings, which a
  // Node project does not load (skipLibCheck is off): import it untyped and
  // describe the little used here.
  const specifier = "@electric-sql/pglite";
  const { PGlite } = (await import(specifier)) as { PGlite: { create(dataDir: string): Promise<PgliteDb> } };
  const db = await PGlite.create(dataDir);
  const query: Query = async (text, params = []) => (await db.query(text, params as unknown[])).rows as never;
  return {
    kind: "pglite",
    query,
    transaction: (fn) => db.transaction((tx) => fn(async (text, params = []) => (await tx.query(text, params as unknown[])).rows as never)),
    close: () => db.close(),
  };
}

/** A real PostgreSQL server through a `pg` pool (`DATABASE_URL`). */
export async function openPostgres(connectionString: string): Promise<SqlDriver> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString, max: 10, connectionTimeoutMillis: 5000 });
  // An idle client losing its server must not take the process down.
  pool.on("error", () => undefined);
  const query: Query = async (text, params = []) => (await pool.query(text, params as unknown[])).rows;
  return {
    kind: "postgres",
    query,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn(async (text, params = []) => (await client.query(text, params as unknown[])).rows);
        await client.query("COMMIT");
        return result;
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

// The part of PGlite's API used above.
interface PgliteQueryable {
  query(text: string, params: unknown[]): Promise<{ rows: unknown[] }>;
}
interface PgliteDb extends PgliteQueryable {
  transaction<T>(fn: (tx: PgliteQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
