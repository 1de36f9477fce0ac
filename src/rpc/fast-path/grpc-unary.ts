import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { DescMethodUnary } from "@bufbuild/protobuf";
import { createMethodSerializationLookup } from "@connectrpc/connect/protocol";
import { parseContentType } from "@connectrpc/connect/protocol-grpc";
import { keepWireBytes, receivedBytesToReply } from "../wire-bytes.js";
import type { GrpcUnaryFastPathOptions } from "./options.js";
import { serveUnaryCall, type UnaryRoute } from "./unary-call.js";
import { chainUnary } from "./unary-chain.js";
import { invokeImplementation, type UnaryImplSpec } from "./unary-request.js";

/** Serves one stream if it is a unary gRPC call this path handles; false hands it to connect. */
export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/**
 * A lean path for unary gRPC calls with protobuf payloads straight on
 * node:http2 streams. It calls the same typed implementations through the
 * same interceptors and request gate as the connect router, and writes the
 * same bytes, headers and trailers (checked by test/in-process/fast-path-differential.test.ts);
 * what it leaves out is connect's per-call machinery (async-iterable
 * pipeline, eager web Headers and AbortSignals), which is most of connect's
 * cost per call. Everything else (streaming methods, gRPC-Web, Connect,
 * JSON, other HTTP methods) is left to connect.
 */
export function createGrpcUnaryFastPath(options: GrpcUnaryFastPathOptions): StreamHandler {
  const routes = new Map<string, UnaryRoute>();
  for (const service of options.services) {
    for (const spec of Object.values(service.methods)) {
      if (spec.kind === "unary") {
        routes.set(`/${service.service.typeName}/${spec.method.name}`, unaryRoute(spec, options));
      }
    }
  }
  return (stream, headers) => {
    if (headers[":method"] !== "POST") {
      return false;
    }
    const path = headers[":path"] ?? "";
    const query = path.indexOf("?");
    const route = routes.get(query === -1 ? path : path.slice(0, query));
    if (route === undefined || !isGrpcProto(headers["content-type"])) {
      return false;
    }
    serveUnaryCall(route, stream, headers, options);
    return true;
  };
}

function unaryRoute(spec: UnaryImplSpec, options: GrpcUnaryFastPathOptions): UnaryRoute {
  // connect's own serializers, so that limits and error messages match.
  const serialization = createMethodSerializationLookup(spec.method, undefined, undefined, {
    readMaxBytes: options.readMaxBytes,
    writeMaxBytes: 0xffffffff,
  });
  const input = serialization.getI(true);
  const output = serialization.getO(true);
  const method = spec.method as DescMethodUnary;
  const invoke = chainUnary((req) => invokeImplementation(spec, req), options.interceptors);
  // Only a method whose reply has its request's type (Dispatch) can answer
  // with the request itself: its requests keep the bytes they came in, and
  // a reply declared unchanged since (an Object no hook edited) goes out as
  // them, without encoding the Object again (docs/performance.md). Other
  // methods do neither, per call.
  if (method.input !== method.output) {
    return { spec, parse: (d) => input.parse(d), serialize: (m) => output.serialize(m), invoke };
  }
  return {
    spec,
    parse: (d) => keepWireBytes(input.parse(d), d),
    serialize: (m) => receivedBytesToReply(m) ?? output.serialize(m),
    invoke,
  };
}

// What gRPC clients send, checked without a regular expression; anything
// else goes through connect's parser (`application/grpc+proto`, parameters).
function isGrpcProto(contentType: string | undefined): boolean {
  return contentType === "application/grpc" || parseContentType(contentType ?? null)?.binary === true;
}
