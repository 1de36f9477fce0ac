import { toBinary, toJson } from "@bufbuild/protobuf";
import { ObjectSchema, type Object$, type ObjectJson } from "../gen/coprocess_object_pb.js";
import type { Logger } from "./logger.js";
import { maskObjectJson } from "./tyk/mask.js";
import { wireBytesOf } from "./wire-bytes.js";

/**
 * Log fields that stand for an Object's proto3 JSON until the log thread
 * writes the line: the Object's protobuf bytes in base64, to be shown masked
 * or (with --log-secrets) as they are. log-transport.ts replaces such a
 * field by `"object":{...}` before the line leaves the process, so no line
 * is ever written with one.
 */
export const deferredObjectFields = { masked: "coprocess.Object:base64", unmasked: "coprocess.Object:base64:unmasked" } as const;

// Set on loggers whose lines go through log-transport.ts.
const kExpandsObjects = Symbol("expands deferred Objects");

/** Marks a logger whose destination is log-transport.ts and whose streamWrite hook is spliceDeferredObject (the JSON format's). */
export function markObjectExpanding(logger: Logger): void {
  (logger as Logger & { [kExpandsObjects]?: true })[kExpandsObjects] = true;
}

// The deferred field is logged with the placeholder value 0 and the base64
// put in by spliceDeferredObject: pino checks a string value for characters
// to escape with JSON.stringify, 1.1 µs for a 505-byte Object's base64,
// which has none.
const placeholders = { masked: `"${deferredObjectFields.masked}":0`, unmasked: `"${deferredObjectFields.unmasked}":0` };

// The Object whose line pino is writing now.
let pending: { readonly placeholder: string; readonly base64: string } | undefined;

/**
 * pino's streamWrite hook on loggers marked by markObjectExpanding: puts
 * the base64 of the Object being logged in place of its field's placeholder.
 * Other lines are returned as they are.
 */
export function spliceDeferredObject(line: string): string {
  if (pending === undefined) {
    return line;
  }
  const { placeholder, base64 } = pending;
  pending = undefined;
  const at = line.indexOf(placeholder);
  if (at < 0) {
    return line;
  }
  const valueAt = at + placeholder.length - 1;
  return `${line.slice(0, valueAt)}"${base64}"${line.slice(valueAt + 1)}`;
}

/**
 * Logs a Dispatch Object as proto3 JSON ("dispatch object"), with
 * credentials masked unless `logSecrets`. Why it is deferred when it can be:
 * building the JSON on the event loop (toJson, masking, stringifying, then
 * pino's own pass) cost about a third of a logged call's time, while the
 * log thread sits mostly idle; base64 of the bytes the call arrived in costs
 * a fraction of that. Child loggers inherit the mark.
 */
export function logDispatchObject(logger: Logger, level: "info" | "debug", object: Object$, logSecrets: boolean): void {
  if ((logger as Logger & { [kExpandsObjects]?: true })[kExpandsObjects] === true) {
    const bytes = wireBytesOf(object) ?? toBinary(ObjectSchema, object);
    pending = {
      placeholder: logSecrets ? placeholders.unmasked : placeholders.masked,
      base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
    };
    try {
      logger[level]({ [logSecrets ? deferredObjectFields.unmasked : deferredObjectFields.masked]: 0 }, "dispatch object");
    } finally {
      pending = undefined; // (pino has written the line by now: it writes synchronously)
    }
    return;
  }
  logger[level]({ object: objectLogJson(object, logSecrets) }, "dispatch object");
}

/** An Object's proto3 JSON as the log shows it: credentials masked unless `logSecrets`. */
export function objectLogJson(object: Object$, logSecrets: boolean): ObjectJson {
  const json = toJson(ObjectSchema, object);
  return logSecrets ? json : maskObjectJson(json);
}
