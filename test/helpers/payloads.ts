import { readFileSync } from "node:fs";
import { fromJson, toBinary } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { requestObject } from "../../src/testing/gateway-model.js";
import { grpcFrame } from "./grpc-frame.js";
import { repoPath } from "./paths.js";

/** The framed 505-byte Pre-hook Object of performance.md (test/fixtures/bench-pre-object.json). */
export function dispatchBody(): Uint8Array {
  const json = JSON.parse(readFileSync(repoPath("test", "fixtures", "bench-pre-object.json"), "utf8"));
  return grpcFrame(toBinary(ObjectSchema, fromJson(ObjectSchema, json)));
}

/** A framed Pre-hook Object for an upload of `bodyBytes` (the gateway sends the body twice: body and raw_body). */
export function uploadDispatchBody(bodyBytes: number): Uint8Array {
  return grpcFrame(
    toBinary(
      ObjectSchema,
      requestObject(HookType.Pre, "anyHook", { method: "POST", url: "/upload", headers: { "Content-Type": "text/plain" }, body: "x".repeat(bodyBytes) }),
    ),
  );
}
