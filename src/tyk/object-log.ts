import { fileURLToPath } from "node:url";
import { toBinary, toJson } from "@bufbuild/protobuf";
import { type Object$, type ObjectJson, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import type { Logger, LogThread } from "../observability/logger.js";
import { wireBytesOf } from "../rpc/wire-bytes.js";
import { maskObjectJson } from "./mask.js";

/**
 * The text that stands for an Object's proto3 JSON in a line on its way to
 * the log thread: the Object's protobuf bytes in base64, to be shown masked
 * or (with --log-secrets) as they are, between two U+001F characters.
 * object-log-thread.ts replaces it by `"object":{...}` before the line leaves
 * the process. Why that character: pino escapes every control character in
 * every string it writes (JSON has no other way to hold one), so no text a
 * caller sent, however it is logged, can contain it raw; only this module
 * writes it, into lines it logs itself. (A marker made of printable text,
 * as before, could be sent in an event's payload and taken for one: a forged
 * `object` in the log.)
 */
export const deferredObjectMark = "\u001f";

/** The marked text for an Object's base64 (as spliceDeferredObject writes it). */
export function markDeferredObject(base64: string, unmasked: boolean): string {
  return `${deferredObjectMark}${unmasked ? "u" : "m"}${base64}${deferredObjectMark}`;
}

// The field pino writes as a placeholder, replaced as a whole (name and
// value) by the marked base64.
const placeholderField = "coprocess.Object:deferred";
const placeholder = `"${placeholderField}":0`;

// Set on loggers whose lines go through object-log-thread.ts.
const kExpandsObjects = Symbol("expands deferred Objects");

/**
 * The log thread that expands deferred Objects (object-log-thread.ts), for
 * createLogger: the server's JSON logger writes through it.
 */
export const objectLogThread: LogThread = {
  target: fileURLToPath(new URL("./object-log-thread.js", import.meta.url)),
  streamWrite: spliceDeferredObject,
  adopt: markObjectExpanding,
};

// Marks a logger whose destination is object-log-thread.ts and whose streamWrite hook is spliceDeferredObject.
function markObjectExpanding(logger: Logger): void {
  (logger as Logger & { [kExpandsObjects]?: true })[kExpandsObjects] = true;
}

// The Object is logged as the placeholder field and its marked base64 put in
// by spliceDeferredObject: pino checks a string value for characters to
// escape with JSON.stringify, which an Object's base64 never needs and
// which costs a microsecond for a typical one. (The line being written is the server's own "dispatch object"
// line: its only other fields are the level, time, trace ids and message.)

// The Object whose line pino is writing now, marked.
let pending: string | undefined;

/**
 * pino's streamWrite hook of loggers writing through objectLogThread: puts
 * the marked base64 of the Object being logged in place of its placeholder
 * field. Other lines are returned as they are.
 */
export function spliceDeferredObject(line: string): string {
  if (pending === undefined) {
    return line;
  }
  const marked = pending;
  pending = undefined;
  const at = line.indexOf(placeholder);
  if (at < 0) {
    return line;
  }
  return `${line.slice(0, at)}${marked}${line.slice(at + placeholder.length)}`;
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
    if (bytes.byteLength > maxLoggedObjectBytes) {
      logger[level]({ object: largeObjectLogJson(object, logSecrets), objectBytes: bytes.byteLength }, "dispatch object");
      return;
    }
    pending = markDeferredObject(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"), logSecrets);
    try {
      logger[level]({ [placeholderField]: 0 }, "dispatch object");
    } finally {
      pending = undefined; // (pino has written the line by now: it writes synchronously)
    }
    return;
  }
  const bodies = (object.request?.rawBody.length ?? 0) + (object.response?.rawBody.length ?? 0);
  logger[level]({ object: bodies > maxLoggedObjectBytes ? largeObjectLogJson(object, logSecrets) : objectLogJson(object, logSecrets) }, "dispatch object");
}

/**
 * Objects larger than this are logged without their bodies. Why: a log line
 * of a 20 MB upload (sent twice: 40 MB, 53 MB as base64) stalled pino's
 * log thread for good, and nobody reads a body of that size in a log.
 */
export const maxLoggedObjectBytes = 256 * 1024;

// A large Object's JSON, its request and response bodies replaced by their sizes.
function largeObjectLogJson(object: Object$, logSecrets: boolean): ObjectJson {
  const json = objectLogJson(object, logSecrets);
  const note = (bytes: number) => `[${bytes} bytes not logged]`;
  if (json.request) {
    if (json.request.body !== undefined) json.request.body = note(Buffer.byteLength(object.request?.body ?? ""));
    if (json.request.rawBody !== undefined) json.request.rawBody = note(object.request?.rawBody.length ?? 0);
  }
  if (json.response) {
    if (json.response.body !== undefined) json.response.body = note(Buffer.byteLength(object.response?.body ?? ""));
    if (json.response.rawBody !== undefined) json.response.rawBody = note(object.response?.rawBody.length ?? 0);
  }
  return json;
}

/** An Object's proto3 JSON as the log shows it: credentials masked unless `logSecrets`. */
export function objectLogJson(object: Object$, logSecrets: boolean): ObjectJson {
  const json = toJson(ObjectSchema, object);
  return logSecrets ? json : maskObjectJson(json);
}
