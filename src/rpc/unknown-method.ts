import { Code } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";

/**
 * Fallback for paths no route serves. gRPC and gRPC-Web callers get a
 * trailers-only UNIMPLEMENTED naming the path, as grpc-go and grpc-js servers
 * answer; anything else gets a plain 404.
 */
export const unknownMethod: NonNullable<ConnectNodeAdapterOptions["fallback"]> = (req, res) => {
  const contentType = req.headers["content-type"] ?? "";
  if (/^application\/grpc(-web)?([+;]|$)/.test(contentType)) {
    res.writeHead(200, {
      "content-type": contentType.split(";")[0]!,
      "grpc-status": String(Code.Unimplemented),
      "grpc-message": encodeURIComponent(`unknown method ${req.url}`),
    });
  } else {
    res.writeHead(404);
  }
  res.end();
};
