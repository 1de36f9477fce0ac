import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** The cookie a viewer holds once it has shown the token (the token's SHA-256, not the token). */
export const inspectorCookie = "tyk_grpc_ts_inspector";

/** The header the page's POSTs carry: a cross-site form cannot send it, and a cross-site script may not without a CORS preflight, which is never granted. */
export const inspectorRequestHeader = "x-inspector";

/**
 * Decides whether a request may see the inspector; when not, answers it.
 * With a token: the token once as `?token=` (answered with a cookie and a
 * redirect that drops it from the address bar), then the cookie, or
 * `Authorization: Bearer <token>` (scripts). Without one (loopback
 * listeners only, see config.ts): the Host must name the loopback
 * interface, so that a web page whose name was made to resolve to
 * 127.0.0.1 (DNS rebinding) cannot read it.
 */
export function inspectorAccess(
  token: string | undefined,
  refused: (req: IncomingMessage, status: number, reason: string) => void,
): (req: IncomingMessage, res: ServerResponse, url: URL) => boolean {
  const digest = token === undefined ? undefined : sha256(token);
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, reason: string) => {
    refused(req, status, reason);
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(`${reason}\n`);
  };
  return (req, res, url) => {
    if (req.method === "POST" && req.headers[inspectorRequestHeader] === undefined) {
      refuse(req, res, 403, `POST needs the ${inspectorRequestHeader} header (the inspector page sends it)`);
      return false;
    }
    if (digest === undefined) {
      if (loopbackHost(req.headers.host)) return true;
      refuse(req, res, 403, "the inspector answers only requests to a loopback host name (localhost, 127.0.0.1, [::1])");
      return false;
    }
    const given = url.searchParams.get("token");
    if (given !== null) {
      if (!same(sha256(given), digest)) {
        refuse(req, res, 401, "wrong inspector token");
        return false;
      }
      url.searchParams.delete("token");
      res
        .writeHead(303, {
          location: `${url.pathname}${url.search}`,
          "set-cookie": `${inspectorCookie}=${digest.toString("hex")}; Path=/inspect; HttpOnly; SameSite=Strict`,
        })
        .end();
      return false;
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const cookie = cookieValue(req.headers.cookie, inspectorCookie);
    if (
      (bearer !== undefined && same(sha256(bearer), digest)) ||
      (cookie !== undefined && /^[0-9a-f]{64}$/.test(cookie) && same(Buffer.from(cookie, "hex"), digest))
    ) {
      return true;
    }
    refuse(req, res, 401, "the inspector needs its token: open /inspect?token=TOKEN once (the token is --inspect-token)");
    return false;
  };
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

// localhost (and its subdomains, which resolve to loopback too), 127.0.0.0/8, [::1]; with or without a port.
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = (host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d+$/, "")).toLowerCase();
  return name === "localhost" || name.endsWith(".localhost") || name === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
