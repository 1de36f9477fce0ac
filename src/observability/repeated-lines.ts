import type { Logger } from "./logger.js";

/** How many lines of one kind are written per window before they are only counted. */
export interface RepeatLimits {
  /** Lines of one key written per window; the rest are counted. */
  readonly perWindow: number;
  readonly windowMs: number;
  /** Distinct keys tracked per window; further keys share one. */
  readonly maxKeys: number;
}

/** Defaults: 20 lines of a kind per 10 s, then one summary line per kind. */
export const defaultRepeatLimits: RepeatLimits = { perWindow: 20, windowMs: 10_000, maxKeys: 1000 };

interface KeyState {
  written: number;
  suppressed: number;
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * Warning lines that a caller can cause once per request (a refused call, a
 * malformed request, a refused connection), rate-limited per kind: the first
 * `perWindow` lines of a key in a window are written, the rest counted, and
 * at the window's end one line with the same message and the last one's
 * fields says how many were left out (`repeated: n`). Why: one client
 * sending thousands of bad requests a second must not fill the disk or
 * drown every other line (docs/hostile-input.md), yet no
 * refusal goes unrecorded.
 */
export class RepeatLimitedLog {
  readonly #logger: Logger;
  readonly #limits: RepeatLimits;
  #keys = new Map<string, KeyState>();
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, limits: RepeatLimits = defaultRepeatLimits) {
    this.#logger = logger;
    this.#limits = limits;
  }

  /** Writes the summary lines of the current window now (at shutdown). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const keys = this.#keys;
    this.#keys = new Map();
    for (const state of keys.values()) {
      if (state.suppressed > 0) {
        this.#logger.warn({ ...state.fields, repeated: state.suppressed, windowMs: this.#limits.windowMs }, state.msg);
      }
    }
  }

  /** Writes (or counts) a warning of kind `key`. */
  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    let state = this.#keys.get(key);
    if (state === undefined) {
      const k = this.#keys.size < this.#limits.maxKeys ? key : "(other)";
      state = this.#keys.get(k);
      if (state === undefined) {
        state = { written: 0, suppressed: 0, msg, fields };
        this.#keys.set(k, state);
      }
    }
    this.#timer ??= setTimeout(() => this.flush(), this.#limits.windowMs).unref();
    if (state.written < this.#limits.perWindow) {
      state.written++;
      this.#logger.warn(fields, msg);
    } else {
      state.suppressed++;
      state.fields = fields;
      state.msg = msg;
    }
  }
}
