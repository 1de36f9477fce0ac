import { pino } from "pino";
import { createLogger, type Logger } from "../../src/observability/logger.js";

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return createLogger({ level: "silent", format: "json" });
}

/** A logger whose lines are kept, parsed, in `lines` (in-process tests that assert on the log). */
export function capturingLogger(level: "info" | "debug" = "info"): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level, base: undefined }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}
