import type { Object$ } from "../../gen/coprocess_object_pb.js";
import type { Logger } from "../logger.js";

/** What a dispatch handler gets besides the Object. */
export interface DispatchContext {
  readonly logger: Logger;
  /** Aborts when the gateway cancels the call or the server gives up on it. */
  readonly signal: AbortSignal;
}

/**
 * Handles one `Dispatch` call: receives the Object the gateway built for a
 * hook and returns the Object the gateway applies. The gateway replaces its
 * request state with the reply, so a handler returns the Object it got,
 * edited, never a fresh one.
 */
export type DispatchHandler = (object: Object$, ctx: DispatchContext) => Object$ | Promise<Object$>;

/** The default handler, as in Tyk's tutorial server: every hook passes through unchanged. */
export const passThrough: DispatchHandler = (object) => object;
