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
}

/** The --help text. */
export const usage = `Usage: pnpm start [options]   (or: node dist/src/main.js [options])

Options (environment variable in brackets):
  --listen ADDR         Listen address, repeatable: HOST:PORT, [V6]:PORT, tcp://HOST:PORT
                        or unix:///path.sock. Overrides --host/--port. [LISTEN, comma-separated]
  --host HOST           Host to listen on (default ::, all interfaces). [HOST]
  --port PORT           TCP port (default 50051; 0 picks a free one). [PORT]
  --log-level LEVEL     ${logLevels.join("|")} (default info). Dispatch
                        Objects are logged as JSON at debug. [LOG_LEVEL]
  --log-format FORMAT   json (default, one JSON object per line) or pretty. [LOG_FORMAT]
  --grace-period DUR    Drain time on SIGTERM/SIGINT, e.g. 10s, 500ms (default 10s). [GRACE_PERIOD]
  --max-message-size N  Largest accepted request message in bytes, or with KiB/MiB
                        suffix (default 64MiB). [MAX_MESSAGE_SIZE]
  -h, --help            Show this help.
`;

const defaultPort = 50051;
const defaultHost = "::";

/**
 * Reads the configuration from command-line arguments and the environment.
 * Flags win over environment variables; both win over defaults.
 * Returns undefined when --help was asked for; throws an Error whose message
 * says what is wrong for anything it cannot use.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
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
        listen: { type: "string", multiple: true },
        host: { type: "string" },
        port: { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        "grace-period": { type: "string" },
        "max-message-size": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new Error(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    return undefined;
  }
  return {
    listen: listenAddresses(values, env),
    logLevel: oneOf("log level", values["log-level"] ?? env.LOG_LEVEL ?? "info", logLevels),
    logFormat: oneOf("log format", values["log-format"] ?? env.LOG_FORMAT ?? "json", ["json", "pretty"] as const),
    gracePeriodMs: parseDuration(values["grace-period"] ?? env.GRACE_PERIOD ?? "10s", "grace period"),
    maxMessageBytes: parseSize(values["max-message-size"] ?? env.MAX_MESSAGE_SIZE ?? "64MiB"),
  };
}

function listenAddresses(
  values: { listen?: string[]; host?: string; port?: string },
  env: Readonly<Record<string, string | undefined>>,
): ListenAddress[] {
  const listen = values.listen ?? splitList(env.LISTEN);
  if (listen.length > 0) {
    return listen.map(parseListenAddress);
  }
  const host = values.host ?? env.HOST ?? defaultHost;
  const port = values.port ?? env.PORT ?? String(defaultPort);
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw new Error(`invalid port "${port}": expected 0-65535`);
  }
  return [{ kind: "tcp", host, port: Number(port) }];
}

function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
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
