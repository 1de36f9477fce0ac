import type { StoredUser } from "./user-store.js";

/**
 * Every user in id order, read `pageSize` at a time after the last id seen
 * (keyset pages: memory stays flat whatever the table's size, no read holds
 * a lock between pages, and rows added meanwhile with higher ids are still
 * listed); stops when `signal` aborts. The SQL stores' `list`.
 */
export async function* keysetPages(
  signal: AbortSignal,
  pageSize: number,
  page: (afterId: number) => Promise<readonly StoredUser[]> | readonly StoredUser[],
): AsyncIterable<StoredUser> {
  let after = 0;
  for (;;) {
    signal.throwIfAborted();
    const users = await page(after);
    for (const user of users) {
      signal.throwIfAborted();
      after = user.id;
      yield user;
    }
    if (users.length < pageSize) return;
  }
}
