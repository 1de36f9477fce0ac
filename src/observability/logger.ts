import { setFlagsFromString } from "node:v8";
import { type Logger, pino } from "pino";
import pretty from "pino-pretty";
import type { LogTap } from "./log-tap.js";
import { mergeTraceFields, traceLogFields } from "./trace-context.js";

export type { Logger };

/** Log levels accepted by --log-level (pino's names). */
export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** One of pino's level names. */
export type LogLevel = (typeof logLevels)[number];

/**
 * A log thread that finishes lines on their way out: its pino transport
 * module, and the hooks the event loop's side needs. Injected, so that this
 * module knows nothing of what is expanded (tyk/object-log.ts: Dispatch Objects).
 */
export interface LogThread {
  /** Path of the pino transport module the JSON lines are written through. */
  readonly target: string;
  /** pino's streamWrite hook: the last change to a line before it goes to the thread. */
  readonly streamWrite: (line: string) => string;
  /** Called once with the logger, to mark it as writing through this thread. */
  readonly adopt: (logger: Logger) => void;
}

/**
 * Creates the process logger: JSON lines on stdout, or human-readable lines
 * with --log-format pretty (synchronous; for people, not throughput).
 * `tap` sees each JSON line on the event loop, as written.
 * JSON lines are written asynchronously, off the main thread; whatever is
 * still buffered is flushed when the process exits.
 */
export function createLogger(options: { level: LogLevel; format: "json" | "pretty"; thread?: LogThread; tap?: LogTap }): Logger {
  // Lines written while serving a call that came with a W3C traceparent carry its trace and span ids.
  const base = { level: options.level, base: undefined, timestamp: isoTimeCached, mixin: traceLogFields, mixinMergeStrategy: mergeTraceFields };
  const tap = options.tap;
  if (options.format === "pretty") {
    return pino(tap ? { ...base, hooks: { streamWrite: tap.write } } : base, pretty({ sync: true, colorize: process.stdout.isTTY === true }));
  }
  // Lines are written by a worker thread (pino's asynchronous transport), so
  // a slow stdout never stalls calls and the main thread makes no write
  // system calls. The in-thread asynchronous destination (sonic-boom,
  // sync: false) buffered without bound under load and was no faster; this
  // one stays bounded (its ring buffer blocks the logger only when full;
  // docs/performance.md). The server's thread
  // also builds the JSON of logged Dispatch Objects (options.thread).
  const thread = options.thread;
  const destination = pino.transport({
    ...(thread ? { target: thread.target } : { target: "pino/file", options: { destination: 1 } }),
    worker: { resourceLimits: logThreadLimits() },
  });
  process.once("exit", () => {
    try {
      destination.flushSync();
    } catch {
      // the worker is gone already: nothing left to save
    }
  });
  const streamWrite = thread && tap ? (line: string) => tap.write(thread.streamWrite(line)) : (thread?.streamWrite ?? tap?.write);
  const logger = pino(streamWrite ? { ...base, hooks: { streamWrite } } : base, destination);
  thread?.adopt(logger);
  return logger;
}

let lastMs = 0;
let lastTime = "";

/**
 * pino's isoTime, formatted once per millisecond: under load many lines share
 * a millisecond, and `toISOString` showed in a logged Dispatch call's profile.
 */
function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * The log thread's young generation: 2 MiB semi-spaces. Its allocations
 * (one line at a time) die young and nothing waits on its collections, so a
 * small young generation costs it little, while the event loop's (set by
 * `--max-semi-space-size` on the command line, 8 in production) decides how
 * many calls in flight are copied and promoted. V8 lets a command-line
 * `--max-semi-space-size` override every isolate's own limit, so the flag
 * is reset to "unset" first: the main isolate has been configured already
 * and keeps its size; only isolates created from here on (this one) read it.
 * It saves RSS at no cost in throughput (docs/performance.md).
 */
function logThreadLimits(): { maxYoungGenerationSizeMb: number } {
  setFlagsFromString("--max-semi-space-size=0");
  return { maxYoungGenerationSizeMb: 6 }; // V8's young generation: two semi-spaces and a third for new large objects
}
