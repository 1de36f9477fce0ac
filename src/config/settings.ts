import { logLevels } from "../observability/logger.js";
import { defaultLimits } from "../transport/limits.js";
import { formatDuration } from "../util/duration.js";
import { formatSize } from "../util/size.js";

/**
 * How a setting is written. On the command line: `value` and `number` take
 * one value, `list` is repeatable, `flag` takes none, `switch` takes on|off,
 * `count` a number or "auto". In the environment a list is comma-separated
 * and a flag is "true". In the config file: a string, a number, an array of
 * strings, a boolean (flag, switch), a number or "auto" (count), an object.
 */
export type SettingKind = "value" | "number" | "list" | "flag" | "switch" | "count" | "object";

/** The JSON value a setting of each kind takes in the config file, as messages and the docs name it. */
export const fileValueType: Readonly<Record<SettingKind, string>> = {
  value: "a string",
  number: "a number",
  list: "a string[]",
  flag: "a boolean",
  switch: "a boolean",
  count: 'a whole number or "auto"',
  object: "an object",
};

/** One setting, declared once: parseArgs, the config file check, --help and docs/configuration.md all come from it. */
export interface Setting {
  /** The command-line flag without its dashes; names the setting everywhere. */
  readonly flag: string;
  readonly kind: SettingKind;
  /** The value's placeholder in --help ("DUR", "ADDR"). */
  readonly arg?: string;
  /** The only values accepted, when there is a fixed set. */
  readonly choices?: readonly string[];
  /** The value used when the setting is not given, written as it would be given. */
  readonly default?: string;
  /** What the docs say of the default when it is not one plain value (it depends on other settings). */
  readonly defaultText?: string;
  /** What it does: one or two sentences. */
  readonly help: string;
  /** The group it is listed under. */
  readonly section: "Server" | "Logging" | "Plugins" | "HTTP" | "Inspector" | "Users store" | "TLS" | "Limits";
  /** Its environment variable, when not the flag in upper snake case; false: none. */
  readonly env?: string | false;
  /** Its config file key, when not the flag in camelCase; false: none. */
  readonly fileKey?: string | false;
  /** Only in the config file (no flag, no environment variable). */
  readonly fileOnly?: boolean;
  /** A one-letter alias. */
  readonly short?: string;
  /** Listed in the README's short table. */
  readonly common?: boolean;
}

const limits = defaultLimits;

/** Where --inspect serves the inspector when no --http-listen address is given. */
export const defaultInspectorListen = "127.0.0.1:8090";

/** Every setting of the server. */
export const settings = [
  {
    flag: "config",
    kind: "value",
    arg: "FILE",
    section: "Server",
    env: "CONFIG_FILE",
    fileKey: false,
    common: true,
    help: "JSON config file with any of these settings under their config file keys, plus pluginOptions.",
  },
  {
    flag: "listen",
    kind: "list",
    arg: "ADDR",
    section: "Server",
    common: true,
    defaultText: "[::]:50051 (--host and --port)",
    help: "Listen address, repeatable: HOST:PORT, [V6]:PORT, tcp://HOST:PORT or unix:///path.sock; overrides --host and --port. A stale socket file is replaced, a live one is an error.",
  },
  { flag: "host", kind: "value", arg: "HOST", section: "Server", default: "::", help: "Interface to listen on (:: falls back to 0.0.0.0 without IPv6)." },
  { flag: "port", kind: "number", arg: "PORT", section: "Server", default: "50051", common: true, help: "TCP port; 0 picks a free one." },
  {
    flag: "unix-socket-group",
    kind: "value",
    arg: "GROUP",
    section: "Server",
    help: "Group of the unix socket files (name or id); their mode is 0660, so that members of the group (a gateway's user) may connect.",
  },
  {
    flag: "workers",
    kind: "count",
    arg: "N|auto",
    section: "Server",
    default: "1",
    common: true,
    help: "Server processes sharing the listeners (auto: one per CPU); crashed workers are restarted.",
  },
  {
    flag: "grace-period",
    kind: "value",
    arg: "DUR",
    section: "Server",
    default: "10s",
    common: true,
    help: "How long in-flight calls may finish after SIGTERM/SIGINT before they are cut off.",
  },
  {
    flag: "empty-authority",
    kind: "value",
    arg: "MODE",
    choices: ["accept", "refuse"],
    section: "Server",
    default: "accept",
    help: "Accept or refuse requests with an empty :authority, as Tyk <= 5.8.2 sends them without grpc_authority.",
  },
  {
    flag: "fast-path",
    kind: "switch",
    section: "Server",
    default: "on",
    help: "Serve unary gRPC calls on the lean path; off leaves every call to connect-node.",
  },
  { flag: "help", kind: "flag", short: "h", section: "Server", env: false, fileKey: false, help: "Show this help." },

  {
    flag: "log-level",
    kind: "value",
    arg: "LEVEL",
    choices: logLevels,
    section: "Logging",
    default: "info",
    common: true,
    help: "pino's level; debug adds a line per call and the Dispatch Object as JSON.",
  },
  {
    flag: "log-format",
    kind: "value",
    arg: "FORMAT",
    choices: ["json", "pretty"],
    section: "Logging",
    default: "json",
    help: "json (one object per line) or pretty (for people, synchronous).",
  },
  {
    flag: "log-objects",
    kind: "flag",
    section: "Logging",
    help: "Log every Dispatch Object (masked) as JSON at info level, as the tutorial's server prints it; at debug it is logged anyway.",
  },
  { flag: "log-secrets", kind: "flag", section: "Logging", help: "Do not mask credentials in logged Objects and events (local debugging only)." },

  {
    flag: "plugin",
    kind: "list",
    arg: "NAME",
    section: "Plugins",
    default: "echo-log",
    env: "PLUGINS",
    fileKey: "plugins",
    common: true,
    help: "Plugin to load, repeatable: a name from src/plugins/, or a path to a module (.js, or .ts without a build step).",
  },
  {
    flag: "watch",
    kind: "flag",
    section: "Plugins",
    env: "PLUGINS_WATCH",
    fileKey: "watch",
    help: "Reload the plugins given by path when their folder changes (development); SIGHUP reloads them anyway.",
  },
  { flag: "plugin-timeout", kind: "value", arg: "DUR", section: "Plugins", default: "5s", help: "Time budget of one plugin hook or event handler call." },
  {
    flag: "plugin-options",
    kind: "object",
    section: "Plugins",
    fileKey: "pluginOptions",
    fileOnly: true,
    help: "Options handed to each plugin's setup, by plugin name (as given to --plugin).",
  },

  {
    flag: "http-listen",
    kind: "list",
    arg: "ADDR",
    section: "HTTP",
    common: true,
    help: "Also serve plain HTTP/1.1 here, repeatable: Connect and gRPC-Web for every method, GET /users (NDJSON), /healthz, /readyz, /metrics.",
  },
  { flag: "metrics", kind: "switch", section: "HTTP", default: "on", help: "Count calls and hooks for Prometheus (served at /metrics of --http-listen)." },

  {
    flag: "inspect",
    kind: "flag",
    section: "Inspector",
    common: true,
    help: `Serve the live call inspector at /inspect of --http-listen (${defaultInspectorListen} when none is given): each Dispatch call's Object, reply and log lines. It shows request data: a non-loopback address needs --inspect-token.`,
  },
  {
    flag: "inspect-token",
    kind: "value",
    arg: "TOKEN",
    section: "Inspector",
    help: "A secret of 16 characters or more the inspector asks for (open /inspect?token=TOKEN once); required when an --http-listen address is not loopback.",
  },
  {
    flag: "inspect-calls",
    kind: "number",
    arg: "N",
    section: "Inspector",
    default: "200",
    help: "How many of the last calls the inspector keeps (1-10000); bodies over 16 KiB are kept cut, with their size.",
  },

  {
    flag: "users-store",
    kind: "value",
    arg: "KIND",
    choices: ["sqlite", "pglite", "postgres", "memory"],
    section: "Users store",
    common: true,
    defaultText: "sqlite (pglite on Node.js 20, which has no node:sqlite); postgres when --database-url is set",
    help: "Where the Users service keeps its users: an SQLite file (node:sqlite), embedded PostgreSQL (PGlite), a PostgreSQL server, or memory.",
  },
  { flag: "users-data", kind: "value", arg: "DIR", section: "Users store", default: "./data/users", help: "The embedded store's directory." },
  { flag: "database-url", kind: "value", arg: "URL", section: "Users store", help: "postgres://user:password@host:5432/db for --users-store postgres." },
  {
    flag: "users-store-open",
    kind: "value",
    arg: "WHEN",
    choices: ["lazy", "start"],
    section: "Users store",
    default: "lazy",
    help: "Open the store at the first Users call (a pure Tyk plugin server never opens it), or before listening.",
  },

  {
    flag: "tls-listen",
    kind: "list",
    arg: "ADDR",
    section: "TLS",
    common: true,
    help: "Listen with TLS (h2, HTTP/1.1 by ALPN) here, repeatable. With only TLS addresses no plaintext port is opened, unless --listen, --host or --port is given.",
  },
  { flag: "tls-cert", kind: "value", arg: "FILE", section: "TLS", help: "PEM certificate chain of the TLS listeners; re-read on SIGHUP." },
  { flag: "tls-key", kind: "value", arg: "FILE", section: "TLS", help: "PEM private key of the TLS listeners; re-read on SIGHUP." },
  { flag: "tls-client-ca", kind: "value", arg: "FILE", section: "TLS", help: "Require client certificates signed by this PEM CA (mTLS)." },

  {
    flag: "max-message-size",
    kind: "value",
    arg: "SIZE",
    section: "Limits",
    default: "64MiB",
    help: "Largest request message (bytes, or KiB/MiB/GiB); larger ones get RESOURCE_EXHAUSTED.",
  },
  {
    flag: "max-concurrent-streams",
    kind: "number",
    arg: "N",
    section: "Limits",
    default: String(limits.maxConcurrentStreams),
    help: "Calls open at once on one HTTP/2 connection.",
  },
  {
    flag: "max-header-list-size",
    kind: "value",
    arg: "SIZE",
    section: "Limits",
    default: formatSize(limits.maxHeaderListBytes),
    help: "Largest request header list (HTTP/2 and HTTP/1.1).",
  },
  {
    flag: "idle-timeout",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.idleTimeoutMs),
    help: "Close HTTP/2 connections with no call open for this long (GOAWAY), HTTP/1.1 ones with no bytes for this long; 0: never.",
  },
  {
    flag: "keepalive-interval",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.keepaliveIntervalMs),
    help: "Send a PING on every HTTP/2 connection this often; 0: never.",
  },
  {
    flag: "keepalive-timeout",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.keepaliveTimeoutMs),
    help: "Close a connection whose PING is not answered in this time.",
  },
  {
    flag: "max-connection-age",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.maxConnectionAgeMs),
    help: "Send a GOAWAY to each HTTP/2 connection this long (+-10 % jitter) after it opened, so that clients reconnect and a load balancer can spread them; calls in flight finish; 0: never.",
  },
  {
    flag: "max-connection-age-grace",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.maxConnectionAgeGraceMs),
    help: "After that GOAWAY, end the calls still open after this long and close the connection; 0: wait for them.",
  },
  {
    flag: "max-deadline",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.maxDeadlineMs),
    help: "Cap on every call's deadline: calls without one, or with a longer one, get this one; 0: no cap.",
  },
  {
    flag: "max-connections",
    kind: "number",
    arg: "N",
    section: "Limits",
    default: String(limits.maxConnections),
    help: "Connections open at once on the RPC listeners, and again on the --http-listen ones; at the cap the oldest connection that has completed no request is closed.",
  },
  {
    flag: "headers-timeout",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.headersTimeoutMs),
    help: "HTTP/1.1: a request's headers must arrive within this (408).",
  },
  {
    flag: "request-timeout",
    kind: "value",
    arg: "DUR",
    section: "Limits",
    default: formatDuration(limits.requestTimeoutMs),
    help: "HTTP/1.1: the whole request must arrive within this (408).",
  },
  {
    flag: "memory-budget",
    kind: "value",
    arg: "SIZE",
    section: "Limits",
    default: formatSize(limits.memory.processBytes),
    help: "What all requests (as received and decompressed) and unsent replies may hold at once; past it, RESOURCE_EXHAUSTED.",
  },
  {
    flag: "connection-memory-budget",
    kind: "value",
    arg: "SIZE",
    section: "Limits",
    default: formatSize(limits.memory.connectionBytes),
    help: "The same for one connection.",
  },
] as const satisfies readonly Setting[];

/** A setting's name: its flag. */
export type SettingName = (typeof settings)[number]["flag"];

/** The settings that take one of a fixed set of values. */
export type ChoiceName = Extract<(typeof settings)[number], { choices: readonly string[] }>["flag"];

/** The values a choice setting takes (from its `choices`). */
export type ChoiceOf<N extends ChoiceName> = Extract<(typeof settings)[number], { flag: N }>["choices"][number];

/** The setting of that name. */
export function settingNamed(name: SettingName): Setting {
  return settings.find((s) => s.flag === name)!;
}

/** A setting's environment variable: its own, or the flag in upper snake case (--max-deadline: MAX_DEADLINE). */
export function envVariable(setting: Setting): string | undefined {
  if (setting.fileOnly || setting.env === false) return undefined;
  return setting.env ?? setting.flag.toUpperCase().replaceAll("-", "_");
}

/** A setting's config file key: its own, or the flag in camelCase (--max-deadline: maxDeadline). */
export function fileKey(setting: Setting): string | undefined {
  if (setting.fileKey === false) return undefined;
  return setting.fileKey ?? setting.flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}
