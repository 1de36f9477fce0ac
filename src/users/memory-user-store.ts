import { type NewUser, type StoredUser, UsernameTakenError, type UserStore } from "./user-store.js";

/** A UserStore in process memory: for demos and tests; lost on restart. */
export class MemoryUserStore implements UserStore {
  // Insertion order is id order, so a Map keeps `list` ordered for free.
  readonly #byId = new Map<number, StoredUser>();
  readonly #byName = new Map<string, StoredUser>();
  #lastId = 0;

  async create(user: NewUser): Promise<StoredUser> {
    // Check and insert with no await in between: atomic on the event loop.
    if (this.#byName.has(user.username)) {
      throw new UsernameTakenError(user.username);
    }
    const stored: StoredUser = { ...user, id: ++this.#lastId };
    this.#byId.set(stored.id, stored);
    this.#byName.set(stored.username, stored);
    return stored;
  }

  async findById(id: number): Promise<StoredUser | undefined> {
    return this.#byId.get(id);
  }

  async findByUsername(username: string): Promise<StoredUser | undefined> {
    return this.#byName.get(username);
  }

  async *list(signal: AbortSignal): AsyncIterable<StoredUser> {
    for (const user of [...this.#byId.values()]) {
      signal.throwIfAborted();
      yield user;
    }
  }
}
