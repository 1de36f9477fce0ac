import type { Logger } from "../observability/logger.js";
import { LazyUserStore } from "./lazy-user-store.js";
import { MemoryUserStore } from "./memory-user-store.js";
import { openPglite, openPostgres } from "./sql-driver.js";
import { SqlUserStore } from "./sql-user-store.js";
import { SqliteUserStore } from "./sqlite-user-store.js";

/** The Users store: an embedded database in a directory (SQLite or PGlite), a PostgreSQL server, or memory. */
export type UsersStoreConfig = (
  | { readonly kind: "sqlite" | "pglite"; readonly dataDir: string }
  | { readonly kind: "postgres"; readonly databaseUrl: string }
  | { readonly kind: "memory" }
) & {
  /** "lazy": at the first Users call (a pure Tyk plugin server never opens it); "start": before listening. */
  readonly open: "lazy" | "start";
};

/** The configured Users store, opened on first use (LazyUserStore); `ready()` opens it now. */
export function openUserStore(config: UsersStoreConfig, logger: Logger): LazyUserStore {
  const log = logger.child({ usersStore: config.kind });
  return new LazyUserStore(async () => {
    switch (config.kind) {
      case "memory":
        return new MemoryUserStore();
      case "sqlite":
        return SqliteUserStore.open(config.dataDir);
      case "pglite":
        return SqlUserStore.open(await openPglite(config.dataDir));
      case "postgres":
        return SqlUserStore.open(await openPostgres(config.databaseUrl));
    }
  }, log);
}
