import { strict as assert } from "node:assert";
import { availableParallelism } from "node:os";
import { describe, it } from "node:test";
import { parseConfig } from "../../src/config/config.js";
import { defaultLimits } from "../../src/transport/limits.js";
import { parseListenAddress } from "../../src/transport/listen-address.js";
import { sqliteAvailable } from "../../src/users/sqlite-user-store.js";

// The embedded store this Node.js defaults to.
const embedded = sqliteAvailable ? "sqlite" : "pglite";

describe("configuration", () => {
  it("defaults: [::]:50051, info, json, 10 s grace, 64 MiB messages, echo-log with a 5 s budget, fast path on, 1 worker", () => {
    assert.deepEqual(parseConfig([], {}), {
      listen: [{ kind: "tcp", host: "::", port: 50051 }],
      logLevel: "info",
      logFormat: "json",
      gracePeriodMs: 10_000,
      maxMessageBytes: 64 * 1024 * 1024,
      plugins: ["echo-log"],
      pluginOptions: {},
      pluginTimeoutMs: 5000,
      watchPlugins: false,
      logSecrets: false,
      logObjects: false,
      acceptEmptyAuthority: true,
      fastPath: true,
      workers: 1,
      tlsListen: [],
      tls: undefined,
      limits: defaultLimits,
      httpListen: [],
      metrics: true,
      users: { kind: embedded, dataDir: "./data/users", open: "lazy" },
      unixSocketGroup: undefined,
      inspector: undefined,
    });
    assert.deepEqual(parseConfig([], { DATABASE_URL: "postgres://db/x" })?.users, { kind: "postgres", databaseUrl: "postgres://db/x", open: "lazy" });
    assert.deepEqual(parseConfig(["--users-store", "memory", "--users-store-open", "start"], { DATABASE_URL: "postgres://db/x" })?.users, {
      kind: "memory",
      open: "start",
    });
    assert.deepEqual(parseConfig(["--users-data", "/var/lib/users"], {})?.users, { kind: embedded, dataDir: "/var/lib/users", open: "lazy" });
    assert.deepEqual(parseConfig(["--users-store", "pglite"], {})?.users, { kind: "pglite", dataDir: "./data/users", open: "lazy" });
    assert.deepEqual(parseConfig(["--config", "c.json"], {}, () => '{"usersStore": "postgres", "databaseUrl": "postgres://f/y"}')?.users, {
      kind: "postgres",
      databaseUrl: "postgres://f/y",
      open: "lazy",
    });
    assert.throws(() => parseConfig(["--users-store", "postgres"], {}), /--users-store postgres needs --database-url/);
    assert.throws(() => parseConfig(["--users-store", "mysql"], {}), /invalid users store "mysql"/);
    if (sqliteAvailable) {
      // SQLite serves several processes: workers share the file.
      assert.equal(parseConfig(["--workers", "2"], {})?.users.kind, "sqlite");
    } else {
      assert.throws(() => parseConfig(["--users-store", "sqlite"], {}), /--users-store sqlite needs node:sqlite \(Node.js 22.13 or newer/);
    }
    assert.throws(() => parseConfig(["--workers", "2", "--users-store", "pglite"], {}), /--workers needs --users-store sqlite, postgres or memory/);
    assert.equal(parseConfig(["--workers", "2", "--users-store", "memory"], {})?.workers, 2);
    assert.deepEqual(parseConfig(["--http-listen", "127.0.0.1:8080"], {})?.httpListen, [{ kind: "tcp", host: "127.0.0.1", port: 8080 }]);
    assert.deepEqual(parseConfig([], { HTTP_LISTEN: ":8080" })?.httpListen, [{ kind: "tcp", host: "::", port: 8080 }]);
    assert.equal(parseConfig(["--metrics", "off"], {})?.metrics, false);
    assert.equal(parseConfig(["--config", "c.json"], {}, () => '{"metrics": false}')?.metrics, false);
    assert.equal(parseConfig(["--empty-authority", "refuse"], {})?.acceptEmptyAuthority, false);
    assert.throws(() => parseConfig(["--empty-authority", "maybe"], {}), /invalid empty authority "maybe"/);
    assert.equal(parseConfig(["--fast-path", "off"], {})?.fastPath, false);
    assert.equal(parseConfig([], { FAST_PATH: "off" })?.fastPath, false);
    assert.equal(parseConfig(["--fast-path", "on"], { FAST_PATH: "off" })?.fastPath, true);
    assert.equal(parseConfig([], {}, () => '{"fastPath": false}')?.fastPath, true, "no config file named");
    assert.equal(parseConfig(["--config", "c.json"], {}, () => '{"fastPath": false}')?.fastPath, false);
    assert.throws(() => parseConfig(["--fast-path", "yes"], {}), /invalid fast path "yes": expected one of on, off/);
    assert.equal(parseConfig(["--workers", "3", "--users-store", "memory"], {})?.workers, 3);
    assert.equal(parseConfig(["--log-objects"], {})?.logObjects, true);
    assert.equal(parseConfig([], { LOG_OBJECTS: "true" })?.logObjects, true);
    assert.equal(parseConfig([], { WORKERS: "auto", USERS_STORE: "memory" })?.workers, availableParallelism());
    assert.equal(parseConfig(["--config", "c.json"], {}, () => '{"workers": 2, "usersStore": "memory"}')?.workers, 2);
    assert.throws(() => parseConfig(["--workers", "0"], {}), /invalid workers "0": expected a number from 1 to 256, or auto/);
    assert.throws(() => parseConfig(["--config", "c.json"], {}, () => '{"workers": "many"}'), /"workers" must be a whole number or "auto"/);
  });

  it("a config file supplies settings and plugin options; env and flags override it", () => {
    const file = JSON.stringify({
      listen: ["unix:///tmp/p.sock"],
      plugins: ["echo-log", "custom-auth"],
      pluginOptions: { "custom-auth": { keys: { abc: {} } } },
      pluginTimeout: "2s",
      logSecrets: true,
    });
    const read = (path: string) => {
      assert.equal(path, "/etc/plugins.json");
      return file;
    };
    const c = parseConfig(["--config", "/etc/plugins.json"], {}, read)!;
    assert.deepEqual(c.listen, [{ kind: "unix", path: "/tmp/p.sock" }]);
    assert.deepEqual(c.plugins, ["echo-log", "custom-auth"]);
    assert.deepEqual(c.pluginOptions, { "custom-auth": { keys: { abc: {} } } });
    assert.equal(c.pluginTimeoutMs, 2000);
    assert.equal(c.logSecrets, true);
    const o = parseConfig(["--plugin", "header-injection"], { CONFIG_FILE: "/etc/plugins.json", PLUGINS: "x", LOG_SECRETS: "false" }, read)!;
    assert.deepEqual(o.plugins, ["header-injection"]);
    assert.equal(o.logSecrets, false);
    assert.throws(() => parseConfig(["--config", "f"], {}, () => '{"listenn": []}'), /unknown setting "listenn"/);
    assert.throws(() => parseConfig(["--config", "f"], {}, () => '{"plugins": "echo-log"}'), /"plugins" must be a string\[\]/);
    assert.throws(() => parseConfig(["--config", "f"], {}, () => "{"), /cannot read config file f/);
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
    assert.throws(() => parseConfig(["--plugin-timeout", "0s"], {}), /invalid plugin timeout: must be more than 0/);
    assert.throws(() => parseConfig(["--log-level", "loud"], {}), /invalid log level "loud"/);
    assert.throws(() => parseConfig(["--port", "http"], {}), /invalid port "http"/);
    assert.throws(() => parseConfig(["--bogus"], {}), /bogus/);
  });

  it("TLS listeners: files required together; plaintext default dropped unless named", () => {
    const tls = ["--tls-listen", "127.0.0.1:8443", "--tls-cert", "s.crt", "--tls-key", "s.key"];
    const c = parseConfig(tls, {})!;
    assert.deepEqual(c.tlsListen, [{ kind: "tcp", host: "127.0.0.1", port: 8443 }]);
    assert.deepEqual(c.tls, { certFile: "s.crt", keyFile: "s.key" });
    assert.deepEqual(c.listen, [], "TLS only: no default plaintext port");
    assert.deepEqual(parseConfig([...tls, "--port", "50051"], {})!.listen, [{ kind: "tcp", host: "::", port: 50051 }]);
    assert.deepEqual(parseConfig([...tls, "--listen", "unix:///tmp/p.sock"], {})!.listen, [{ kind: "unix", path: "/tmp/p.sock" }]);
    assert.equal(parseConfig([...tls, "--tls-client-ca", "ca.crt"], {})!.tls?.clientCaFile, "ca.crt");
    const env = { TLS_LISTEN: "[::1]:8443", TLS_CERT: "e.crt", TLS_KEY: "e.key", TLS_CLIENT_CA: "e-ca.crt" };
    assert.deepEqual(parseConfig([], env)!.tls, { certFile: "e.crt", keyFile: "e.key", clientCaFile: "e-ca.crt" });
    const file = '{"tlsListen": ["0.0.0.0:8443"], "tlsCert": "f.crt", "tlsKey": "f.key"}';
    assert.deepEqual(parseConfig(["--config", "c.json"], {}, () => file)!.tls, { certFile: "f.crt", keyFile: "f.key" });
    assert.throws(() => parseConfig(["--tls-listen", ":8443"], {}), /--tls-listen needs --tls-cert and --tls-key/);
    assert.throws(() => parseConfig(["--tls-listen", ":8443", "--tls-cert", "s.crt"], {}), /--tls-cert and --tls-key go together/);
    assert.throws(() => parseConfig(["--tls-cert", "s.crt", "--tls-key", "s.key"], {}), /no --tls-listen address uses it/);
  });

  it("limits: flags, environment and file; 0 turns the timeouts off; clear errors", () => {
    const c = parseConfig(
      [
        "--max-concurrent-streams",
        "50",
        "--max-header-list-size",
        "8KiB",
        "--idle-timeout",
        "0",
        "--keepalive-interval",
        "30s",
        "--max-deadline",
        "2m",
        "--max-connections",
        "100",
        "--headers-timeout",
        "5s",
      ],
      { KEEPALIVE_TIMEOUT: "5s", REQUEST_TIMEOUT: "1m" },
    )!;
    assert.deepEqual(c.limits, {
      ...defaultLimits,
      maxConcurrentStreams: 50,
      maxHeaderListBytes: 8192,
      idleTimeoutMs: 0,
      keepaliveIntervalMs: 30_000,
      keepaliveTimeoutMs: 5000,
      maxDeadlineMs: 120_000,
      maxConnections: 100,
      headersTimeoutMs: 5000,
      requestTimeoutMs: 60_000,
    });
    assert.throws(() => parseConfig(["--headers-timeout", "2m", "--request-timeout", "1m"], {}), /--headers-timeout must not be longer than --request-timeout/);
    assert.throws(() => parseConfig(["--max-connections", "0"], {}), /invalid max connections "0"/);
    assert.deepEqual(parseConfig(["--memory-budget", "1GiB"], { CONNECTION_MEMORY_BUDGET: "300MiB" })!.limits.memory, {
      processBytes: 2 ** 30,
      connectionBytes: 300 * 2 ** 20,
    });
    assert.throws(() => parseConfig(["--memory-budget", "64MiB"], {}), /--connection-memory-budget must not be more than --memory-budget/);
    const file = '{"maxConcurrentStreams": 7, "idleTimeout": "1m", "maxDeadline": "10s"}';
    const f = parseConfig(["--config", "c.json"], {}, () => file)!.limits;
    assert.deepEqual([f.maxConcurrentStreams, f.idleTimeoutMs, f.maxDeadlineMs], [7, 60_000, 10_000]);
    assert.throws(() => parseConfig(["--max-concurrent-streams", "0"], {}), /invalid max concurrent streams "0"/);
    assert.throws(() => parseConfig(["--keepalive-timeout", "0"], {}), /invalid keepalive timeout: must be more than 0/);
    assert.throws(() => parseConfig(["--idle-timeout", "soon"], {}), /invalid idle timeout "soon"/);
    const aged = parseConfig(["--max-connection-age", "5m"], { MAX_CONNECTION_AGE_GRACE: "30s" })!.limits;
    assert.deepEqual([aged.maxConnectionAgeMs, aged.maxConnectionAgeGraceMs], [300_000, 30_000]);
    assert.deepEqual([defaultLimits.maxConnectionAgeMs, defaultLimits.maxConnectionAgeGraceMs], [0, 0], "off by default");
  });

  it("a leading -- (as pnpm passes it through) is ignored", () => {
    assert.equal(parseConfig(["--", "--port", "1"], {})?.listen[0]?.kind, "tcp");
    assert.throws(() => parseConfig(["--port", "1", "--", "x"], {}), /Unexpected argument/);
  });

  it("--unix-socket-group: a number, or a name that exists", () => {
    assert.equal(parseConfig(["--unix-socket-group", "0"], {})?.unixSocketGroup, "0");
    assert.equal(parseConfig([], { UNIX_SOCKET_GROUP: "root" })?.unixSocketGroup, "root");
    assert.throws(() => parseConfig(["--unix-socket-group", "no-such-group-here"], {}), /unknown group "no-such-group-here"/);
  });

  it("--help returns no config", () => {
    assert.equal(parseConfig(["--help"], {}), undefined);
  });
});

describe("the inspector's settings", () => {
  const token = "0123456789abcdef";

  it("--inspect serves on 127.0.0.1:8090 unless --http-listen says where, and keeps 200 calls", () => {
    const config = parseConfig(["--inspect"], {})!;
    assert.deepEqual(config.httpListen, [{ kind: "tcp", host: "127.0.0.1", port: 8090 }]);
    assert.deepEqual(config.inspector, { token: undefined, calls: 200 });
    assert.deepEqual(parseConfig(["--inspect", "--http-listen", "[::1]:9000", "--inspect-calls", "50"], {})!.inspector, { token: undefined, calls: 50 });
    assert.deepEqual(parseConfig([], { INSPECT: "true", INSPECT_TOKEN: token, HTTP_LISTEN: "0.0.0.0:9000" })!.inspector, { token, calls: 200 });
    assert.equal(parseConfig(["--inspect-token", token], {})!.inspector, undefined, "a token alone does not turn it on");
  });

  it("refuses a non-loopback listener without a token, a short token, --workers and a count out of range", () => {
    assert.throws(
      () => parseConfig(["--inspect", "--http-listen", "0.0.0.0:8080"], {}),
      /--inspect on 0.0.0.0:8080, which is not loopback, needs --inspect-token \(or INSPECT_TOKEN\): the page shows request data/,
    );
    assert.throws(() => parseConfig(["--inspect", "--http-listen", "[::]:8080"], {}), /\[::\]:8080, which is not loopback/);
    assert.ok(parseConfig(["--inspect", "--http-listen", "unix:///tmp/x.sock", "--http-listen", "localhost:1"], {}));
    assert.throws(() => parseConfig(["--inspect", "--inspect-token", "short"], {}), /16 characters or more/);
    assert.throws(() => parseConfig(["--inspect", "--workers", "2", "--users-store", "memory"], {}), /--inspect needs --workers 1/);
    assert.throws(() => parseConfig(["--inspect", "--inspect-calls", "0"], {}), /expected a whole number from 1 to 10000/);
    assert.throws(() => parseConfig(["--inspect", "--inspect-calls", "10001"], {}), /expected a whole number from 1 to 10000/);
  });
});
