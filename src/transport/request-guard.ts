import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import { constants, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { RepeatLimitedLog } from "../observability/repeated-lines.js";
import { AuthorityCache, defaultAuthority, pathError, requestTargetError } from "./request-target.js";

/** Checks and protects every request before any route sees it. */
export interface RequestGuard {
  /**
   * An HTTP/1.x request: true when it may be served; false when it was
   * answered 400 (a target that is not a URL) and logged.
   */
  http1(req: IncomingMessage, res: ServerResponse): boolean;
  /** An HTTP/2 stream: as http1, on the stream. */
  http2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean;
}

const badRequest = 400;

/**
 * The request guard of one server; refusals are logged through `repeats`
 * (rate-limited), with the peer looked up only for them.
 */
export function createRequestGuard(
  repeats: RepeatLimitedLog,
  peers: { socket: (socket: Socket) => string | undefined; session: (session: Http2Session) => string | undefined },
): RequestGuard {
  const authorities = new AuthorityCache<Http2Session>();
  const refuse = (reason: string, fields: Record<string, unknown>) => repeats.warn(`bad request|${reason}`, { reason, ...fields }, "bad request");
  return {
    http1(req, res) {
      // HTTP/1.0 may leave Host out; connect needs an authority to build its URL.
      const host = req.headers.host || (req.headers.host = defaultAuthority);
      const path = req.url ?? "";
      const reason = requestTargetError(path, host);
      if (reason === undefined) {
        return true;
      }
      refuse(reason, { method: req.method, path: excerpt(path), host: excerpt(host), peer: peers.socket(req.socket), protocol: `HTTP/${req.httpVersion}` });
      res.writeHead(badRequest, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end(`${reason}\n`);
      return false;
    },

    http2(stream, headers) {
      // Node 24 clears stream.session once the session is destroyed, which a
      // stream of a connection being torn down (a FRAME_SIZE_ERROR) can
      // still meet here: nobody is left to answer. Node 24 also destroys such
      // a stream with the session's error, which the session's own "error"
      // event reports: unhandled here, it would end the process.
      const session = stream.session;
      if (session === undefined) {
        stream.on("error", ignoreStreamError);
        return false;
      }
      let authority = headers[":authority"] ?? headers.host;
      if (authority === undefined || authority === "") {
        authority = headers[":authority"] = defaultAuthority;
      }
      const path = headers[":path"] ?? "";
      const reason = authorities.valid(session, authority) ? pathError(path, authority) : "malformed authority";
      if (reason === undefined) {
        return true;
      }
      refuse(reason, { method: headers[":method"], path: excerpt(path), authority: excerpt(authority), peer: peers.session(session), protocol: "HTTP/2" });
      // Nothing else handles this stream: a connection error must not reach it unhandled.
      stream.on("error", ignoreStreamError);
      try {
        stream.respond({ ":status": badRequest, "content-type": "text/plain; charset=utf-8" });
        stream.end(`${reason}\n`);
      } catch {
        // the stream closed meanwhile: nobody to answer
      }
      return false;
    },
  };
}

// A refused stream's errors belong to its connection, which logs them.
function ignoreStreamError(): void {}

/**
 * Ends an HTTP/1.x request whose handler threw synchronously (a bug, or
 * caller input some parser rejected where nothing expected it): 500, or a
 * closed connection once the head is sent.
 */
export function failHttp1(res: ServerResponse): void {
  try {
    if (res.headersSent) res.destroy();
    else res.writeHead(500, { connection: "close" }).end();
  } catch {
    res.destroy();
  }
}

/** As failHttp1, for an HTTP/2 stream: reset with INTERNAL_ERROR. */
export function failHttp2(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
}

// Targets are caller input of any length: logs get the start of them.
function excerpt(value: string): string {
  return value.length <= 200 ? value : `${value.slice(0, 200)}...`;
}

/**
 * node:http's "clientError" (a request it could not parse, headers over the
 * limit, a header or request timeout): the answer node gives by default
 * (400, 431 or 408, then close), and a line in the log, which node's
 * default does not write.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, repeats: RepeatLimitedLog, peer: string | undefined): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy(); // the client went away: nobody to answer
    return;
  }
  const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  repeats.warn(`bad HTTP/1.1 request|${err.code}`, { code: err.code, reason: err.message, httpStatus: status, peer }, "bad HTTP/1.1 request");
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}
