// Checks and helpers shared by the request and response editors.

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

/** Decodes a body as UTF-8, replacing invalid sequences (for plugins reading text). */
export function bodyText(body: Uint8Array): string {
  return lenientUtf8.decode(body);
}

/** Throws unless `name` is a valid HTTP header name (RFC 9110 token). */
export function checkHeaderName(name: string): void {
  if (!token.test(name)) {
    throw new TypeError(`invalid header name "${name}"`);
  }
}

/** Throws if a header value could split the HTTP message (CR, LF or NUL). */
export function checkHeaderValue(name: string, value: string): void {
  if (/[\r\n\0]/.test(value)) {
    throw new TypeError(`invalid value for header "${name}": CR, LF and NUL are not allowed`);
  }
}

/** The key of `map` equal to `name` ignoring case, if any. */
export function findKey(map: Readonly<Record<string, unknown>>, name: string): string | undefined {
  if (name in map) {
    return name;
  }
  const lower = name.toLowerCase();
  return Object.keys(map).find((k) => k.toLowerCase() === lower);
}

/**
 * Sets a body the way the gateway reads it: `rawBody` carries the bytes (the
 * gateway uses only this), `body` the same as text when it is valid UTF-8,
 * else empty, as the gateway itself fills it.
 */
export function setBody(target: { rawBody: Uint8Array; body: string }, body: string | Uint8Array): void {
  if (typeof body === "string") {
    target.rawBody = new TextEncoder().encode(body);
    target.body = body;
    return;
  }
  target.rawBody = body;
  try {
    target.body = utf8.decode(body);
  } catch {
    target.body = "";
  }
}
