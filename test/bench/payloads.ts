import { readFileSync } from "node:fs";
import { fromJson, toBinary } from "@bufbuild/protobuf";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { repoPath } from "../helpers/paths.js";
import { grpcFrame } from "../helpers/raw-http2.js";

/** The framed 505-byte Pre-hook Object of performance.md (test/fixtures/bench-pre-object.json). */
export function dispatchBody(): Uint8Array {
  const json = JSON.parse(readFileSync(repoPath("test", "fixtures", "bench-pre-object.json"), "utf8"));
  return grpcFrame(toBinary(ObjectSchema, fromJson(ObjectSchema, json)));
}
