import * as http2 from "node:http2";
import type { Logger } from "../../observability/logger.js";

// A handler can set any header or trailer a web Headers object accepts,
// including the connection-specific fields HTTP/2 forbids (RFC 9113
// 8.2.2). node throws on them when it writes the headers or trailers: by
// then the handler has returned, so the throw lands where nothing catches it
// (node's trailers event: the process goes down; connect's response write:
// the call is never answered). They are dropped here instead, with a log
// line, before node sees them.

/** Whether node (and HTTP/2) refuses this response field: node's own rule. */
function forbiddenInHttp2(name: string, value: unknown): boolean {
  switch (name) {
    case "connection":
    case "keep-alive":
    case "proxy-connection":
    case "transfer-encoding":
    case "upgrade":
    case "http2-settings":
      return true;
    case "te":
      return String(value) !== "trailers";
    default:
      return false;
  }
}

/**
 * Copies response fields (a web Headers or a node headers object's
 * entries) into `out`, in node's form, leaving out those HTTP/2 forbids:
 * their names go to `dropped`, made at the first one and returned.
 */
export function copyAllowedFields<V>(fields: Iterable<[string, V]>, out: Record<string, V>, dropped?: string[]): string[] | undefined {
  for (const [name, value] of fields) {
    if (forbiddenInHttp2(name.toLowerCase(), value)) {
      (dropped ??= []).push(name);
    } else {
      out[name] = value;
    }
  }
  return dropped;
}

/** Logs the fields of one response that were dropped (rpc: "package.Service/Method"). */
export function logDroppedFields(logger: Logger, rpc: string, dropped: readonly string[]): void {
  logger.warn({ rpc, dropped }, "response fields HTTP/2 forbids were set: dropped");
}

/**
 * node's Http2ServerResponse (the compatibility layer connect-node writes
 * to) minus the fields HTTP/2 forbids: connect-node writes a response with
 * `writeHead(status, headers)` and `addTrailers(trailers)`, so those are
 * where they are taken out.
 */
export function http2CompatResponse(logger: Logger): typeof http2.Http2ServerResponse<http2.Http2ServerRequest> {
  return class Http2ResponseWithoutForbiddenFields extends http2.Http2ServerResponse {
    override writeHead(statusCode: number, headers?: http2.OutgoingHttpHeaders): this;
    override writeHead(statusCode: number, statusMessage: string, headers?: http2.OutgoingHttpHeaders): this;
    override writeHead(statusCode: number, messageOrHeaders?: string | http2.OutgoingHttpHeaders, headers?: http2.OutgoingHttpHeaders): this {
      if (typeof messageOrHeaders === "string") {
        return super.writeHead(statusCode, messageOrHeaders, headers && this.#allowed(headers));
      }
      return super.writeHead(statusCode, messageOrHeaders && this.#allowed(messageOrHeaders));
    }

    override addTrailers(trailers: http2.OutgoingHttpHeaders): void {
      super.addTrailers(this.#allowed(trailers));
    }

    #allowed(headers: http2.OutgoingHttpHeaders): http2.OutgoingHttpHeaders {
      const allowed: http2.OutgoingHttpHeaders = {};
      const dropped = copyAllowedFields(Object.entries(headers), allowed);
      if (dropped === undefined) {
        return headers;
      }
      logDroppedFields(logger, this.req.url.slice(1).split("?")[0]!, dropped);
      return allowed;
    }
  };
}
