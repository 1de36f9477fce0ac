import { create } from "@bufbuild/protobuf";
import { HeaderSchema, type ResponseObject } from "../../gen/coprocess_response_object_pb.js";
import { bodyText, checkHeaderName, checkHeaderValue, setBody } from "./http-fields.js";
import type { TykRequestView } from "./request.js";

/**
 * The upstream response as a Response hook edits it. The gateway sets the
 * client's headers from `multivalue_headers` after syncing it with `headers`;
 * this editor keeps both the same at all times (every key in both, `headers`
 * holding the first value), so whichever the gateway reads, it gets the edit.
 */
export class TykResponse {
  readonly #o: ResponseObject;
  /** The request that produced this response (read-only). */
  readonly request: TykRequestView;

  /** @private Built by the framework. */
  constructor(response: ResponseObject, request: TykRequestView) {
    this.#o = response;
    this.request = request;
    normalizeHeaders(response);
  }

  /** HTTP status sent to the client. */
  get status(): number {
    return this.#o.statusCode;
  }

  /** Sets the HTTP status (100-599). */
  setStatus(status: number): this {
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new TypeError(`invalid HTTP status ${status}: expected 100-599`);
    }
    this.#o.statusCode = status;
    return this;
  }

  /** A header's first value, by case-insensitive name. */
  header(name: string): string | undefined {
    return this.#entry(name)?.values[0];
  }

  /** All values of a header, by case-insensitive name. */
  headerValues(name: string): readonly string[] {
    return this.#entry(name)?.values ?? [];
  }

  /** Every header with all its values. */
  headers(): ReadonlyArray<{ readonly key: string; readonly values: readonly string[] }> {
    return this.#o.multivalueHeaders;
  }

  /** Sets a header to one value (or several), replacing what it had. */
  setHeader(name: string, value: string | readonly string[]): this {
    const values = typeof value === "string" ? [value] : [...value];
    checkHeaderName(name);
    values.forEach((v) => checkHeaderValue(name, v));
    if (values.length === 0) {
      return this.deleteHeader(name);
    }
    const entry = this.#entry(name);
    if (entry) {
      entry.values = values;
    } else {
      this.#o.multivalueHeaders.push(create(HeaderSchema, { key: name, values }));
    }
    this.#syncHeaders();
    return this;
  }

  /** Adds a value to a header (e.g. another Set-Cookie). */
  addHeader(name: string, value: string): this {
    return this.setHeader(name, [...this.headerValues(name), value]);
  }

  /** Removes a header. */
  deleteHeader(name: string): this {
    const lower = name.toLowerCase();
    this.#o.multivalueHeaders = this.#o.multivalueHeaders.filter((h) => h.key.toLowerCase() !== lower);
    this.#syncHeaders();
    return this;
  }

  /** The whole body (`raw_body`). Read-only: setBody() replaces it. */
  get body(): Uint8Array {
    return this.#o.rawBody;
  }

  /** The body decoded as UTF-8. */
  text(): string {
    return bodyText(this.#o.rawBody);
  }

  /** Replaces the body; the gateway sets Content-Length from it. */
  setBody(body: string | Uint8Array): this {
    setBody(this.#o, body);
    return this;
  }

  #entry(name: string) {
    const lower = name.toLowerCase();
    return this.#o.multivalueHeaders.find((h) => h.key.toLowerCase() === lower);
  }

  #syncHeaders(): void {
    this.#o.headers = Object.fromEntries(this.#o.multivalueHeaders.map((h) => [h.key, h.values[0]!]));
  }
}

/**
 * Makes `headers` and `multivalue_headers` describe the same headers.
 * Gateways before 5.0.4 send only `headers`; later ones send both.
 */
function normalizeHeaders(o: ResponseObject): void {
  const listed = new Set(o.multivalueHeaders.map((h) => h.key));
  for (const [key, value] of Object.entries(o.headers)) {
    if (!listed.has(key)) {
      o.multivalueHeaders.push(create(HeaderSchema, { key, values: [value] }));
    }
  }
  o.multivalueHeaders = o.multivalueHeaders.filter((h) => h.values.length > 0);
  o.headers = Object.fromEntries(o.multivalueHeaders.map((h) => [h.key, h.values[0]!]));
}
