// A request's target (path and authority) is caller input that connect-node
// and the HTTP routes turn into a URL with `new URL`, which throws on
// targets such as `//[` or a Host of `[`; thrown in node's "request" or
// "stream" event, that is an uncaught exception. So every request is checked
// here first and refused with 400 when its target is not a URL.

/** The authority used when a request names none (HTTP/1.0 without Host, HTTP/2 without :authority). */
export const defaultAuthority = "localhost";

/** Why `path` on `authority` is not a URL a route can be given, or undefined when it is. */
export function requestTargetError(path: string, authority: string): string | undefined {
  return authorityIsValid(authority) ? pathError(path, authority) : "malformed authority";
}

/** Why `path` is not a URL on `authority` (already known to be valid), or undefined. */
export function pathError(path: string, authority: string): string | undefined {
  if (pathNeedsParsing(path)) {
    try {
      new URL(path, `http://${authority}`);
    } catch {
      return "malformed request target";
    }
  }
  return undefined;
}

/** Whether `authority` (host and optional port) makes a valid `http://` URL. */
export function authorityIsValid(authority: string): boolean {
  try {
    new URL(`http://${authority}/`);
    return true;
  } catch {
    return false;
  }
}

// With a valid base, a path that starts with one "/" followed by anything
// but another "/" or "\" (which the URL parser reads as "/") always parses:
// it cannot name an authority of its own. Anything else is parsed.
function pathNeedsParsing(path: string): boolean {
  return path.charCodeAt(0) !== 0x2f || path.charCodeAt(1) === 0x2f || path.charCodeAt(1) === 0x5c;
}

/**
 * Remembers the last authority that passed on each connection: a client
 * sends the same one on every call of a connection (grpc-go always does),
 * so checking a call costs one string comparison.
 */
export class AuthorityCache<K extends object> {
  readonly #last = new WeakMap<K, string>();

  /** Whether `authority` is valid, parsing it only when it differs from the connection's last valid one. */
  valid(connection: K, authority: string): boolean {
    if (this.#last.get(connection) === authority) {
      return true;
    }
    if (!authorityIsValid(authority)) {
      return false;
    }
    this.#last.set(connection, authority);
    return true;
  }
}
