import type { TestContext } from "node:test";
import pg from "pg";

/**
 * A fresh schema on the PostgreSQL server named by TEST_DATABASE_URL, and a
 * connection string whose search_path is that schema (so every test starts
 * from an empty database). Without a reachable server the calling test is
 * skipped, with the reason in its output, except in CI, where it fails.
 */
export async function freshPostgres(t: TestContext): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const base = process.env.TEST_DATABASE_URL;
  const unavailable = (why: string) => {
    if (process.env.CI) throw new Error(`PostgreSQL is required in CI: ${why}`);
    t.skip(`no PostgreSQL server (${why}); .ci/run starts one and sets TEST_DATABASE_URL`);
    return undefined;
  };
  if (!base) return unavailable("TEST_DATABASE_URL is not set");
  const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (e) {
    return unavailable(`cannot connect: ${(e as Error).message}`);
  }
  const schema = `t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(base);
  url.searchParams.set("options", `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}
