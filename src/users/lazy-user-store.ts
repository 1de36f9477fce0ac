import type { Logger } from "../observability/logger.js";
import { type NewUser, type StoredUser, type UserStore, UserStoreUnavailableError } from "./user-store.js";

/** A store that may hold a connection to close. */
type ClosableStore = UserStore & { close?(): Promise<void> };

/**
 * A UserStore opened on first use, so that a server used only as a Tyk
 * plugin never pays for the database (PGlite takes seconds and hundreds
 * of MiB to open; see docs/performance.md). A failed open is reported as unavailable and
 * tried again on the next call.
 */
export class LazyUserStore implements UserStore {
  readonly #open: () => Promise<ClosableStore>;
  readonly #logger: Logger;
  #store: Promise<ClosableStore> | undefined;

  constructor(open: () => Promise<ClosableStore>, logger: Logger) {
    this.#open = open;
    this.#logger = logger;
  }

  /** Opens the store now (for `--users-store-open start`); rejects when it cannot. */
  async ready(): Promise<void> {
    await this.#get();
  }

  /** Closes the store if it was opened. */
  async close(): Promise<void> {
    const store = await this.#store?.catch(() => undefined);
    await store?.close?.();
  }

  async create(user: NewUser): Promise<StoredUser> {
    return (await this.#get()).create(user);
  }

  async findById(id: number): Promise<StoredUser | undefined> {
    return (await this.#get()).findById(id);
  }

  async findByUsername(username: string): Promise<StoredUser | undefined> {
    return (await this.#get()).findByUsername(username);
  }

  async *list(signal: AbortSignal): AsyncIterable<StoredUser> {
    yield* (await this.#get()).list(signal);
  }

  #get(): Promise<UserStore> {
    if (this.#store === undefined) {
      const started = performance.now();
      this.#store = this.#open().then(
        (store) => {
          this.#logger.info({ ms: Math.round(performance.now() - started), rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) }, "users store open");
          return store;
        },
        (e: unknown) => {
          this.#store = undefined; // the next call tries again
          this.#logger.error({ err: e }, "cannot open the users store");
          throw e instanceof UserStoreUnavailableError ? e : new UserStoreUnavailableError(`users store: ${(e as Error).message}`, { cause: e });
        },
      );
    }
    return this.#store;
  }
}
