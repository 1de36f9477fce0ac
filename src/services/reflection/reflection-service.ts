import { create, type DescFile, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  type ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema as AlphaRequestSchema,
  ServerReflectionResponseSchema as AlphaResponseSchema,
  type ServerReflection as AlphaServerReflection,
} from "../../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { DescriptorIndex } from "./descriptor-index.js";

type Response = MessageInitShape<typeof ServerReflectionResponseSchema>;

/** `grpc.reflection.v1.ServerReflection` over the served descriptors. */
export function createReflectionService(index: DescriptorIndex): ServiceImpl<typeof ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      // Like grpc-go: within one stream, each dependency is sent only once;
      // the file asked for is always sent.
      const sent = new Set<DescFile>();
      for await (const req of requests) {
        yield answer(index, req, sent);
      }
    },
  };
}

/**
 * `grpc.reflection.v1alpha.ServerReflection`: the same protocol under the old
 * package name (clients fall back to it). The messages are identical on the
 * wire, so requests and responses are converted by re-decoding their bytes.
 */
export function createReflectionAlphaService(index: DescriptorIndex): ServiceImpl<typeof AlphaServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      const sent = new Set<DescFile>();
      for await (const alphaReq of requests) {
        const req = fromBinary(ServerReflectionRequestSchema, toBinary(AlphaRequestSchema, alphaReq));
        const res = create(ServerReflectionResponseSchema, answer(index, req, sent));
        yield fromBinary(AlphaResponseSchema, toBinary(ServerReflectionResponseSchema, res));
      }
    },
  };
}

function answer(index: DescriptorIndex, req: ServerReflectionRequest, sent: Set<DescFile>): Response {
  const base = { validHost: req.host, originalRequest: req };
  const files = (file: DescFile | undefined, what: string): Response => {
    if (file === undefined) {
      return { ...base, messageResponse: notFound(what) };
    }
    const out = index.withDependencies(file).filter((f) => f === file || !sent.has(f));
    out.forEach((f) => sent.add(f));
    return {
      ...base,
      messageResponse: {
        case: "fileDescriptorResponse",
        value: { fileDescriptorProto: out.map((f) => index.encode(f)) },
      },
    };
  };
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      return {
        ...base,
        messageResponse: {
          case: "listServicesResponse",
          value: { service: index.serviceNames.map((name) => ({ name })) },
        },
      };
    case "fileByFilename":
      return files(index.fileByName(r.value), `file "${r.value}"`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(r.value), `symbol "${r.value}"`);
    case "fileContainingExtension":
      return files(
        index.fileContainingExtension(r.value.containingType, r.value.extensionNumber),
        `extension ${r.value.extensionNumber} of "${r.value.containingType}"`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(r.value);
      if (numbers === undefined) {
        return { ...base, messageResponse: notFound(`type "${r.value}"`) };
      }
      return {
        ...base,
        messageResponse: {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: r.value, extensionNumber: numbers },
        },
      };
    }
    case undefined:
      return {
        ...base,
        messageResponse: {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request: set one of the message_request fields" },
        },
      };
  }
}

function notFound(what: string): Response["messageResponse"] {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
}
