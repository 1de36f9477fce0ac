import { pino } from "pino";
import type { LogTap } from "../../src/observability/log-tap.js";
import { createLogger, type Logger } from "../../src/observability/logger.js";
import { mergeTraceFields, traceLogFields } from "../../src/observability/trace-context.js";

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

/**
 * A capturingLogger whose lines also go through `tap` (the call inspector
 * reads a call's lines there), as the server's logger does with --inspect.
 */
export function tappedLogger(tap: LogTap, level: "info" | "debug" = "debug"): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level, base: undefined, mixin: traceLogFields, mixinMergeStrategy: mergeTraceFields, hooks: { streamWrite: tap.write } },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}
