import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { MemoryUserStore } from "../../src/users/memory-user-store.js";
import { hashPassword, verifyPassword } from "../../src/users/password.js";
import { UsernameTakenError } from "../../src/users/user-store.js";
import { validateEmail, validatePassword, validateUsername } from "../../src/users/validate.js";

const invalid = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e) => e instanceof ConnectError && e.code === Code.InvalidArgument && message.test(e.rawMessage));

describe("users: validation, passwords, memory store", () => {
  it("username: required, trimmed, bounded, no control characters", () => {
    assert.equal(validateUsername("tom"), "tom");
    assert.equal(validateUsername("Zoë Ångström"), "Zoë Ångström");
    invalid(() => validateUsername(""), /required/);
    invalid(() => validateUsername("  "), /required/);
    invalid(() => validateUsername(" tom"), /whitespace/);
    invalid(() => validateUsername("x".repeat(129)), /at most 128/);
    invalid(() => validateUsername("to\nm"), /control/);
    // Counted in code points: 128 emoji are 256 UTF-16 units and fit.
    assert.equal(validateUsername("😀".repeat(128)).length, 256);
    invalid(() => validateUsername("😀".repeat(129)), /at most 128/);
    invalid(() => validateUsername(" ".repeat(10_000)), /at most 128/);
  });

  it("password: at most 1024 characters (scrypt reads all of it)", () => {
    assert.equal(validatePassword("p".repeat(1024)).length, 1024);
    invalid(() => validatePassword("p".repeat(1025)), /at most 1024/);
  });

  it("email: checked only for shape and length", () => {
    assert.equal(validateEmail("tom@example.com"), "tom@example.com");
    for (const bad of ["tom", "tom@", "@example.com", "tom@example", "tom @example.com", "a@b..c"]) {
      invalid(() => validateEmail(bad), /not a valid address/);
    }
    invalid(() => validateEmail(`${"a".repeat(250)}@example.com`), /at most 254/);
  });

  it("passwords are stored as salted scrypt hashes that verify", async () => {
    const a = await hashPassword("hunter2");
    const b = await hashPassword("hunter2");
    assert.match(a, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.notEqual(a, b, "a fresh salt each time");
    assert.ok(!a.includes("hunter2"));
    assert.equal(await verifyPassword("hunter2", a), true);
    assert.equal(await verifyPassword("hunter3", a), false);
    assert.equal(await verifyPassword("hunter2", "plain"), false);
  });

  it("memory store: ids 1, 2, 3 in creation order, unique names, listing in id order, stops on abort", async () => {
    const store = new MemoryUserStore();
    const made = await Promise.all(["a", "b", "c"].map((username) => store.create({ username })));
    assert.deepEqual(
      made.map((u) => u.id),
      [1, 2, 3],
    );
    await assert.rejects(store.create({ username: "b" }), UsernameTakenError);
    assert.equal((await store.create({ username: "d" })).id, 4, "a failed create uses no id");
    assert.equal((await store.findById(2))?.username, "b");
    assert.equal((await store.findByUsername("c"))?.id, 3);
    assert.equal(await store.findById(9), undefined);

    const ac = new AbortController();
    const listed: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const u of store.list(ac.signal)) {
          listed.push(u.id);
          if (u.id === 2) ac.abort();
        }
      })(),
    );
    assert.deepEqual(listed, [1, 2]);
  });
});
