/** Placeholder written in logs instead of a credential. */
export const redacted = "[redacted]";

// Header, parameter and metadata names whose values are credentials:
// Authorization, Proxy-Authorization, Cookie/Set-Cookie, X-Api-Key and
// X-Access-Key style keys, tokens, secrets, passwords, sessions, JWTs and
// assertions (X-JWT-Assertion), and a name that is just "key" or ends in
// one ("?key=", "x-auth-key": Tyk reads keys from any name configured).
const sensitiveName = /authorization|cookie|api[-_]?key|access[-_]?key|token|secret|passw|session|credential|signature|jwt|assertion|(^|[-_.])key$/i;

// Transport headers every call carries; they add nothing to a metadata log.
const transportHeaders = new Set(["content-type", "te", "grpc-accept-encoding", "grpc-encoding", "accept-encoding", "content-length"]);

// Any text in which a sensitive name could occur (sensitiveName without
// its anchors), for a quick look at a whole query string.
const sensitiveText = /authorization|cookie|key|token|secret|passw|session|credential|signature|jwt|assertion/i;

/** Whether a header or metadata key carries a credential whose value must not be logged. */
export function isSensitiveKey(name: string): boolean {
  return sensitiveName.test(name);
}

/** Whether `text` (a query string, say) may contain a name isSensitiveKey is true for; false means it certainly does not. */
export function mayContainSensitiveKey(text: string): boolean {
  return sensitiveText.test(text);
}

/**
 * Call metadata as a plain object for logging: transport headers left out,
 * credential values replaced by "[redacted]".
 */
export function metadataForLog(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (!transportHeaders.has(name)) {
      out[name] = isSensitiveKey(name) ? redacted : value;
    }
  });
  return out;
}
