import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { type ParseArgsConfig, parseArgs } from "node:util";
import type { LogLevel } from "../observability/logger.js";
import type { ConnectionLimits } from "../transport/limits.js";
import { formatListenAddress, isLoopbackAddress, type ListenAddress, parseListenAddress } from "../transport/listen-address.js";
import type { TlsFiles } from "../transport/tls.js";
import { groupId } from "../transport/unix-socket.js";
import type { UsersStoreConfig } from "../users/open-user-store.js";
import { sqliteAvailable } from "../users/sqlite-user-store.js";
import { parseDuration } from "../util/duration.js";
import { parseSize } from "../util/size.js";
import {
  type ChoiceName,
  type ChoiceOf,
  defaultInspectorListen,
  envVariable,
  fileKey,
  fileValueType,
  type Setting,
  type SettingName,
  settingNamed,
  settings,
} from "./settings.js";
import { helpText } from "./settings-text.js";

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
  /** Reload path plugins when their folders change. */
  readonly watchPlugins: boolean;
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
  /** The call inspector at /inspect of the HTTP listeners (--inspect); undefined when off. */
  readonly inspector: InspectorConfig | undefined;
}

/** How the call inspector is served. */
export interface InspectorConfig {
  /** What a viewer must show (once, as ?token=); undefined: loopback viewers need none. */
  readonly token: string | undefined;
  /** How many of the last calls are kept. */
  readonly calls: number;
}

/** The --help text. */
export const usage = helpText();

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
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({ args, strict: true, allowPositionals: false, options: parseArgsOptions() }));
  } catch (e) {
    throw new Error(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    return undefined;
  }
  const configPath = (values.config as string | undefined) ?? env.CONFIG_FILE;
  const file = configPath === undefined ? {} : readConfigFile(configPath, readFile);
  const get = settingReader(values, env, file);
  const listen = get.list("listen");
  const tlsListen = (get.list("tls-listen") ?? []).map(parseListenAddress);
  // With TLS listeners only, the default plaintext port is not opened; naming
  // a plaintext host or port still opens it.
  const plaintextNamed = [get.optional("host"), get.optional("port")].some((v) => v !== undefined && v !== "");
  const tls = tlsFiles(get.optional("tls-cert"), get.optional("tls-key"), get.optional("tls-client-ca"), tlsListen.length > 0);
  const inspect = get.flag("inspect");
  const config: Config = {
    listen:
      listen !== undefined && listen.length > 0
        ? listen.map(parseListenAddress)
        : tlsListen.length > 0 && !plaintextNamed
          ? []
          : [tcpAddress(get.text("host"), get.text("port"))],
    logLevel: get.choice("log-level"),
    logFormat: get.choice("log-format"),
    gracePeriodMs: get.duration("grace-period"),
    maxMessageBytes: get.size("max-message-size"),
    plugins: get.list("plugin") ?? [get.text("plugin")],
    pluginOptions: (get.given("plugin-options") as Record<string, unknown> | undefined) ?? {},
    pluginTimeoutMs: get.duration("plugin-timeout", { positive: true }),
    watchPlugins: get.flag("watch"),
    logSecrets: get.flag("log-secrets"),
    logObjects: get.flag("log-objects"),
    acceptEmptyAuthority: get.choice("empty-authority") === "accept",
    fastPath: get.on("fast-path"),
    workers: parseWorkers(get.text("workers")),
    tlsListen,
    tls,
    httpListen: (get.list("http-listen") ?? (inspect ? [defaultInspectorListen] : [])).map(parseListenAddress),
    metrics: get.on("metrics"),
    inspector: inspect ? { token: get.optional("inspect-token"), calls: parseCount("inspect calls", get.text("inspect-calls"), 10_000) } : undefined,
    users: usersStore(get),
    unixSocketGroup: socketGroup(get.optional("unix-socket-group")),
    limits: {
      maxConcurrentStreams: get.count("max-concurrent-streams"),
      maxHeaderListBytes: get.size("max-header-list-size"),
      idleTimeoutMs: get.duration("idle-timeout"),
      maxConnectionAgeMs: get.duration("max-connection-age"),
      maxConnectionAgeGraceMs: get.duration("max-connection-age-grace"),
      keepaliveIntervalMs: get.duration("keepalive-interval"),
      keepaliveTimeoutMs: get.duration("keepalive-timeout", { positive: true }),
      maxDeadlineMs: get.duration("max-deadline"),
      maxConnections: get.count("max-connections"),
      headersTimeoutMs: get.duration("headers-timeout", { positive: true }),
      requestTimeoutMs: get.duration("request-timeout", { positive: true }),
      memory: { processBytes: get.size("memory-budget"), connectionBytes: get.size("connection-memory-budget") },
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
  checkInspector(config);
  return config;
}

// The inspector shows request data (credentials masked, the rest as sent):
// off the loopback interface only with a token, and from one process, the
// one whose calls it shows.
function checkInspector(config: Config): void {
  const inspector = config.inspector;
  if (inspector === undefined) {
    return;
  }
  if (inspector.token !== undefined && inspector.token.length < 16) {
    throw new Error("--inspect-token must be 16 characters or more (e.g. openssl rand -hex 16)");
  }
  const open = config.httpListen.filter((a) => !isLoopbackAddress(a));
  if (open.length > 0 && inspector.token === undefined) {
    throw new Error(
      `--inspect on ${open.map(formatListenAddress).join(", ")}, which is not loopback, needs --inspect-token (or INSPECT_TOKEN): the page shows request data`,
    );
  }
  if (config.workers > 1) {
    throw new Error("--inspect needs --workers 1: each worker serves its own calls, and a page would see only one worker's");
  }
}

// parseArgs' options, from the settings table.
function parseArgsOptions(): ParseArgsConfig["options"] {
  const options: NonNullable<ParseArgsConfig["options"]> = {};
  for (const s of settings as readonly Setting[]) {
    if (s.fileOnly) continue;
    options[s.flag] = { type: s.kind === "flag" ? "boolean" : "string", ...(s.kind === "list" && { multiple: true }), ...(s.short && { short: s.short }) };
  }
  return options;
}

/** Reads settings by name: the flag, else its environment variable, else its config file key, else its default. */
interface SettingReader {
  /** As given (flag, environment, file), before any default; a file's number or boolean as it is. */
  given(name: SettingName): unknown;
  /** As given, as text; undefined when not given. */
  optional(name: SettingName): string | undefined;
  /** As given or by default, as text. */
  text(name: SettingName): string;
  /** One of the setting's choices; `fallback` stands in for a default the table cannot state. */
  choice<N extends ChoiceName>(name: N, fallback?: ChoiceOf<N>): ChoiceOf<N>;
  /** An on|off switch's. */
  on(name: SettingName): boolean;
  /** Milliseconds; with `positive`, 0 is refused. */
  duration(name: SettingName, options?: { positive: boolean }): number;
  /** A whole number within HTTP/2's 31-bit settings range. */
  count(name: SettingName): number;
  /** Bytes (see parseSize). */
  size(name: SettingName): number;
  /** A flag's: given or not; "true" in the environment; a boolean in the file. */
  flag(name: SettingName): boolean;
  /** A repeatable setting's values; undefined when not given. */
  list(name: SettingName): string[] | undefined;
}

function settingReader(values: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>, file: Record<string, unknown>): SettingReader {
  const fromEnv = (s: Setting) => {
    const name = envVariable(s);
    return name === undefined ? undefined : env[name];
  };
  const fromFile = (s: Setting) => {
    const key = fileKey(s);
    return key === undefined ? undefined : file[key];
  };
  const given = (name: SettingName): unknown => {
    const s = settingNamed(name);
    if (s.kind === "list") return values[s.flag] ?? splitList(fromEnv(s)) ?? fromFile(s);
    if (s.kind === "flag") {
      const envValue = fromEnv(s);
      return values[s.flag] ?? (envValue === undefined ? undefined : envValue === "true") ?? fromFile(s);
    }
    // A switch is on|off on the command line and in the environment, a boolean in the file.
    const inFile = fromFile(s);
    return values[s.flag] ?? fromEnv(s) ?? (s.kind === "switch" && typeof inFile === "boolean" ? (inFile ? "on" : "off") : inFile);
  };
  const text = (name: SettingName): string => {
    const value = given(name) ?? settingNamed(name).default;
    if (value === undefined) throw new Error(`--${name} has no default`);
    return String(value);
  };
  const words = (name: SettingName) => name.replaceAll("-", " ");
  return {
    given,
    optional: (name) => {
      const value = given(name);
      return value === undefined ? undefined : String(value);
    },
    text,
    choice: <N extends ChoiceName>(name: N, fallback?: ChoiceOf<N>) =>
      oneOf(words(name), (given(name) as string | undefined) ?? fallback ?? text(name), settingNamed(name).choices as readonly ChoiceOf<N>[]),
    on: (name) => oneOf(words(name), text(name), ["on", "off"] as const) === "on",
    duration: (name, options) => {
      const ms = parseDuration(text(name), words(name));
      if (options?.positive && ms <= 0) throw new Error(`invalid ${words(name)}: must be more than 0`);
      return ms;
    },
    count: (name) => parseCount(words(name), text(name)),
    size: (name) => parseSize(text(name)),
    flag: (name) => (given(name) as boolean | undefined) ?? false,
    list: (name) => given(name) as string[] | undefined,
  };
}

// Resolved now, so that an unknown group stops the start with a clear message.
function socketGroup(group: string | undefined): string | undefined {
  if (group !== undefined) groupId(group);
  return group;
}

function usersStore(get: SettingReader): UsersStoreConfig {
  const databaseUrl = get.optional("database-url");
  const embedded = sqliteAvailable ? "sqlite" : "pglite";
  const kind = get.choice("users-store", databaseUrl ? "postgres" : embedded);
  const open = get.choice("users-store-open");
  if (kind === "postgres") {
    if (!databaseUrl) throw new Error("--users-store postgres needs --database-url (or DATABASE_URL)");
    return { kind, databaseUrl, open };
  }
  if (kind === "sqlite" && !sqliteAvailable) {
    throw new Error(`--users-store sqlite needs node:sqlite (Node.js 22.13 or newer; this is ${process.version}): use pglite, postgres or memory`);
  }
  if (kind === "sqlite" || kind === "pglite") {
    return { kind, dataDir: get.text("users-data"), open };
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

// A positive whole number up to `max` (by default HTTP/2's 31-bit settings range).
function parseCount(what: string, value: string, max = 2 ** 31 - 1): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new Error(`invalid ${what} "${value}": expected a whole number from 1 to ${max}`);
  }
  return Number(value);
}

// The settings by config file key.
const byFileKey = new Map(
  (settings as readonly Setting[]).flatMap((s) => {
    const key = fileKey(s);
    return key === undefined ? [] : [[key, s] as const];
  }),
);

// Whether a config file value has the JSON type its setting's kind takes.
function fileValueOk(kind: Setting["kind"], value: unknown): boolean {
  switch (kind) {
    case "value":
      return typeof value === "string";
    case "number":
      return typeof value === "number";
    case "flag":
    case "switch":
      return typeof value === "boolean";
    case "list":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "count":
      return (typeof value === "number" && Number.isInteger(value)) || value === "auto";
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
  }
}

function readConfigFile(path: string, readFile: (path: string) => string): Record<string, unknown> {
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
    const setting = byFileKey.get(key);
    if (setting === undefined) {
      throw new Error(`config file ${path}: unknown setting "${key}" (known: ${[...byFileKey.keys()].join(", ")})`);
    }
    if (!fileValueOk(setting.kind, value)) {
      throw new Error(`config file ${path}: "${key}" must be ${fileValueType[setting.kind]}`);
    }
  }
  return parsed as Record<string, unknown>;
}

function tcpAddress(host: string, port: string): ListenAddress {
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw new Error(`invalid port "${port}": expected 0-65535`);
  }
  return { kind: "tcp", host, port: Number(port) };
}

// A comma-separated environment list; undefined when unset or empty.
function splitList(value: string | undefined): string[] | undefined {
  const items = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return items.length > 0 ? items : undefined;
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

function oneOf<T extends string>(what: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) {
    return value as T;
  }
  throw new Error(`invalid ${what} "${value}": expected one of ${allowed.join(", ")}`);
}
