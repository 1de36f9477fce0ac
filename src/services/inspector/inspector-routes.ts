import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../../observability/logger.js";
import type { RepeatLimitedLog } from "../../observability/repeated-lines.js";
import type { CallRecorder, CallViewer } from "./call-recorder.js";
import { inspectorAccess } from "./inspector-access.js";
import type { CallSummary } from "./recorded-call.js";

/** What the inspector's HTTP routes need. */
export interface InspectorRoutesOptions {
  readonly recorder: CallRecorder;
  /** What viewers must show; undefined on loopback listeners. */
  readonly token: string | undefined;
  readonly logger: Logger;
  /** Where refused requests are logged, rate-limited. */
  readonly repeats: RepeatLimitedLog;
  /** How often an idle event stream gets a comment, so that idle-timeout does not close it. */
  readonly heartbeatMs: number;
}

/** The inspector's routes: serves a request under /inspect (true) or leaves it (false); `close` ends every event stream. */
export interface InspectorRoutes {
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

// The page: plain HTML, CSS and one script, served as they are (no build step), read once at start.
const pageDir = new URL("../../../../web/inspector/", import.meta.url);
const assets: Record<string, { file: string; type: string }> = {
  "/inspect": { file: "index.html", type: "text/html; charset=utf-8" },
  "/inspect/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/inspect/inspector.js": { file: "inspector.js", type: "text/javascript; charset=utf-8" },
  "/inspect/inspector.css": { file: "inspector.css", type: "text/css; charset=utf-8" },
};

// The page shows what clients sent: it may run no script or style but its own, nor be framed.
const securityHeaders = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

// A viewer that reads slower than calls arrive skips batches (and is told how many calls) rather than buffer them.
const maxBufferedBytes = 1024 * 1024;
// Each viewer costs a copy of every batch: a few are enough for a debugging page.
const maxViewers = 8;

/**
 * The call inspector's HTTP routes: the page (`/inspect`), its live feed
 * (`/inspect/events`, server-sent events: a `hello` with the kept calls,
 * then `calls` batches as they end, `dropped` with how many calls it was
 * not sent: it read too slowly, or more ended than a batch holds), one call's detail (`/inspect/calls/ID`), and `POST /inspect/clear`.
 */
export function createInspectorRoutes({ recorder, token, logger, repeats, heartbeatMs }: InspectorRoutesOptions): InspectorRoutes {
  const files = Object.fromEntries(Object.entries(assets).map(([path, a]) => [path, { body: readFileSync(new URL(a.file, pageDir)), type: a.type }]));
  const allowed = inspectorAccess(token, (req, status, reason) =>
    repeats.warn("inspector request refused", { status, reason, path: req.url?.split("?")[0], peer: req.socket.remoteAddress }, "inspector request refused"),
  );
  const streams = new Set<ServerResponse>();

  function events(req: IncomingMessage, res: ServerResponse): void {
    if (streams.size >= maxViewers) {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "retry-after": "5" }).end(`at most ${maxViewers} inspector pages at once\n`);
      return;
    }
    res.writeHead(200, { ...securityHeaders, "content-type": "text/event-stream; charset=utf-8", "x-accel-buffering": "no" });
    res.write(`retry: 2000\n\nevent: hello\ndata: ${JSON.stringify({ capacity: recorder.capacity, masked: recorder.masked, calls: recorder.calls() })}\n\n`);
    let dropped = 0;
    const viewer: CallViewer = {
      send(calls: readonly CallSummary[], skipped: number) {
        dropped += skipped;
        if (res.writableLength > maxBufferedBytes) {
          dropped += calls.length;
          return;
        }
        if (dropped > 0) {
          res.write(`event: dropped\ndata: ${JSON.stringify({ calls: dropped })}\n\n`);
          dropped = 0;
        }
        res.write(`event: calls\ndata: ${JSON.stringify(calls)}\n\n`);
      },
    };
    const unsubscribe = recorder.subscribe(viewer);
    const heartbeat = setInterval(() => res.write(": keepalive\n\n"), heartbeatMs).unref();
    streams.add(res);
    logger.info({ viewers: streams.size, peer: req.socket.remoteAddress }, "inspector page connected: recording calls");
    res.once("close", () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
      logger.info({ viewers: streams.size }, streams.size === 0 ? "inspector page left: no longer recording" : "inspector page left");
    });
  }

  function detail(res: ServerResponse, id: string): void {
    const text = /^\d{1,15}$/.test(id) ? recorder.detail(Number(id)) : undefined;
    if (text === undefined) {
      res.writeHead(404, { ...securityHeaders, "content-type": "application/json" }).end(JSON.stringify({ error: `call ${id} is not kept (any more)` }));
      return;
    }
    res.writeHead(200, { ...securityHeaders, "content-type": "application/json" }).end(text);
  }

  return {
    handle(req, res) {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (url.pathname !== "/inspect" && !url.pathname.startsWith("/inspect/")) {
        return false;
      }
      if (!allowed(req, res, url)) {
        return true;
      }
      const method = req.method ?? "GET";
      const asset = files[url.pathname];
      if (asset !== undefined && (method === "GET" || method === "HEAD")) {
        res
          .writeHead(200, { ...securityHeaders, "content-type": asset.type, "content-length": asset.body.length })
          .end(method === "HEAD" ? undefined : asset.body);
      } else if (url.pathname === "/inspect/events" && method === "GET") {
        events(req, res);
      } else if (url.pathname.startsWith("/inspect/calls/") && method === "GET") {
        detail(res, url.pathname.slice("/inspect/calls/".length));
      } else if (url.pathname === "/inspect/clear" && method === "POST") {
        recorder.clear();
        res.writeHead(204, securityHeaders).end();
      } else {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("no such inspector page\n");
      }
      return true;
    },
    close() {
      for (const res of streams) res.end();
    },
  };
}
