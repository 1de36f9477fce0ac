import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SessionStateSchema } from "../../gen/coprocess_session_state_pb.js";

/** Headers sent to the client with an early answer. */
export type OutcomeHeaders = Readonly<Record<string, string>>;

/**
 * Stop the request with an error: the gateway answers `status` (>= 400) with
 * its JSON error template, `{"error": "<message>"}`, and fires AuthFailure.
 * The gateway JS-escapes the message into the page, where an apostrophe
 * would make it invalid JSON: `'` is sent as `’` (U+2019).
 */
export interface Reject {
  readonly kind: "reject";
  readonly status: number;
  readonly message: string;
  readonly headers: OutcomeHeaders;
}

/**
 * Answer the client without calling the upstream: `status` (any 100-599)
 * and `body` verbatim. A status >= 400 is sent as-is, not as Tyk's error page.
 */
export interface Respond {
  readonly kind: "respond";
  readonly status: number;
  readonly body: string;
  readonly headers: OutcomeHeaders;
}

/** A session for custom authentication, in the generated SessionState's init shape (int64 fields are bigint). */
export type SessionInit = MessageInitShape<typeof SessionStateSchema>;

/** Custom auth succeeded: the gateway stores `session` under `token` and applies its limits. */
export interface Allow {
  readonly kind: "allow";
  readonly session: SessionInit;
  readonly token: string;
  /** Seconds the gateway may reuse the session without calling the plugin (ID extractor cache). */
  readonly ttlSeconds: number | undefined;
}

/** What a Pre, PostKeyAuth or Post hook may return; nothing means "continue". */
export type RequestOutcome = Reject | Respond;

/** What a custom auth (CustomKeyCheck) hook must return. */
export type AuthOutcome = Allow | Reject | Respond;

/** Rejects the request with `status` (400-599) and Tyk's JSON error page carrying `message`. */
export function reject(status: number, message: string, options: { headers?: OutcomeHeaders } = {}): Reject {
  return { kind: "reject", status, message, headers: options.headers ?? {} };
}

/** Answers the client directly with `status` and `body`, skipping the upstream. */
export function respond(status: number, body: string, options: { headers?: OutcomeHeaders } = {}): Respond {
  return { kind: "respond", status, body, headers: options.headers ?? {} };
}

/**
 * Accepts a custom-auth request. `token` is the key the gateway stores the
 * session under (it is required: the gateway answers 403 without it).
 * `ttlSeconds` sets `id_extractor_deadline` to now + ttl, in Unix seconds.
 */
export function allow(session: SessionInit, options: { token: string; ttlSeconds?: number }): Allow {
  return { kind: "allow", session, token: options.token, ttlSeconds: options.ttlSeconds };
}

/** Refuses a custom-auth request: 403 (or `status`) with Tyk's error page. */
export function deny(message = "Access denied", options: { status?: number; headers?: OutcomeHeaders } = {}): Reject {
  return reject(options.status ?? 403, message, options);
}
