import { readFileSync } from "node:fs";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { repoPath } from "./paths.js";

/** The Tyk article's grpcurl test Object (a Pre hook), as proto3 JSON. */
export const articleObjectJson = JSON.parse(readFileSync(repoPath("test", "fixtures", "tyk-article-pre-object.json"), "utf8")) as JsonValue;

/** The same Object as a protobuf-es message. */
export function articleObject(): Object$ {
  return fromJson(ObjectSchema, articleObjectJson);
}

/** Every service the server serves, sorted as reflection clients list them (Users has no package). */
export const servedServiceNames = [
  "Users",
  "coprocess.Dispatcher",
  "echo.Echo",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];
