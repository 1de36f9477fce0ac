import type { JsonValue } from "@bufbuild/protobuf";
import type { ObjectJson } from "../../gen/coprocess_object_pb.js";
import { isSensitiveKey, mayContainSensitiveKey, redacted } from "../rpc/metadata.js";

// What the JSON echo log hides by default: credential-like headers, query
// parameters and metadata entries (Authorization, Cookie, X-Api-Key, token,
// ...), and the session's secrets. --log-secrets turns this off.

function maskEntries(map: Record<string, string> | undefined): void {
  for (const key of Object.keys(map ?? {})) {
    if (isSensitiveKey(key)) {
      map![key] = redacted;
    }
  }
}

function maskAll(map: Record<string, string> | undefined): void {
  for (const key of Object.keys(map ?? {})) {
    map![key] = redacted;
  }
}

/** Masks credential-named query parameters inside a URL (`/get?api_key=x` -> `/get?api_key=[redacted]`). */
export function maskUrl(url: string | undefined): string | undefined {
  const q = url?.indexOf("?") ?? -1;
  if (url === undefined || q < 0) {
    return url;
  }
  const raw = url.slice(q + 1);
  // Most queries hold no credential-like name: one scan, no copy. (Without
  // % or +, every name is as written, and a substring of the query.)
  if (!/[%+]/.test(raw) && !mayContainSensitiveKey(raw)) {
    return url;
  }
  const query = raw.split("&").map((pair) => {
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, " "));
    } catch {
      // not valid percent-encoding: judge the raw name
    }
    return eq >= 0 && isSensitiveKey(decoded) ? `${name}=${redacted}` : pair;
  });
  return `${url.slice(0, q)}?${query.join("&")}`;
}

/**
 * Replaces credentials in an Object's proto3 JSON by "[redacted]", in place:
 * `toJson` output is a fresh object, so no copy is needed. Returns it.
 */
export function maskObjectJson(out: ObjectJson): ObjectJson {
  const { request, session, response } = out;
  if (request) {
    request.url = maskUrl(request.url);
    request.requestUri = maskUrl(request.requestUri);
  }
  maskEntries(request?.headers);
  maskEntries(request?.setHeaders);
  maskEntries(request?.params);
  maskEntries(request?.addParams);
  maskEntries(request?.extendedParams);
  maskEntries(out.metadata);
  if (session) {
    maskEntries(session.metadata);
    maskAll(session.oauthKeys);
    if (session.basicAuthData?.password) session.basicAuthData.password = redacted;
    if (session.basicAuthData?.hash) session.basicAuthData.hash = redacted;
    if (session.jwtData?.secret) session.jwtData.secret = redacted;
    if (session.hmacSecret) session.hmacSecret = redacted;
  }
  if (response) {
    maskEntries(response.headers);
    for (const h of response.multivalueHeaders ?? []) {
      if (h.key && isSensitiveKey(h.key)) {
        h.values = (h.values ?? []).map(() => redacted);
      }
    }
  }
  return out;
}

// Event Meta fields that carry a credential besides credential-like names
// (`Token`, ...): the key (`Key`) and the request it came with.
const eventSecrets = new Set(["Key", "OriginatingRequest"]);
const isEventSecret = (key: string) => eventSecrets.has(key) || isSensitiveKey(key);

/**
 * A parsed event payload with the credentials in `message.Meta` (the key,
 * a token, the originating request, which holds its headers) replaced by
 * "[redacted]". Only the objects on the way to them are copied: the
 * payload itself is left as it is, and nothing recurses into it.
 */
export function maskEventJson(payload: JsonValue): JsonValue {
  const message = record(record(payload)?.message);
  const meta = record(message?.Meta);
  if (meta === undefined || !Object.keys(meta).some(isEventSecret)) {
    return payload;
  }
  const masked: Record<string, JsonValue> = { ...meta };
  for (const key of Object.keys(masked)) {
    if (isEventSecret(key)) masked[key] = redacted;
  }
  return { ...record(payload), message: { ...message, Meta: masked } };
}

function record(value: JsonValue | undefined): Record<string, JsonValue> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value : undefined;
}
