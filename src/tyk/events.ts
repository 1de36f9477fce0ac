import type { JsonValue } from "@bufbuild/protobuf";
import type { TykEvent } from "./plugin.js";

/**
 * Reads the gateway's event payload (Go field names):
 * `{"message": {"Type", "Meta", "TimeStamp"}, "handler_name", "spec": {"APIID", "OrgID"}}`.
 * Returns undefined for JSON without a `handler_name`, which is not a Tyk event.
 */
export function parseTykEvent(payload: JsonValue): TykEvent | undefined {
  const root = asRecord(payload);
  const handlerName = root?.["handler_name"];
  if (root === undefined || typeof handlerName !== "string") {
    return undefined;
  }
  const message = asRecord(root["message"]) ?? {};
  const spec = asRecord(root["spec"]) ?? {};
  return {
    type: str(message["Type"]) ?? "",
    meta: asRecord(message["Meta"]) ?? {},
    timestamp: str(message["TimeStamp"]) ?? "",
    handlerName,
    apiId: str(spec["APIID"]),
    orgId: str(spec["OrgID"]),
    payload,
  };
}

function asRecord(value: unknown): Record<string, JsonValue> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, JsonValue>) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
