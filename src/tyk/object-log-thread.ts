import { once } from "node:events";
import { fromBinary } from "@bufbuild/protobuf";
import { pino } from "pino";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { deferredObjectMark, objectLogJson } from "./object-log.js";

// pino transport (runs in pino's log thread): writes the JSON lines to
// stdout, first replacing each marked Object (object-log.ts) by the
// Object's proto3 JSON, so the event loop never builds it. Every other line
// passes through as it came.

/**
 * Hands `text` (complete lines) to `write` with each marked Object
 * (object-log.ts: U+001F, "m" or "u", base64, U+001F) replaced by
 * `"object":` and the Object's JSON, masked unless marked "u": the text
 * between marks as slices, each Object as its own piece, so that no copy of
 * the whole text is made (pino hands over everything logged since the last
 * read, often hundreds of KB). Nothing else is ever taken for a mark: pino
 * escapes that character wherever it writes a string. Returns false if a
 * write did (the destination wants a drain).
 */
export function expandDeferredObjects(text: string, write: (piece: string) => boolean): boolean {
  let ok = true;
  let from = 0;
  let at = text.indexOf(deferredObjectMark);
  while (at >= 0) {
    // (A mark without its end would run to the end of its line; its bytes
    // are dropped all the same: they must not reach the log.)
    const close = text.indexOf(deferredObjectMark, at + 1);
    const lineEnd = text.indexOf("\n", at);
    const valueEnd = close >= 0 && (lineEnd < 0 || close < lineEnd) ? close : lineEnd >= 0 ? lineEnd : text.length;
    const unmasked = text.charCodeAt(at + 1) === 0x75; // "u"
    ok = write(`${text.slice(from, at)}"object":${objectJson(text.slice(at + 2, valueEnd), !unmasked)}`) && ok;
    from = valueEnd === close ? close + 1 : valueEnd;
    at = text.indexOf(deferredObjectMark, from);
  }
  return from < text.length ? write(from === 0 ? text : text.slice(from)) && ok : ok;
}

// Never the bytes themselves: they hold the credentials the mask hides.
function objectJson(base64: string, mask: boolean): string {
  try {
    return JSON.stringify(objectLogJson(fromBinary(ObjectSchema, Buffer.from(base64, "base64")), !mask));
  } catch (e) {
    return JSON.stringify(`[Object not shown: ${e instanceof Error ? e.message : String(e)}]`);
  }
}

/**
 * Turns the text pino's thread hands over into pieces to write: whole lines
 * only (the rest waits for the next chunk: a chunk ends mid-line when pino's
 * ring buffer wrapped there), with deferred Objects expanded.
 */
export class LineExpander {
  #partial = "";

  constructor(private readonly write: (piece: string) => boolean) {}

  /** Writes the complete lines so far; false if the destination wants a drain. */
  push(chunk: string): boolean {
    const text = this.#partial === "" ? chunk : this.#partial + chunk;
    const last = text.lastIndexOf("\n");
    if (last < 0) {
      this.#partial = text;
      return true;
    }
    this.#partial = text.slice(last + 1);
    return expandDeferredObjects(last === text.length - 1 ? text : text.slice(0, last + 1), this.write);
  }

  /** Writes what is left at the end (a last line without its newline). */
  end(): void {
    const rest = this.#partial;
    this.#partial = "";
    expandDeferredObjects(rest, this.write);
  }
}

/** The transport's entry point, called by pino's thread: an asynchronous stdout destination. */
export default async function logTransport(): Promise<ReturnType<typeof pino.destination>> {
  const destination = pino.destination({ dest: 1, sync: false });
  await once(destination, "ready");
  const end = destination.end.bind(destination);
  const lines = new LineExpander(destination.write.bind(destination));
  destination.write = (chunk: string) => lines.push(chunk);
  destination.end = () => {
    lines.end();
    end();
  };
  return destination;
}
