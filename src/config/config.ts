import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { logLevels, type LogLevel } from "../observability/logger.js";
import { parseListenAddress, type ListenAddress } from "../transport/listen-address.js";
import { parseDuration } from "../util/duration.js";
import { defaultLimits, type ConnectionLimits } from "../transport/limits.js";
import type { TlsFiles } from "../transport/tls.js";
import { groupId } from "../transport/unix-socket.js";
import type { UsersStoreConfig } from "../users/open-user-store.js";
import { sqliteAvailable } from "../users/sqlite-user-store.js";

/** Everything the server process is configured with. */
export interface Config {
  /** Where to listen; at least one address. */
  readonly listen: readonly ListenAddress[];
  readonly logLevel: LogLevel;
  readonly logFormat: "json" | "pretty";
  /** How long in-flight calls may run after SIGTERM/SIGINT before they are cut off. */
  readonly gracePeriodMs: number;
  /** Largest request message accepted; larger ones get RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  /** Plugin modules to load, by name (src/plugins/NAME.ts) or path. */
  readonly plugins: readonly string[];
  /** Options handed to each plugin's factory, by plugin name (config file only). */
  readonly pluginOptions: Readonly<Record<string, unknown>>;
  /** Time budget of one plugin hook or event handler call. */
  readonly pluginTimeoutMs: number;
  /** Log credentials in Objects and events unmasked (local debugging only). */
  readonly logSecrets: boolean;
  /** Log every Dispatch Object at info level (otherwise only at debug). */
  readonly logObjects: boolean;
  /** Serve requests with an empty `:authority` (Tyk <= 5.8.2 without grpc_authority). */
  readonly acceptEmptyAuthority: boolean;
  /** Serve unary gRPC calls on the lean path (off: connect-node serves every call). */
  readonly fastPath: boolean;
  /** Server processes sharing the listeners (node:cluster); 1 serves in this process. */
  readonly workers: number;
  /** Where to listen with TLS (needs `tls`); side by side with the plaintext `listen`. */
  readonly tlsListen: readonly ListenAddress[];
  /** Certificate files of the TLS listeners; re-read on SIGHUP. */
  readonly tls: TlsFiles | undefined;
  /** Per-connection and per-call limits. */
  readonly limits: ConnectionLimits;
  /** Plain HTTP/1.1 listeners: Connect, gRPC-Web, /healthz, /readyz, /metrics, GET /users. */
  readonly httpListen: readonly ListenAddress[];
  /** Count calls and hooks for Prometheus (served at /metrics of --http-listen). */
  readonly metrics: boolean;
  /** Where the Users service keeps its users. */
  readonly users: UsersStoreConfig;
  /** The group of unix socket files (a name or id); their mode is 0660 either way. */
  readonly unixSocketGroup: string | undefined;
}

/** The --help text. */
export const usage = `Usage: pnpm start [options]   (or: node dist/src/main.js [options])

Options (environment variable in brackets; flags win over the environment,
which wins over the config file):
  --config FILE         JSON config file with any of the settings below, in
                        camelCase, plus "pluginOptions". [CONFIG_FILE]
  --listen ADDR         Listen address, repeatable: HOST:PORT, [V6]:PORT, tcp://HOST:PORT
                        or unix:///path.sock. Overrides --host/--port. [LISTEN, comma-separated]
  --unix-socket-group G Group of the unix socket files (name or id); their mode is 0660,
                        so that members of G (a gateway's user) may connect. [UNIX_SOCKET_GROUP]
  --host HOST           Host to listen on (default ::, all interfaces). [HOST]
  --port PORT           TCP port (default 50051; 0 picks a free one). [PORT]
  --plugin NAME         Plugin to load, repeatable: a name from src/plugins/ or a path
                        to a compiled module (default echo-log). [PLUGINS, comma-separated]
  --plugin-timeout DUR  Time budget of one plugin call (default 5s). [PLUGIN_TIMEOUT]
  --log-level LEVEL     ${logLevels.join("|")} (default info). Dispatch
                        Objects are logged as JSON at debug. [LOG_LEVEL]
  --log-format FORMAT   json (default, one JSON object per line) or pretty. [LOG_FORMAT]
  --log-objects         Log every Dispatch Object as JSON at info level, as the
                        tutorial's server prints it (default: only at debug). [LOG_OBJECTS=true]
  --log-secrets         Do not mask credentials in logged Objects and events. [LOG_SECRETS=true]
  --empty-authority A   accept (default) or refuse requests with an empty :authority,
                        as Tyk <= 5.8.2 sends without grpc_authority. [EMPTY_AUTHORITY]
  --fast-path on|off     Serve unary gRPC calls on the lean path (default on); off
                        leaves every call to connect-node's pipeline. [FAST_PATH]
  --workers N|auto      Server processes sharing the listeners (default 1; auto: one
                        per CPU). Crashed workers are restarted. [WORKERS]
  --grace-period DUR    Drain time on SIGTERM/SIGINT, e.g. 10s, 500ms (default 10s). [GRACE_PERIOD]

HTTP:
  --http-listen ADDR    Also listen for plain HTTP/1.1 here, repeatable: Connect and gRPC-Web for
                        every method, GET /users (NDJSON), /healthz, /readyz, /metrics. [HTTP_LISTEN]
  --metrics on|off      Count calls and hooks for Prometheus (default on). [METRICS]

Users store:
  --users-store KIND    sqlite (an SQLite file, node:sqlite: the default on Node.js 22.13+),
                        pglite (embedded PostgreSQL: the default on Node.js 20), postgres (a server
                        at --database-url; the default when DATABASE_URL is set) or memory. [USERS_STORE]
  --users-data DIR      The embedded store's directory (default ./data/users). [USERS_DATA]
  --database-url URL    postgres://user:password@host:5432/db for --users-store postgres. [DATABASE_URL]
  --users-store-open W  lazy (default: at the first Users call) or start. [USERS_STORE_OPEN]

TLS (SIGHUP re-reads the files without dropping connections):
  --tls-listen ADDR     Listen with TLS (h2, HTTP/1.1 fallback) on ADDR, repeatable; plaintext
                        --listen addresses run beside it (default: none, unless --listen,
                        --host or --port is given). [TLS_LISTEN, comma-separated]
  --tls-cert FILE       PEM certificate chain of the TLS listeners. [TLS_CERT]
  --tls-key FILE        PEM private key of the TLS listeners. [TLS_KEY]
  --tls-client-ca FILE  Require client certificates signed by this PEM CA (mTLS). [TLS_CLIENT_CA]

Limits:
  --max-message-size N  Largest accepted request message in bytes, or with KiB/MiB
                        suffix (default 64MiB); larger: RESOURCE_EXHAUSTED. [MAX_MESSAGE_SIZE]
  --max-concurrent-streams N
                        Calls open at once on one connection (default 1000). [MAX_CONCURRENT_STREAMS]
  --max-header-list-size N
                        Largest request header list in bytes, or KiB (default 64KiB). [MAX_HEADER_LIST_SIZE]
  --idle-timeout DUR    Close connections with no call for this long, with a GOAWAY
                        (default 10m; 0: never). [IDLE_TIMEOUT]
  --keepalive-interval DUR
                        Send an HTTP/2 PING on each connection this often (default 1m; 0: off). [KEEPALIVE_INTERVAL]
  --keepalive-timeout DUR
                        Close a connection whose PING is not answered in this time (default 20s). [KEEPALIVE_TIMEOUT]
  --max-connection-age DUR
                        Send a GOAWAY to each HTTP/2 connection this long (+-10 % jitter) after it
                        opened, so clients reconnect and a load balancer can spread them (default
                        0: never). Calls in flight finish. [MAX_CONNECTION_AGE]
  --max-connection-age-grace DUR
                        After that GOAWAY, end the calls still open after this long and close the
                        connection (default 0: wait for them). [MAX_CONNECTION_AGE_GRACE]
  --max-deadline DUR    Cap on every call's deadline: calls without one, or with a longer
                        one, get this one (default 0: no cap). [MAX_DEADLINE]
  --max-connections N   Connections open at once on the RPC listeners, and again on the
                        --http-listen ones (default 4096); at the cap the oldest connection
                        that has completed no request is closed. [MAX_CONNECTIONS]
  --headers-timeout DUR HTTP/1.1: a request's headers must arrive within this (default 20s). [HEADERS_TIMEOUT]
  --request-timeout DUR HTTP/1.1: the whole request must arrive within this (default 5m). [REQUEST_TIMEOUT]
  --memory-budget N     Bytes all requests (as received and decompressed) and unsent replies
                        may hold at once (default 512MiB); past it, RESOURCE_EXHAUSTED. [MEMORY_BUDGET]
  --connection-memory-budget N
                        The same for one connection (default 256MiB). [CONNECTION_MEMORY_BUDGET]
  -h, --help            Show this help.
`;

const defaultPort = 50051;
const defaultHost = "::";

/** The config file's shape: the flags' settings in camelCase, plus pluginOptions. */
interface FileConfig {
  listen?: string[];
  host?: string;
  port?: number;
  plugins?: string[];
  pluginTimeout?: string;
  pluginOptions?: Record<string, unknown>;
  logLevel?: string;
  logFormat?: string;
  logSecrets?: boolean;
  logObjects?: boolean;
  gracePeriod?: string;
  maxMessageSize?: string;
  emptyAuthority?: string;
  fastPath?: boolean;
  workers?: number | "auto";
  tlsListen?: string[];
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  maxConcurrentStreams?: number;
  maxHeaderListSize?: string;
  idleTimeout?: string;
  maxConnectionAge?: string;
  maxConnectionAgeGrace?: string;
  keepaliveInterval?: string;
  keepaliveTimeout?: string;
  maxDeadline?: string;
  maxConnections?: number;
  headersTimeout?: string;
  requestTimeout?: string;
  memoryBudget?: string;
  connectionMemoryBudget?: string;
  httpListen?: string[];
  metrics?: boolean;
  usersStore?: string;
  usersData?: string;
  databaseUrl?: string;
  usersStoreOpen?: string;
  unixSocketGroup?: string;
}

// The JSON type each config file key takes, checked when the file is read.
// ("count": a number, or "auto")
const fileKeys: Record<keyof FileConfig, "string" | "number" | "boolean" | "string[]" | "object" | "count"> = {
  listen: "string[]",
  host: "string",
  port: "number",
  plugins: "string[]",
  pluginTimeout: "string",
  pluginOptions: "object",
  logLevel: "string",
  logFormat: "string",
  logSecrets: "boolean",
  logObjects: "boolean",
  gracePeriod: "string",
  maxMessageSize: "string",
  emptyAuthority: "string",
  fastPath: "boolean",
  workers: "count",
  tlsListen: "string[]",
  tlsCert: "string",
  tlsKey: "string",
  tlsClientCa: "string",
  maxConcurrentStreams: "number",
  maxHeaderListSize: "string",
  idleTimeout: "string",
  maxConnectionAge: "string",
  maxConnectionAgeGrace: "string",
  keepaliveInterval: "string",
  keepaliveTimeout: "string",
  maxDeadline: "string",
  maxConnections: "number",
  headersTimeout: "string",
  requestTimeout: "string",
  memoryBudget: "string",
  connectionMemoryBudget: "string",
  httpListen: "string[]",
  metrics: "boolean",
  usersStore: "string",
  usersData: "string",
  databaseUrl: "string",
  usersStoreOpen: "string",
  unixSocketGroup: "string",
};

/**
 * Reads the configuration from command-line arguments, the environment and
 * the config file they name. Returns undefined when --help was asked for;
 * throws an Error whose message says what is wrong for anything it cannot use.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (path) => readFileSync(path, "utf8"),
): Config | undefined {
  // `pnpm start -- --port 1` passes the "--" through; npm strips it. Accept both.
  const args = argv[0] === "--" ? argv.slice(1) : [...argv];
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string" },
        listen: { type: "string", multiple: true },
        host: { type: "string" },
        port: { type: "string" },
        plugin: { type: "string", multiple: true },
        "plugin-timeout": { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        "log-secrets": { type: "boolean" },
        "log-objects": { type: "boolean" },
        "grace-period": { type: "string" },
        "max-message-size": { type: "string" },
        "empty-authority": { type: "string" },
        "fast-path": { type: "string" },
        workers: { type: "string" },
        "tls-listen": { type: "string", multiple: true },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "tls-client-ca": { type: "string" },
        "max-concurrent-streams": { type: "string" },
        "max-header-list-size": { type: "string" },
        "idle-timeout": { type: "string" },
        "max-connection-age": { type: "string" },
        "max-connection-age-grace": { type: "string" },
        "keepalive-interval": { type: "string" },
        "keepalive-timeout": { type: "string" },
        "max-deadline": { type: "string" },
        "max-connections": { type: "string" },
        "headers-timeout": { type: "string" },
        "request-timeout": { type: "string" },
        "memory-budget": { type: "string" },
        "connection-memory-budget": { type: "string" },
        "http-listen": { type: "string", multiple: true },
        metrics: { type: "string" },
        "users-store": { type: "string" },
        "users-data": { type: "string" },
        "database-url": { type: "string" },
        "users-store-open": { type: "string" },
        "unix-socket-group": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new Error(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    return undefined;
  }
  const configPath = values.config ?? env.CONFIG_FILE;
  const file = configPath === undefined ? {} : readConfigFile(configPath, readFile);
  // A setting by its flag's name: the flag, else its environment variable
  // (--max-deadline: MAX_DEADLINE), else its config file key (maxDeadline).
  const fromFlag = (flag: string) => (values as Record<string, unknown>)[flag];
  const fromEnv = (flag: string) => env[flag.toUpperCase().replaceAll("-", "_")];
  const fromFile = (flag: string) => (file as Record<string, unknown>)[flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())];
  const setting = (flag: string): string | undefined => {
    const value = fromFlag(flag) ?? fromEnv(flag) ?? fromFile(flag);
    return value === undefined ? undefined : String(value);
  };
  // Repeatable flags; comma-separated in the environment; arrays in the file.
  const listSetting = (flag: string) => (fromFlag(flag) ?? list(fromEnv(flag)) ?? fromFile(flag)) as string[] | undefined;
  const listen = listSetting("listen");
  const tlsListen = (listSetting("tls-listen") ?? []).map(parseListenAddress);
  // With TLS listeners only, the default plaintext port is not opened; naming
  // a plaintext host or port still opens it.
  const plaintextNamed = [setting("host"), setting("port")].some((v) => v !== undefined && v !== "");
  const tls = tlsFiles(setting("tls-cert"), setting("tls-key"), setting("tls-client-ca"), tlsListen.length > 0);
  const duration = (flag: string, fallback: number) => {
    const value = setting(flag);
    return value === undefined ? fallback : parseDuration(value, flag.replaceAll("-", " "));
  };
  // Boolean flags: given or not; in the environment "true"; booleans in the file.
  const flagOrTrue = (flag: string): boolean => {
    const envValue = fromEnv(flag);
    return (fromFlag(flag) ?? (envValue !== undefined ? envValue === "true" : undefined) ?? fromFile(flag) ?? false) as boolean;
  };
  const config: Config = {
    listen:
      listen !== undefined && listen.length > 0
        ? listen.map(parseListenAddress)
        : tlsListen.length > 0 && !plaintextNamed
          ? []
          : [tcpAddress(setting("host"), setting("port"))],
    logLevel: oneOf("log level", setting("log-level") ?? "info", logLevels),
    logFormat: oneOf("log format", setting("log-format") ?? "json", ["json", "pretty"] as const),
    gracePeriodMs: duration("grace-period", 10_000),
    maxMessageBytes: parseSize(setting("max-message-size") ?? "64MiB"),
    plugins: values.plugin ?? list(env.PLUGINS) ?? file.plugins ?? ["echo-log"],
    pluginOptions: file.pluginOptions ?? {},
    pluginTimeoutMs: positive(duration("plugin-timeout", 5000), "plugin timeout"),
    logSecrets: flagOrTrue("log-secrets"),
    logObjects: flagOrTrue("log-objects"),
    acceptEmptyAuthority: oneOf("empty-authority setting", setting("empty-authority") ?? "accept", ["accept", "refuse"] as const) === "accept",
    // on|off on the command line and in the environment, a boolean in the file.
    fastPath: onOff("fast-path setting", values["fast-path"] ?? env.FAST_PATH) ?? file.fastPath ?? true,
    workers: parseWorkers(setting("workers") ?? "1"),
    tlsListen,
    tls,
    httpListen: (listSetting("http-listen") ?? []).map(parseListenAddress),
    metrics: onOff("metrics setting", values.metrics ?? env.METRICS) ?? file.metrics ?? true,
    users: usersStore(setting),
    unixSocketGroup: socketGroup(setting("unix-socket-group")),
    limits: {
      maxConcurrentStreams: parseCount("max concurrent streams", setting("max-concurrent-streams") ?? String(defaultLimits.maxConcurrentStreams)),
      maxHeaderListBytes: parseSize(setting("max-header-list-size") ?? String(defaultLimits.maxHeaderListBytes)),
      idleTimeoutMs: duration("idle-timeout", defaultLimits.idleTimeoutMs),
      maxConnectionAgeMs: duration("max-connection-age", defaultLimits.maxConnectionAgeMs),
      maxConnectionAgeGraceMs: duration("max-connection-age-grace", defaultLimits.maxConnectionAgeGraceMs),
      keepaliveIntervalMs: duration("keepalive-interval", defaultLimits.keepaliveIntervalMs),
      keepaliveTimeoutMs: positive(duration("keepalive-timeout", defaultLimits.keepaliveTimeoutMs), "keepalive timeout"),
      maxDeadlineMs: duration("max-deadline", defaultLimits.maxDeadlineMs),
      maxConnections: parseCount("max connections", setting("max-connections") ?? String(defaultLimits.maxConnections)),
      headersTimeoutMs: positive(duration("headers-timeout", defaultLimits.headersTimeoutMs), "headers timeout"),
      requestTimeoutMs: positive(duration("request-timeout", defaultLimits.requestTimeoutMs), "request timeout"),
      memory: {
        processBytes: parseSize(setting("memory-budget") ?? String(defaultLimits.memory.processBytes)),
        connectionBytes: parseSize(setting("connection-memory-budget") ?? String(defaultLimits.memory.connectionBytes)),
      },
    },
  };
  if (config.limits.memory.connectionBytes > config.limits.memory.processBytes) {
    throw new Error("--connection-memory-budget must not be more than --memory-budget");
  }
  if (config.limits.headersTimeoutMs > config.limits.requestTimeoutMs) {
    throw new Error("--headers-timeout must not be longer than --request-timeout (headers are part of the request)");
  }
  if (config.workers > 1 && config.users.kind === "pglite") {
    // PGlite is one process's database: workers would each open the same directory.
    throw new Error("--workers needs --users-store sqlite, postgres or memory: the embedded PGlite store serves one process");
  }
  return config;
}

// Resolved now, so that an unknown group stops the start with a clear message.
function socketGroup(group: string | undefined): string | undefined {
  if (group !== undefined) groupId(group);
  return group;
}

function usersStore(setting: (flag: string) => string | undefined): UsersStoreConfig {
  const databaseUrl = setting("database-url");
  const embedded = sqliteAvailable ? "sqlite" : "pglite";
  const kind = oneOf("users store", setting("users-store") ?? (databaseUrl ? "postgres" : embedded), ["sqlite", "pglite", "postgres", "memory"] as const);
  const open = oneOf("users-store-open setting", setting("users-store-open") ?? "lazy", ["lazy", "start"] as const);
  if (kind === "postgres") {
    if (!databaseUrl) throw new Error("--users-store postgres needs --database-url (or DATABASE_URL)");
    return { kind, databaseUrl, open };
  }
  if (kind === "sqlite" && !sqliteAvailable) {
    throw new Error(`--users-store sqlite needs node:sqlite (Node.js 22.13 or newer; this is ${process.version}): use pglite, postgres or memory`);
  }
  if (kind === "sqlite" || kind === "pglite") {
    return { kind, dataDir: setting("users-data") ?? "./data/users", open };
  }
  return { kind, open };
}

// The TLS files must come together, and only where a TLS listener uses them.
function tlsFiles(certFile: string | undefined, keyFile: string | undefined, clientCaFile: string | undefined, listening: boolean): TlsFiles | undefined {
  if (certFile === undefined && keyFile === undefined && clientCaFile === undefined) {
    if (listening) {
      throw new Error("--tls-listen needs --tls-cert and --tls-key");
    }
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    throw new Error("--tls-cert and --tls-key go together");
  }
  if (!listening) {
    throw new Error("--tls-cert is set but no --tls-listen address uses it");
  }
  return clientCaFile === undefined ? { certFile, keyFile } : { certFile, keyFile, clientCaFile };
}

// A positive whole number within HTTP/2's 31-bit settings range.
function parseCount(what: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 2 ** 31 - 1) {
    throw new Error(`invalid ${what} "${value}": expected a whole number from 1 to ${2 ** 31 - 1}`);
  }
  return Number(value);
}

function readConfigFile(path: string, readFile: (path: string) => string): FileConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFile(path));
  } catch (e) {
    throw new Error(`cannot read config file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`config file ${path} must hold a JSON object`);
  }
  for (const [key, value] of Object.entries(parsed)) {
    const type = fileKeys[key as keyof typeof fileKeys];
    if (type === undefined) {
      throw new Error(`config file ${path}: unknown setting "${key}" (known: ${Object.keys(fileKeys).join(", ")})`);
    }
    const ok =
      type === "count"
        ? (typeof value === "number" && Number.isInteger(value)) || value === "auto"
        : type === "string[]"
        ? Array.isArray(value) && value.every((v) => typeof v === "string")
        : type === "object"
          ? typeof value === "object" && value !== null && !Array.isArray(value)
          : typeof value === type;
    if (!ok) {
      throw new Error(`config file ${path}: "${key}" must be ${type === "object" ? "an object" : type === "count" ? 'a whole number or "auto"' : `a ${type}`}`);
    }
  }
  return parsed as FileConfig;
}

function tcpAddress(host = defaultHost, port = String(defaultPort)): ListenAddress {
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw new Error(`invalid port "${port}": expected 0-65535`);
  }
  return { kind: "tcp", host, port: Number(port) };
}

// A comma-separated environment list; undefined when unset or empty.
function list(value: string | undefined): string[] | undefined {
  const items = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return items.length > 0 ? items : undefined;
}

function positive(ms: number, what: string): number {
  if (ms <= 0) {
    throw new Error(`invalid ${what}: must be more than 0`);
  }
  return ms;
}

/** Parses --workers: a positive integer, or "auto" (one per CPU). */
export function parseWorkers(value: string): number {
  if (value === "auto") {
    return availableParallelism();
  }
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 256) {
    throw new Error(`invalid workers "${value}": expected a number from 1 to 256, or auto`);
  }
  return Number(value);
}

function onOff(what: string, value: string | undefined): boolean | undefined {
  return value === undefined ? undefined : oneOf(what, value, ["on", "off"] as const) === "on";
}

function oneOf<T extends string>(what: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) {
    return value as T;
  }
  throw new Error(`invalid ${what} "${value}": expected one of ${allowed.join(", ")}`);
}

const sizeUnits: Record<string, number> = { "": 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** Parses a byte size such as 4194304, 512KiB or 64MiB. */
export function parseSize(value: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? sizeUnits[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(`invalid size "${value}": expected bytes, or a number with KiB/MiB/GiB`);
  }
  const bytes = Number(m[1]) * unit;
  // connect-node's per-message limit cannot exceed 0xffffffff.
  if (bytes < 1 || bytes > 0xffffffff) {
    throw new Error(`invalid size "${value}": must be between 1 byte and 4GiB-1`);
  }
  return bytes;
}
