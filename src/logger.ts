import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogLevel } from "./config.js";
import { markObjectExpanding, spliceDeferredObject } from "./object-log.js";
import { mergeTraceFields, traceLogFields } from "./trace-context.js";

export type { Logger };

/**
 * Creates the process logger: JSON lines on stdout, or human-readable lines
 * with --log-format pretty (synchronous; for people, not throughput).
 * JSON lines are written asynchronously, off the main thread; whatever is
 * still buffered is flushed when the process exits.
 */
export function createLogger(options: { level: LogLevel; format: "json" | "pretty" }): Logger {
  // Lines written while serving a call that came with a W3C traceparent carry its trace and span ids.
  const base = { level: options.level, base: undefined, timestamp: isoTimeCached, mixin: traceLogFields, mixinMergeStrategy: mergeTraceFields };
  if (options.format === "pretty") {
    return pino(base, pretty({ sync: true, colorize: process.stdout.isTTY === true }));
  }
  // Lines are written by a worker thread (pino's asynchronous transport), so
  // a slow stdout never stalls calls and the main thread makes no write
  // system calls. Measured under the benchmark with --log-objects: the
  // in-thread asynchronous destination (sonic-boom, sync: false) buffered
  // without bound (peak RSS 427 MiB, no faster); this one stays bounded
  // (its ring buffer blocks the logger only when full: 164 MiB). The thread
  // also builds the JSON of logged Dispatch Objects (object-log.ts).
  const destination = pino.transport({
    target: fileURLToPath(new URL("./log-transport.js", import.meta.url)),
    worker: { resourceLimits: logThreadLimits() },
  });
  process.once("exit", () => {
    try {
      destination.flushSync();
    } catch {
      // the worker is gone already: nothing left to save
    }
  });
  const logger = pino({ ...base, hooks: { streamWrite: spliceDeferredObject } }, destination);
  markObjectExpanding(logger);
  return logger;
}

let lastMs = 0;
let lastTime = "";

/**
 * pino's isoTime, formatted once per millisecond: under load many lines share
 * a millisecond, and `toISOString` was 3 % of a logged Dispatch call.
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
 * Measured with --log-objects: peak RSS 156 -> 142 MiB, throughput the same.
 */
function logThreadLimits(): { maxYoungGenerationSizeMb: number } {
  setFlagsFromString("--max-semi-space-size=0");
  return { maxYoungGenerationSizeMb: 6 }; // V8's young generation: two semi-spaces and a third for new large objects
}
