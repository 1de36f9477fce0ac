import * as http2 from "node:http2";

/** Everything a raw gRPC call got back. */
export interface RawResponse {
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * Sends one request on a plain node:http2 connection with exactly the
 * headers given (no gRPC library in between), and collects the answer.
 */
export async function rawGrpcCall(
  baseUrl: string,
  path: string,
  body: Uint8Array,
  headers: http2.OutgoingHttpHeaders = {},
  connectOptions: http2.SecureClientSessionOptions = {},
): Promise<RawResponse> {
  const session = http2.connect(baseUrl, connectOptions);
  // A failed connection fails the call, with the session's error as its cause.
  session.on("error", () => undefined);
  try {
    return await rawGrpcCallOn(session, path, body, headers);
  } finally {
    session.close();
  }
}

/** As rawGrpcCall, on a connection the caller keeps (many calls on one connection, as a gateway makes them). */
export function rawGrpcCallOn(
  session: http2.ClientHttp2Session,
  path: string,
  body: Uint8Array,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => (responseHeaders = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve({ headers: responseHeaders, trailers, body: Buffer.concat(chunks) }));
    req.on("error", reject);
    req.end(body);
  });
}

/** The grpc-status of an answer (trailers, or headers of a trailers-only answer). */
export function grpcStatusOf(res: RawResponse): string | undefined {
  return (res.trailers["grpc-status"] ?? res.headers["grpc-status"]) as string | undefined;
}
