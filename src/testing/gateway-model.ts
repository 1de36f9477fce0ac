import { create } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { ResponseObjectSchema } from "../../gen/coprocess_response_object_pb.js";
import { type SessionState, SessionStateSchema } from "../../gen/coprocess_session_state_pb.js";

// A model of Tyk Gateway's side of the Dispatch contract, written from Tyk's
// source (gateway/coprocess*.go) and checked against the real gateway
// (test/e2e/tyk-simulator-parity.test.ts): how it builds the Object for a
// hook, and what it applies from the reply. The gateway simulator
// (create-gateway.ts) runs requests through it; tests send what the gateway
// would send and assert on what the gateway would do.

/** An HTTP request as it arrives at the gateway. */
export interface HttpRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array | string;
}

/** The API the hook runs for. */
export interface ApiSpec {
  apiId?: string;
  orgId?: string;
  /** The API's config_data; sent as JSON unless `configDataDisabled`. */
  configData?: unknown;
  configDataDisabled?: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Go's textproto.CanonicalMIMEHeaderKey, as the gateway applies it to set_headers. */
export function canonicalHeader(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/** Builds the Object exactly as the gateway does for a request hook (section 3.1). */
export function requestObject(
  hookType: HookType,
  hookName: string,
  req: HttpRequest,
  spec: ApiSpec = {},
  session?: SessionState,
  rawBodyOnly = false,
): Object$ {
  const raw = typeof req.body === "string" ? new TextEncoder().encode(req.body) : (req.body ?? new Uint8Array());
  let text = "";
  try {
    text = rawBodyOnly ? "" : utf8.decode(raw);
  } catch {
    text = ""; // not UTF-8: only raw_body carries it
  }
  const url = new URL(req.url, "http://gateway.invalid");
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    params[k] ??= v;
  }
  const specMap: Record<string, string> = {
    OrgID: spec.orgId ?? "5e9d9544a1dcd60001d0ed20",
    APIID: spec.apiId ?? "04e911d3012646d97fcdd6c846fafc4b",
    bundle_hash: "d41d8cd98f00b204e9800998ecf8427e",
  };
  if (spec.configData !== undefined && !spec.configDataDisabled) {
    specMap.config_data = JSON.stringify(spec.configData);
  }
  // Session and metadata only for Post/PostKeyAuth (and Response, see responseObject).
  const withSession = session && (hookType === HookType.Post || hookType === HookType.PostKeyAuth);
  return create(ObjectSchema, {
    hookType,
    hookName,
    request: {
      headers: { ...req.headers, Host: req.headers.Host ?? "tyk-gateway.localhost:8080" },
      setHeaders: {},
      deleteHeaders: [],
      addParams: {},
      extendedParams: {},
      deleteParams: [],
      body: text,
      rawBody: raw,
      url: req.url,
      params,
      returnOverrides: { responseCode: -1 },
      method: req.method,
      requestUri: req.url,
      scheme: "https",
    },
    spec: specMap,
    ...(withSession && { session, metadata: { ...session.metadata } }),
  });
}

/** An upstream response as the gateway received it. */
export interface HttpResponse {
  status: number;
  /** All values of each header. */
  headers: Record<string, string[]>;
  body: string | Uint8Array;
}

/** Builds the Object for a Response hook (section 3.4): the request's fields plus the response. */
export function responseObject(hookName: string, req: HttpRequest, res: HttpResponse, spec: ApiSpec = {}, session?: SessionState): Object$ {
  const object = requestObject(HookType.Response, hookName, req, spec);
  const raw = typeof res.body === "string" ? new TextEncoder().encode(res.body) : res.body;
  let text = "";
  try {
    text = utf8.decode(raw);
  } catch {
    text = "";
  }
  object.response = create(ResponseObjectSchema, {
    statusCode: res.status,
    headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, v[0]!])),
    multivalueHeaders: Object.entries(res.headers).map(([key, values]) => ({ key, values })),
    rawBody: raw,
    body: text,
  });
  // The gateway always sends a session to Response hooks (empty on keyless APIs).
  object.session = session ?? create(SessionStateSchema);
  if (session) object.metadata = { ...session.metadata };
  return object;
}

/** What the gateway does after a request hook's reply. */
export type RequestResult =
  | { kind: "continue"; request: HttpRequest & { body: Uint8Array }; metadata: Record<string, string> }
  | { kind: "error"; status: number; body: string; headers: Record<string, string> }
  | { kind: "respond"; status: number; body: string; headers: Record<string, string> }
  | { kind: "middleware-error"; status: 500; reason: string };

/** Applies a request hook's reply the way the gateway does (ObjectPostProcess + return overrides, section 3.2). */
export function applyRequestReply(sent: HttpRequest, reply: Object$): RequestResult {
  const r = reply.request;
  if (r === undefined || r.returnOverrides === undefined) {
    // The gateway dereferences both without checks: a Go panic, the client connection aborted.
    return { kind: "middleware-error", status: 500, reason: "reply without request or return_overrides" };
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(sent.headers)) headers[canonicalHeader(k)] = v;
  for (const name of r.deleteHeaders) delete headers[canonicalHeader(name)];
  for (const [k, v] of Object.entries(r.setHeaders)) headers[canonicalHeader(k)] = v;

  if (r.url === "" || !/^(\/|[a-z][a-z0-9+.-]*:\/\/)/i.test(r.url)) {
    return { kind: "middleware-error", status: 500, reason: `url "${r.url}" does not parse` };
  }
  const url = new URL(r.url, "http://gateway.invalid");
  const query = new URLSearchParams(url.search);
  const before = query.toString();
  for (const p of r.deleteParams) query.delete(p);
  for (const [k, v] of Object.entries(r.addParams)) query.set(k, v);
  if (query.toString() !== before) url.search = query.toString();
  const finalUrl = r.url.startsWith("/") ? url.pathname + url.search : `${url.protocol}//${url.host}${url.pathname}${url.search}`;

  const ro = r.returnOverrides;
  const body = ro.responseError !== "" ? ro.responseError : ro.responseBody;
  if (ro.responseCode >= 400 && !ro.overrideError) {
    return {
      kind: "error",
      status: ro.responseCode,
      body: errorPage(body || "Key not authorised"),
      headers: { ...ro.headers, "Content-Type": "application/json", "X-Generator": "tyk.io" },
    };
  }
  if (ro.responseCode > 0) {
    // Go's ResponseWriter sniffs a Content-Type when none was set (as seen from the real gateway).
    return { kind: "respond", status: ro.responseCode, body, headers: { "Content-Type": sniffedType(body), ...ro.headers } };
  }
  return {
    kind: "continue",
    request: { method: r.method, url: finalUrl, headers, body: r.rawBody }, // body from raw_body only
    metadata: { ...reply.metadata },
  };
}

/**
 * The gateway's error page (templates/error.json, for requests without an
 * XML content type): the message put in with Go's template.JSEscapeString,
 * which makes an apostrophe `\'`, not valid JSON (seen against the real
 * gateway, v5.14.0).
 */
export function errorPage(message: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are among those Go escapes
  const escaped = message.replace(/[\\'"<>&=\u0000-\u001f\u2028\u2029]/g, (c) =>
    c === "\\" || c === "'" || c === '"' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`,
  );
  return `{\n    "error": "${escaped}"\n}`;
}

// http.DetectContentType for the bodies hooks send: text, or bytes.
function sniffedType(body: string): string {
  return /^\s*<(!doctype html|html|head|body)/i.test(body) ? "text/html; charset=utf-8" : "text/plain; charset=utf-8";
}

/** What the gateway does after a custom auth (CustomKeyCheck) reply, without an ID extractor (section 3.3). */
export type AuthResult =
  | { kind: "authenticated"; key: string; session: SessionState; request: HttpRequest & { body: Uint8Array } }
  | { kind: "forbidden"; status: 403; body: string }
  | Exclude<RequestResult, { kind: "continue" }>;

/** Applies a custom auth reply the way the gateway does: overrides first, then session + token, else 403. */
export function applyAuthReply(sent: HttpRequest, reply: Object$): AuthResult {
  const result = applyRequestReply(sent, reply);
  if (result.kind !== "continue") {
    return result;
  }
  const token = reply.session?.metadata.token || reply.metadata.token;
  if (reply.session === undefined || !token) {
    return { kind: "forbidden", status: 403, body: JSON.stringify({ error: "Forbidden" }) };
  }
  return { kind: "authenticated", key: token, session: reply.session, request: result.request };
}

/** What the client gets after a Response hook's reply (section 3.4). */
export type ResponseResult =
  | { kind: "response"; status: number; headers: Record<string, string[]>; body: Uint8Array; contentLength: number }
  | { kind: "middleware-error"; status: 500; reason: string };

/** Applies a Response hook's reply the way the gateway does, including its headers/multivalue_headers sync. */
export function applyResponseReply(sent: Object$, reply: Object$): ResponseResult {
  const res = reply.response;
  if (res === undefined) {
    return { kind: "middleware-error", status: 500, reason: "reply without response" };
  }
  if (res.statusCode < 100 || res.statusCode > 999) {
    return { kind: "middleware-error", status: 500, reason: `status ${res.statusCode} panics in WriteHeader` };
  }
  let multi = res.multivalueHeaders.map((h) => ({ key: h.key, values: [...h.values] }));
  const sentHeaders = sent.response?.headers ?? {};
  const changed = JSON.stringify(Object.entries(res.headers).sort()) !== JSON.stringify(Object.entries(sentHeaders).sort());
  if (changed) {
    // syncHeadersAndMultiValueHeaders: keys missing from headers are dropped,
    // first values replaced, new keys appended.
    multi = multi.filter((h) => h.key in res.headers);
    for (const [k, v] of Object.entries(res.headers)) {
      const entry = multi.find((h) => h.key === k);
      if (entry) entry.values[0] = v;
      else multi.push({ key: k, values: [v] });
    }
  }
  const headers: Record<string, string[]> = {};
  for (const h of multi) headers[canonicalHeader(h.key)] = h.values;
  return { kind: "response", status: res.statusCode, headers, body: res.rawBody, contentLength: res.rawBody.length };
}
