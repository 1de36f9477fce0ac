import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogLevel } from "./config.js";

export type { Logger };

/**
 * Creates the process logger: JSON lines on stdout, or human-readable lines
 * with --log-format pretty. Writes are synchronous so that the last lines
 * before an exit are never lost.
 */
export function createLogger(options: { level: LogLevel; format: "json" | "pretty" }): Logger {
  const base = { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (options.format === "pretty") {
    return pino(base, pretty({ sync: true, colorize: process.stdout.isTTY === true }));
  }
  return pino(base, pino.destination({ fd: 1, sync: true }));
}
