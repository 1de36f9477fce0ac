import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogLevel } from "./config.js";

export type { Logger };

const flushIntervalMs = 100;

/**
 * Creates the process logger: JSON lines on stdout, or human-readable lines
 * with --log-format pretty (synchronous; for people, not throughput).
 * JSON lines are written asynchronously so a slow stdout never stalls calls;
 * whatever is still buffered is flushed when the process exits.
 */
export function createLogger(options: { level: LogLevel; format: "json" | "pretty" }): Logger {
  const base = { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (options.format === "pretty") {
    return pino(base, pretty({ sync: true, colorize: process.stdout.isTTY === true }));
  }
  // Lines are gathered into writes of at least 4 KiB (one write per line
  // would be a system call per line) and flushed at least every 100 ms, so
  // a quiet server's lines still show.
  const destination = pino.destination({ fd: 1, sync: false, minLength: 4096, periodicFlush: flushIntervalMs });
  process.once("exit", () => {
    try {
      destination.flushSync();
    } catch {
      // stdout already closed: nothing left to save
    }
  });
  return pino(base, destination);
}
