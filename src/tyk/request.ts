import type { MiniRequestObject } from "../../gen/coprocess_mini_request_object_pb.js";
import { bodyText, checkHeaderName, checkHeaderValue, findKey, setBody } from "./http-fields.js";

/**
 * The inbound HTTP request as a hook sees it. Header lookups ignore case;
 * `headers` holds the first value of each header, plus Host.
 */
export class TykRequestView {
  /** @private The Object's request; edits go through TykRequest's methods. */
  protected readonly r: MiniRequestObject;
  #lowerHeaders: Map<string, string> | undefined;

  /** @private Built by the framework. */
  constructor(request: MiniRequestObject) {
    this.r = request;
  }

  /** Path and query (still including the API's listen path), or a URL-rewrite target. */
  get url(): string {
    return this.r.url;
  }

  get method(): string {
    return this.r.method;
  }

  /** "http" or "https". */
  get scheme(): string {
    return this.r.scheme;
  }

  /** The raw request URI as received. */
  get requestUri(): string {
    return this.r.requestUri;
  }

  /** First value of each header, as the gateway sent them. */
  get headers(): Readonly<Record<string, string>> {
    return this.r.headers;
  }

  /** A header's first value, by case-insensitive name. */
  header(name: string): string | undefined {
    this.#lowerHeaders ??= new Map(Object.entries(this.r.headers).map(([k, v]) => [k.toLowerCase(), v]));
    return this.#lowerHeaders.get(name.toLowerCase());
  }

  /** First value of each query parameter. */
  get params(): Readonly<Record<string, string>> {
    return this.r.params;
  }

  /** The whole body (`raw_body`). Read-only: setBody() replaces it. */
  get body(): Uint8Array {
    return this.r.rawBody;
  }

  /** The body decoded as UTF-8. */
  text(): string {
    return bodyText(this.r.rawBody);
  }
}

const kEdited = Symbol("edited");

/**
 * Whether a hook has changed the request through this editor (for the
 * plugin host: a request no hook edited is replied to as it arrived).
 */
export function editedThrough(req: TykRequest): boolean {
  return req[kEdited];
}

/**
 * The request of a Pre, PostKeyAuth, Post or custom-auth hook, with the
 * edits the gateway applies from the reply. Every edit is checked here, so a
 * hook cannot produce a reply the gateway mishandles: body edits go to
 * `raw_body` (what the gateway reads) with `body` kept in step, a header or
 * parameter is either set or deleted, never both, and URL and method stay valid.
 */
export class TykRequest extends TykRequestView {
  /** @private Set first thing by every edit method: even an edit that fails halfway counts. */
  [kEdited] = false;

  /** Sets a request header (replacing all its values). */
  setHeader(name: string, value: string): this {
    this[kEdited] = true;
    checkHeaderName(name);
    checkHeaderValue(name, value);
    this.#unDelete(this.r.deleteHeaders, name);
    const existing = findKey(this.r.setHeaders, name);
    if (existing !== undefined && existing !== name) {
      delete this.r.setHeaders[existing];
    }
    this.r.setHeaders[name] = value;
    return this;
  }

  /** Removes a request header (and cancels an earlier setHeader of it). */
  deleteHeader(name: string): this {
    this[kEdited] = true;
    checkHeaderName(name);
    const existing = findKey(this.r.setHeaders, name);
    if (existing !== undefined) {
      delete this.r.setHeaders[existing];
    }
    if (!this.r.deleteHeaders.some((h) => h.toLowerCase() === name.toLowerCase())) {
      this.r.deleteHeaders.push(name);
    }
    return this;
  }

  /** Sets a query parameter, replacing its value (Tyk's `add_params` applies Go's `url.Values.Set`). */
  addParam(name: string, value: string): this {
    this[kEdited] = true;
    if (name === "") {
      throw new TypeError("query parameter name must not be empty");
    }
    this.#unDelete(this.r.deleteParams, name, true);
    this.r.addParams[name] = value;
    return this;
  }

  /** Removes a query parameter (and cancels an earlier addParam of it). */
  deleteParam(name: string): this {
    this[kEdited] = true;
    delete this.r.addParams[name];
    if (!this.r.deleteParams.includes(name)) {
      this.r.deleteParams.push(name);
    }
    return this;
  }

  /**
   * Replaces the URL: a path with optional query (`/new/path?a=1`), an
   * absolute URL, or `tyk://<api-id-or-name>/path` to loop into another API.
   * Note the gateway re-applies addParam/deleteParam edits to the query afterwards.
   */
  rewriteUrl(url: string): this {
    this[kEdited] = true;
    if (!/^(\/|[a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^\s]*$/.test(url)) {
      throw new TypeError(`invalid URL "${url}": expected /path, scheme://host/path or tyk://api/path, without spaces`);
    }
    this.r.url = url;
    return this;
  }

  /** Replaces the HTTP method, e.g. "POST". */
  setMethod(method: string): this {
    this[kEdited] = true;
    if (!/^[A-Z]+$/.test(method)) {
      throw new TypeError(`invalid HTTP method "${method}": expected upper-case letters, e.g. GET`);
    }
    this.r.method = method;
    return this;
  }

  /** Replaces the request body (text is encoded as UTF-8). */
  setBody(body: string | Uint8Array): this {
    this[kEdited] = true;
    setBody(this.r, body);
    return this;
  }

  #unDelete(list: string[], name: string, caseSensitive = false): void {
    const match = (s: string) => (caseSensitive ? s === name : s.toLowerCase() === name.toLowerCase());
    for (let i = list.length - 1; i >= 0; i--) {
      if (match(list[i]!)) {
        list.splice(i, 1);
      }
    }
  }
}
