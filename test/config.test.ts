import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { parseConfig } from "../src/config.js";
import { parseListenAddress } from "../src/listen-address.js";

describe("configuration", () => {
  it("defaults: [::]:50051, info, json, 10 s grace, 64 MiB messages", () => {
    assert.deepEqual(parseConfig([], {}), {
      listen: [{ kind: "tcp", host: "::", port: 50051 }],
      logLevel: "info",
      logFormat: "json",
      gracePeriodMs: 10_000,
      maxMessageBytes: 64 * 1024 * 1024,
    });
  });

  it("flags win over environment variables", () => {
    const env = { HOST: "127.0.0.1", PORT: "6000", LOG_LEVEL: "warn", GRACE_PERIOD: "2s" };
    assert.deepEqual(parseConfig([], env)?.listen, [{ kind: "tcp", host: "127.0.0.1", port: 6000 }]);
    const c = parseConfig(["--port", "7000", "--log-level", "debug", "--grace-period", "500ms"], env)!;
    assert.deepEqual(c.listen, [{ kind: "tcp", host: "127.0.0.1", port: 7000 }]);
    assert.equal(c.logLevel, "debug");
    assert.equal(c.gracePeriodMs, 500);
  });

  it("--listen (repeatable, or LISTEN comma-separated) overrides host and port", () => {
    const c = parseConfig(["--listen", "tcp://127.0.0.1:5555", "--listen", "unix:///tmp/x.sock", "--port", "1"], {})!;
    assert.deepEqual(c.listen, [
      { kind: "tcp", host: "127.0.0.1", port: 5555 },
      { kind: "unix", path: "/tmp/x.sock" },
    ]);
    assert.deepEqual(parseConfig([], { LISTEN: "[::1]:1, :2" })?.listen, [
      { kind: "tcp", host: "::1", port: 1 },
      { kind: "tcp", host: "::", port: 2 },
    ]);
  });

  it("listen address forms Tyk uses", () => {
    assert.deepEqual(parseListenAddress("[::]:50051"), { kind: "tcp", host: "::", port: 50051 });
    assert.deepEqual(parseListenAddress("localhost:9000"), { kind: "tcp", host: "localhost", port: 9000 });
    assert.throws(() => parseListenAddress("unix://relative.sock"), /absolute path/);
    assert.throws(() => parseListenAddress("127.0.0.1"), /invalid listen address/);
    assert.throws(() => parseListenAddress("1.2.3.4:70000"), /invalid listen address/);
  });

  it("sizes and durations with units; clear errors for bad values", () => {
    assert.equal(parseConfig(["--max-message-size", "512KiB"], {})?.maxMessageBytes, 512 * 1024);
    assert.equal(parseConfig([], { MAX_MESSAGE_SIZE: "4194304" })?.maxMessageBytes, 4194304);
    assert.equal(parseConfig(["--grace-period", "1.5m"], {})?.gracePeriodMs, 90_000);
    assert.throws(() => parseConfig(["--max-message-size", "lots"], {}), /invalid size "lots"/);
    assert.throws(() => parseConfig(["--grace-period", "soon"], {}), /invalid grace period "soon"/);
    assert.throws(() => parseConfig(["--log-level", "loud"], {}), /invalid log level "loud"/);
    assert.throws(() => parseConfig(["--port", "http"], {}), /invalid port "http"/);
    assert.throws(() => parseConfig(["--bogus"], {}), /bogus/);
  });

  it("a leading -- (as pnpm passes it through) is ignored", () => {
    assert.equal(parseConfig(["--", "--port", "1"], {})?.listen[0]?.kind, "tcp");
    assert.throws(() => parseConfig(["--port", "1", "--", "x"], {}), /Unexpected argument/);
  });

  it("--help returns no config", () => {
    assert.equal(parseConfig(["--help"], {}), undefined);
  });
});
