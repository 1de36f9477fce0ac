/** Placeholder written in logs instead of a credential. */
export const redacted = "[redacted]";

// Header names whose values are credentials: Authorization, Proxy-Authorization,
// Cookie/Set-Cookie, X-Api-Key-style keys, tokens, secrets, passwords, sessions.
const sensitiveName = /authorization|cookie|api[-_]?key|token|secret|passw|session|credential|signature/i;

// Transport headers every call carries; they add nothing to a metadata log.
const transportHeaders = new Set(["content-type", "te", "grpc-accept-encoding", "grpc-encoding", "accept-encoding", "content-length"]);

/** Whether a header or metadata key carries a credential whose value must not be logged. */
export function isSensitiveKey(name: string): boolean {
  return sensitiveName.test(name);
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
