/** A user as the store keeps it. */
export interface StoredUser {
  /** Server-assigned: 1, 2, 3, ... in creation order. */
  readonly id: number;
  readonly username: string;
  readonly email?: string;
  /** Salted scrypt hash (see password.ts); never the password itself. */
  readonly passwordHash?: string;
}

/** What CreateUser hands to the store; the store assigns the id. */
export type NewUser = Omit<StoredUser, "id">;

/** Thrown by UserStore.create when the username is taken. */
export class UsernameTakenError extends Error {
  override name = "UsernameTakenError";
  constructor(readonly username: string) {
    super(`username "${username}" is already taken`);
  }
}

/**
 * Storage behind the Users service. Implementations must make `create`
 * atomic: unique usernames and distinct, increasing ids under concurrency.
 */
export interface UserStore {
  /** Stores a new user; throws UsernameTakenError when the username exists. */
  create(user: NewUser): Promise<StoredUser>;
  findById(id: number): Promise<StoredUser | undefined>;
  findByUsername(username: string): Promise<StoredUser | undefined>;
  /** Every user in id order; stops early when `signal` aborts. */
  list(signal: AbortSignal): AsyncIterable<StoredUser>;
}

/** Thrown by a UserStore that cannot be reached or failed: the Users service answers UNAVAILABLE. */
export class UserStoreUnavailableError extends Error {
  override name = "UserStoreUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
