import type { Object$ } from "../../gen/coprocess_object_pb.js";
import { canonicalHeader } from "./gateway-model.js";

/** Which hook a reply came from, for the warning's words. */
export interface HookWhere {
  /** "Pre", "PostKeyAuth", "Post", "CustomKeyCheck" or "Response". */
  readonly type: string;
  readonly name: string;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Where a reply would make the gateway do something other than what its
 * author probably meant (the gateway's rules, gateway/coprocess.go): each
 * warning says what the gateway will do and what to write instead.
 */
export function replyWarnings(where: HookWhere, sent: Object$, reply: Object$): string[] {
  const hook = `${where.type} hook "${where.name}"`;
  const warnings: string[] = [];
  const req = reply.request;
  const ro = req?.returnOverrides;
  if (ro !== undefined && where.type !== "Response" && ro.responseCode >= 400 && !ro.overrideError && ro.responseCode !== 401 && ro.responseCode !== 403) {
    warnings.push(
      `${hook} answers ${ro.responseCode} without override_error: the gateway handles every such answer as an authentication failure ` +
        `(an AuthFailure event, a key failure in its health checks) and sends its error page {"error": ...}; ` +
        `to send your own body without that, use respond(${ro.responseCode}, body)`,
    );
  }
  if (req !== undefined && sent.request !== undefined && req.body !== sent.request.body && same(req.rawBody, sent.request.rawBody)) {
    warnings.push(
      `${hook} changed request.body but not request.raw_body: the gateway takes the body from raw_body only, so the change is lost (use req.setBody)`,
    );
  }
  if (req !== undefined) {
    const deleted = new Set(req.deleteHeaders.map(canonicalHeader));
    for (const name of Object.keys(req.setHeaders)) {
      if (deleted.has(canonicalHeader(name))) {
        warnings.push(
          `${hook} both sets and deletes the header ${canonicalHeader(name)}: the gateway deletes first, then sets, so the header is sent with the set value`,
        );
      }
    }
  }
  if (where.type === "Response") {
    const res = reply.response;
    if (res === undefined) {
      warnings.push(`${hook} replied without a response: the gateway answers 500 and the client never sees the upstream's response`);
    } else if (sent.response !== undefined) {
      if (res.body !== sent.response.body && same(res.rawBody, sent.response.rawBody)) {
        warnings.push(`${hook} changed response.body but not response.raw_body: the gateway sends raw_body, so the change is lost (use res.setBody)`);
      }
      const headersChanged = JSON.stringify(Object.entries(res.headers).sort()) !== JSON.stringify(Object.entries(sent.response.headers).sort());
      const multiChanged = JSON.stringify(res.multivalueHeaders) !== JSON.stringify(sent.response.multivalueHeaders);
      if (headersChanged && multiChanged) {
        const lost = res.multivalueHeaders.filter((h) => !(h.key in res.headers)).map((h) => h.key);
        if (lost.length > 0) {
          warnings.push(
            `${hook} changed the headers map, so the gateway rebuilds multivalue_headers from it: ${lost.join(", ")} (only in multivalue_headers) ${lost.length === 1 ? "is" : "are"} dropped`,
          );
        }
      }
    }
  }
  return warnings;
}
