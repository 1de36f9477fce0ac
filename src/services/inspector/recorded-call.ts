import type { JsonValue } from "@bufbuild/protobuf";
import type { ObjectJson } from "../../../gen/coprocess_object_pb.js";
import type { HookMetricOutcome } from "../../observability/metrics.js";
import { maskObjectJson } from "../../tyk/mask.js";
import { type Change, describeChanges, jsonChanges } from "./object-changes.js";

/** One call as the inspector's list shows it (sent to every viewer as it ends). */
export interface CallSummary {
  readonly id: number;
  /** When the call arrived (ISO 8601). */
  readonly time: string;
  readonly apiId: string;
  /** The hook type's name: Pre, PostKeyAuth, Post, CustomKeyCheck, Response. */
  readonly hookType: string;
  readonly hookName: string;
  /** The plugin that served it; null when none did. */
  readonly plugin: string | null;
  readonly outcome: HookMetricOutcome;
  /** From the Object's arrival at the plugin host to its reply (or error). */
  readonly ms: number;
  readonly method: string;
  /** The request's URL as received, credentials in the query masked. */
  readonly url: string;
  /** The status the reply makes the gateway answer (an early answer's, a Response hook's); null otherwise. */
  readonly status: number | null;
  /** The gRPC error the gateway got instead of a reply. */
  readonly error: string | null;
  /** The W3C trace id the call came with. */
  readonly traceId: string | null;
}

/** One call opened: its summary, the Object received and the reply, what changed, and what was cut for display. */
export interface CallDetail extends CallSummary, CallContents {}

/** What a call's Objects show: the Object received and the reply, what changed, and what was cut. */
export interface CallContents {
  readonly received: JsonValue;
  /** Null when the call failed (see `error`). */
  readonly reply: JsonValue | null;
  /** Paths that differ between received and reply, as computed before masking and cutting. */
  readonly changes: readonly Change[];
  /** The changes in words. */
  readonly notes: readonly string[];
  /** Strings cut for display: their path, side and full size in bytes. */
  readonly cut: readonly { readonly side: "received" | "reply"; readonly path: readonly string[]; readonly bytes: number }[];
  /** Whether credentials were masked (as in the log). */
  readonly masked: boolean;
}

/** Strings longer than this (bodies, mostly) are kept cut to it, with their size. */
export const maxShownString = 16 * 1024;

/**
 * What a call's Objects show, from the proto3 JSON of the Object as
 * received and of its reply (fresh documents: they are masked in place).
 * The changes are found first, on the whole values, so that a change past
 * the cut or hidden by the mask is still reported.
 */
export function callContents(received: ObjectJson, reply: ObjectJson | null, logSecrets: boolean): CallContents {
  const changes = reply === null ? [] : jsonChanges(received as JsonValue, reply as JsonValue);
  if (!logSecrets) {
    maskObjectJson(received);
    if (reply !== null) maskObjectJson(reply);
  }
  const cut: { side: "received" | "reply"; path: string[]; bytes: number }[] = [];
  const shownReceived = cutStrings(received as JsonValue, [], (path, bytes) => cut.push({ side: "received", path, bytes }));
  const shownReply = reply === null ? null : cutStrings(reply as JsonValue, [], (path, bytes) => cut.push({ side: "reply", path, bytes }));
  return {
    received: shownReceived,
    reply: shownReply,
    changes,
    notes: describeChanges(changes, shownReceived, shownReply),
    cut,
    masked: !logSecrets,
  };
}

// A copy of `value` with every string over maxShownString cut to it (and "…" added), each cut reported.
function cutStrings(value: JsonValue, path: string[], onCut: (path: string[], bytes: number) => void): JsonValue {
  if (typeof value === "string") {
    if (value.length <= maxShownString) return value;
    onCut(path, bytesOf(path, value));
    return `${value.slice(0, maxShownString)}…`;
  }
  if (Array.isArray(value)) {
    return value.map((v, i) => cutStrings(v, [...path, String(i)], onCut));
  }
  if (typeof value === "object" && value !== null) {
    const out: { [key: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) out[k] = cutStrings(v, [...path, k], onCut);
    return out;
  }
  return value;
}

// The size of what a string stands for: bytes fields are base64 in proto3 JSON.
function bytesOf(path: readonly string[], value: string): number {
  if (path.at(-1) === "rawBody") {
    const padding = value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0;
    return Math.floor((value.length * 3) / 4) - padding;
  }
  return Buffer.byteLength(value);
}
