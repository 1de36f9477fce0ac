import { once } from "node:events";
import { fromBinary, toJson } from "@bufbuild/protobuf";
import { pino } from "pino";
import { ObjectSchema } from "../gen/coprocess_object_pb.js";
import { deferredObjectFields } from "./object-log.js";
import { maskObjectJson } from "./tyk/mask.js";

// pino transport (runs in pino's log thread): writes the JSON lines to
// stdout, first replacing each deferred Object field (object-log.ts) by the
// Object's proto3 JSON, so the event loop never builds it. Every other line
// passes through as it came.

// Both field names start with this (object-log.ts): lines without it are
// passed on untouched.
const common = `"${deferredObjectFields.masked}`;
const maskedRest = `":"`;
const unmaskedRest = `${deferredObjectFields.unmasked.slice(deferredObjectFields.masked.length)}":"`;

/** Replaces the deferred Object fields in complete lines of text (one pass, no quadratic copying). */
export function expandDeferredObjects(text: string): string {
  let out = "";
  let from = 0;
  let at = text.indexOf(common);
  while (at >= 0) {
    const rest = at + common.length;
    const mask = text.startsWith(maskedRest, rest);
    const valueStart = mask ? rest + maskedRest.length : text.startsWith(unmaskedRest, rest) ? rest + unmaskedRest.length : -1;
    if (valueStart >= 0) {
      // (Base64 has no quotes or escapes. A value cut short by the end of the
      // text is dropped all the same: its bytes must not reach the log.)
      const quote = text.indexOf('"', valueStart);
      const valueEnd = quote < 0 ? text.length : quote;
      out += `${text.slice(from, at)}"object":${objectJson(text.slice(valueStart, valueEnd), mask)}`;
      from = Math.min(valueEnd + 1, text.length);
    }
    at = text.indexOf(common, Math.max(from, rest));
  }
  return from === 0 ? text : out + text.slice(from);
}

// Never the bytes themselves: they hold the credentials the mask hides.
function objectJson(base64: string, mask: boolean): string {
  try {
    const json = toJson(ObjectSchema, fromBinary(ObjectSchema, Buffer.from(base64, "base64")));
    return JSON.stringify(mask ? maskObjectJson(json) : json);
  } catch (e) {
    return JSON.stringify(`[Object not shown: ${e instanceof Error ? e.message : String(e)}]`);
  }
}

/**
 * Turns the text pino's thread hands over into text to write: whole lines
 * only (the rest waits for the next chunk: a chunk ends mid-line when pino's
 * ring buffer wrapped there), with deferred Objects expanded.
 */
export class LineExpander {
  #partial = "";

  /** The complete lines so far, expanded; "" when no line is complete yet. */
  push(chunk: string): string {
    const text = this.#partial + chunk;
    const last = text.lastIndexOf("\n");
    this.#partial = text.slice(last + 1);
    return last < 0 ? "" : expandDeferredObjects(text.slice(0, last + 1));
  }

  /** What is left at the end (a last line without its newline), expanded. */
  end(): string {
    const rest = this.#partial;
    this.#partial = "";
    return expandDeferredObjects(rest);
  }
}

/** The transport's entry point, called by pino's thread: an asynchronous stdout destination. */
export default async function logTransport(): Promise<ReturnType<typeof pino.destination>> {
  const destination = pino.destination({ dest: 1, sync: false });
  await once(destination, "ready");
  const lines = new LineExpander();
  const write = destination.write.bind(destination);
  const end = destination.end.bind(destination);
  destination.write = (chunk: string) => {
    const text = lines.push(chunk);
    return text === "" || write(text);
  };
  destination.end = () => {
    const rest = lines.end();
    if (rest !== "") {
      write(rest);
    }
    end();
  };
  return destination;
}
