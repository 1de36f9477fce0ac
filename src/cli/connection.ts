import { readFileSync } from "node:fs";
import * as net from "node:net";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/** How to reach the server. */
export interface ConnectionOptions {
  /** `http://host:port` (h2c), `https://host:port` (TLS), `host:port`, or `unix:///path.sock`. */
  readonly server: string;
  readonly tlsCa?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** Request metadata, `key=value` each. */
  readonly meta: readonly string[];
}

/**
 * A gRPC transport (HTTP/2, generated types) for the CLI: h2c, TLS with an
 * optional CA and client certificate, or a unix socket; `--meta` pairs are
 * sent as request headers on every call.
 */
export function createConnection(options: ConnectionOptions): Transport {
  const headers = options.meta.map((pair) => {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--meta "${pair}": expected key=value`);
    return [pair.slice(0, eq).toLowerCase(), pair.slice(eq + 1)] as const;
  });
  const addMeta: Interceptor = (next) => (req) => {
    for (const [k, v] of headers) req.header.append(k, v);
    return next(req);
  };
  const read = (what: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
    }
  };
  if (options.server.startsWith("unix://")) {
    const path = options.server.slice("unix://".length);
    // The authority of unix targets is "localhost", as grpc-go sends it.
    return createGrpcTransport({ baseUrl: "http://localhost", interceptors: [addMeta], nodeOptions: { createConnection: () => net.connect(path) } });
  }
  const tls = options.server.startsWith("https://") || options.tlsCa !== undefined || options.cert !== undefined;
  const baseUrl = /^https?:\/\//.test(options.server)
    ? options.server.replace(/^http:/, tls ? "https:" : "http:")
    : `${tls ? "https" : "http"}://${options.server}`;
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new UsageError("--cert and --key go together");
  }
  const nodeOptions = tls ? { ca: read("CA", options.tlsCa), cert: read("certificate", options.cert), key: read("key", options.key) } : {};
  return createGrpcTransport({ baseUrl, interceptors: [addMeta], nodeOptions });
}

/** A mistake in the command line: printed with the usage hint, exit code 64. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Waits until the server's health service says SERVING (as the tutorial's
 * client waited for its channel to be ready), trying every 200 ms. Throws
 * UNAVAILABLE naming the last reason when `waitMs` runs out.
 */
export async function waitReady(transport: Transport, server: string, waitMs: number): Promise<void> {
  const health = createClient(Health, transport);
  const deadline = Date.now() + waitMs;
  let last = "no answer";
  for (;;) {
    try {
      const res = await health.check({ service: "" }, { timeoutMs: Math.max(1, Math.min(1000, deadline - Date.now())) });
      if (res.status === Status.SERVING) return;
      last = `health status ${Status[res.status]}`;
    } catch (e) {
      const err = ConnectError.from(e);
      last = err.cause instanceof Error ? err.cause.message : err.rawMessage;
    }
    if (Date.now() >= deadline) {
      throw new ConnectError(`server ${server} not ready after ${waitMs} ms: ${last}`, Code.Unavailable);
    }
    await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
  }
}
