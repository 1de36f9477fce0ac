import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { TykEvent } from "./plugin.js";

/** How deeply an event payload's JSON may nest; Tyk's events nest 4 levels. */
export const maxEventDepth = 64;

/**
 * Parses a DispatchEvent payload, or throws INVALID_ARGUMENT saying why:
 * not JSON, or nested deeper than maxEventDepth. Why the depth: whatever
 * walks the value next (the log's masking and serialising, a plugin)
 * recurses, and 100k levels overflowed the stack, which surfaced as
 * INTERNAL, a server error, for what is the caller's.
 */
export function parseEventPayload(payload: string): JsonValue {
  if (nestingExceeds(payload, maxEventDepth)) {
    throw new ConnectError(`event payload is nested deeper than ${maxEventDepth} levels`, Code.InvalidArgument);
  }
  try {
    return JSON.parse(payload) as JsonValue;
  } catch (e) {
    throw new ConnectError(`event payload is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, Code.InvalidArgument);
  }
}

// One pass over the text, outside strings: brackets open and close levels.
function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/**
 * Reads the gateway's event payload (Go field names):
 * `{"message": {"Type", "Meta", "TimeStamp"}, "handler_name", "spec": {"APIID", "OrgID"}}`.
 * Returns undefined for JSON without a `handler_name`, which is not a Tyk event.
 */
export function parseTykEvent(payload: JsonValue): TykEvent | undefined {
  const root = asRecord(payload);
  const handlerName = root?.handler_name;
  if (root === undefined || typeof handlerName !== "string") {
    return undefined;
  }
  const message = asRecord(root.message) ?? {};
  const spec = asRecord(root.spec) ?? {};
  return {
    type: str(message.Type) ?? "",
    meta: asRecord(message.Meta) ?? {},
    timestamp: str(message.TimeStamp) ?? "",
    handlerName,
    apiId: str(spec.APIID),
    orgId: str(spec.OrgID),
    payload,
  };
}

function asRecord(value: unknown): Record<string, JsonValue> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, JsonValue>) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
