import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { parseListenAddress, type ListenAddress } from "./listen-address.js";
import { parseDuration } from "./duration.js";

/** Log levels accepted by --log-level (pino's names). */
export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** One of pino's level names. */
export type LogLevel = (typeof logLevels)[number];

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
}

/** The --help text. */
export const usage = `Usage: pnpm start [options]   (or: node dist/src/main.js [options])

Options (environment variable in brackets; flags win over the environment,
which wins over the config file):
  --config FILE         JSON config file with any of the settings below, in
                        camelCase, plus "pluginOptions". [CONFIG_FILE]
  --listen ADDR         Listen address, repeatable: HOST:PORT, [V6]:PORT, tcp://HOST:PORT
                        or unix:///path.sock. Overrides --host/--port. [LISTEN, comma-separated]
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
  --max-message-size N  Largest accepted request message in bytes, or with KiB/MiB
                        suffix (default 64MiB). [MAX_MESSAGE_SIZE]
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
  const listen = values.listen ?? list(env.LISTEN) ?? file.listen;
  return {
    listen: listen !== undefined && listen.length > 0 ? listen.map(parseListenAddress) : [tcpAddress(values, env, file)],
    logLevel: oneOf("log level", values["log-level"] ?? env.LOG_LEVEL ?? file.logLevel ?? "info", logLevels),
    logFormat: oneOf("log format", values["log-format"] ?? env.LOG_FORMAT ?? file.logFormat ?? "json", ["json", "pretty"] as const),
    gracePeriodMs: parseDuration(values["grace-period"] ?? env.GRACE_PERIOD ?? file.gracePeriod ?? "10s", "grace period"),
    maxMessageBytes: parseSize(values["max-message-size"] ?? env.MAX_MESSAGE_SIZE ?? file.maxMessageSize ?? "64MiB"),
    plugins: values.plugin ?? list(env.PLUGINS) ?? file.plugins ?? ["echo-log"],
    pluginOptions: file.pluginOptions ?? {},
    pluginTimeoutMs: positive(parseDuration(values["plugin-timeout"] ?? env.PLUGIN_TIMEOUT ?? file.pluginTimeout ?? "5s", "plugin timeout"), "plugin timeout"),
    logSecrets: values["log-secrets"] ?? (env.LOG_SECRETS !== undefined ? env.LOG_SECRETS === "true" : undefined) ?? file.logSecrets ?? false,
    logObjects: values["log-objects"] ?? (env.LOG_OBJECTS !== undefined ? env.LOG_OBJECTS === "true" : undefined) ?? file.logObjects ?? false,
    acceptEmptyAuthority:
      oneOf("empty-authority setting", values["empty-authority"] ?? env.EMPTY_AUTHORITY ?? file.emptyAuthority ?? "accept", ["accept", "refuse"] as const) === "accept",
    fastPath: onOff("fast-path setting", values["fast-path"] ?? env.FAST_PATH) ?? file.fastPath ?? true,
    workers: parseWorkers(values.workers ?? env.WORKERS ?? String(file.workers ?? 1)),
  };
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

function tcpAddress(
  values: { host?: string; port?: string },
  env: Readonly<Record<string, string | undefined>>,
  file: FileConfig,
): ListenAddress {
  const host = values.host ?? env.HOST ?? file.host ?? defaultHost;
  const port = values.port ?? env.PORT ?? (file.port !== undefined ? String(file.port) : String(defaultPort));
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
