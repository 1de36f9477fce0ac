import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Users } from "../../gen/users_pb.js";
import type { GetUsersRequest, User } from "../../gen/users_types_pb.js";
import type { Logger } from "../observability/logger.js";
import { metadataForLog } from "../rpc/metadata.js";
import { HashLimiter } from "../users/hash-limiter.js";
import { hashPassword } from "../users/password.js";
import { type StoredUser, UsernameTakenError, type UserStore, UserStoreUnavailableError } from "../users/user-store.js";
import { longerThanAnyUsername, maxUsernameLength, validateEmail, validatePassword, validateUsername } from "../users/validate.js";

/**
 * The tutorials' Users service (`/Users/CreateUser`, `/Users/GetUsers`),
 * backed by a UserStore. Password hashes run through `hashing`, which
 * bounds how many run at once.
 */
export function createUsersService(store: UserStore, logger: Logger, hashing = new HashLimiter()): ServiceImpl<typeof Users> {
  return {
    async createUser(req, ctx) {
      // The tutorial server prints the call metadata; we log it, minus credentials.
      logger.info({ rpc: "Users/CreateUser", metadata: metadataForLog(ctx.requestHeader) }, "create user");
      const username = validateUsername(req.username);
      const email = req.email === "" ? undefined : validateEmail(req.email);
      const password = req.password === "" ? undefined : validatePassword(req.password);
      try {
        // A taken name is refused before any hashing: a hash costs 16 MiB and
        // tens of milliseconds of a pool thread. (The store's create still
        // decides races between two calls for a free name.)
        if ((await store.findByUsername(username)) !== undefined) {
          throw new UsernameTakenError(username);
        }
        const passwordHash = password === undefined ? undefined : await hashing.run(ctx.signal, () => hashPassword(password));
        const user = await store.create({ username, ...(email && { email }), ...(passwordHash && { passwordHash }) });
        logger.info({ rpc: "Users/CreateUser", userId: user.id, username }, "user created");
        return { user: toUser(user) };
      } catch (e) {
        if (e instanceof UsernameTakenError) {
          throw new ConnectError(e.message, Code.AlreadyExists);
        }
        throw unavailable(e, logger);
      }
    },

    async *getUsers(req, ctx) {
      try {
        if (req.user.length === 0) {
          for await (const user of store.list(ctx.signal)) {
            yield { user: toUser(user) };
          }
          return;
        }
        const wanted = checkRequested(req);
        for (const want of wanted) {
          const user = await find(store, want);
          if (user === undefined) {
            throw new ConnectError(`user ${describe(want)} not found`, Code.NotFound);
          }
          throwIfEnded(ctx);
          yield { user: toUser(user) };
        }
      } catch (e) {
        throw unavailable(e, logger);
      }
    },
  };
}

// A store that cannot answer is UNAVAILABLE (the caller may retry), with
// the cause in the log; anything else passes through unchanged.
function unavailable(e: unknown, logger: Logger): unknown {
  if (!(e instanceof UserStoreUnavailableError)) return e;
  logger.error({ err: e }, "users store unavailable");
  return new ConnectError(e.message, Code.Unavailable);
}

function toUser(user: StoredUser) {
  return { username: user.username, userId: user.id };
}

// Rejects the whole request up front when an entry names nobody, rather than
// streaming part of the answer before saying the request was malformed.
function checkRequested(req: GetUsersRequest): User[] {
  req.user.forEach((u, i) => {
    if (u.userId === 0 && u.username === "") {
      throw new ConnectError(`user[${i}] needs a user_id or a username`, Code.InvalidArgument);
    }
  });
  return req.user;
}

function find(store: UserStore, want: User): Promise<StoredUser | undefined> {
  if (want.userId !== 0) {
    return store.findById(want.userId);
  }
  // A name no user can have is not looked up (it may be many MiB long).
  return longerThanAnyUsername(want.username) ? Promise.resolve(undefined) : store.findByUsername(want.username);
}

function describe(want: User): string {
  const name = longerThanAnyUsername(want.username) ? `${want.username.slice(0, maxUsernameLength)}...` : want.username;
  return want.userId !== 0 ? `with user_id ${want.userId}` : `"${name}"`;
}

// Stops a stream as soon as the client cancelled or the deadline passed,
// with the reason the framework recorded (CANCELED / DEADLINE_EXCEEDED).
function throwIfEnded(ctx: HandlerContext): void {
  if (ctx.signal.aborted) {
    throw ConnectError.from(ctx.signal.reason);
  }
}
