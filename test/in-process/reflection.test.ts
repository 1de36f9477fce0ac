import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { ServerReflection, type ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as AlphaReflection } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { inMemoryServer } from "../helpers/in-memory.js";

type Request = MessageInitShape<typeof ServerReflectionRequestSchema>;

const { transport } = inMemoryServer();

/** Sends requests on one reflection stream and summarises each response. */
async function ask(requests: Request[], alpha = false) {
  const client = alpha ? createClient(AlphaReflection, transport) : createClient(ServerReflection, transport);
  const out: Array<{ files?: string[]; error?: [number, string]; services?: string[]; extensions?: number[] }> = [];
  async function* send() {
    yield* requests;
  }
  for await (const res of client.serverReflectionInfo(send() as never)) {
    const r = res.messageResponse;
    if (r.case === "fileDescriptorResponse") {
      out.push({ files: r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name) });
    } else if (r.case === "errorResponse") {
      out.push({ error: [r.value.errorCode, r.value.errorMessage] });
    } else if (r.case === "allExtensionNumbersResponse") {
      out.push({ extensions: r.value.extensionNumber });
    } else if (r.case === "listServicesResponse") {
      out.push({ services: r.value.service.map((s) => s.name) });
    }
  }
  return out;
}

const symbol = (value: string): Request => ({ messageRequest: { case: "fileContainingSymbol", value } });
const file = (value: string): Request => ({ messageRequest: { case: "fileByFilename", value } });

describe("server reflection", () => {
  for (const alpha of [false, true]) {
    const v = alpha ? "v1alpha" : "v1";
    it(`${v}: a symbol's file comes with all its transitive imports, each once per stream`, async () => {
      const [first, second] = await ask([symbol("coprocess.Dispatcher"), symbol("coprocess.SessionState")], alpha);
      assert.equal(first?.files?.[0], "coprocess_object.proto");
      assert.deepEqual(first?.files?.slice().sort(), [
        "coprocess_common.proto",
        "coprocess_mini_request_object.proto",
        "coprocess_object.proto",
        "coprocess_response_object.proto",
        "coprocess_return_overrides.proto",
        "coprocess_session_state.proto",
      ]);
      assert.deepEqual(second?.files, ["coprocess_session_state.proto"], "already-sent files are not repeated");
    });

    it(`${v}: resolves methods, package-less services, nested enums and file names; NOT_FOUND otherwise`, async () => {
      const res = await ask(
        [
          symbol("echo.Echo.Reply"),
          symbol("Users"),
          symbol("grpc.health.v1.HealthCheckResponse.ServingStatus"),
          file("users_types.proto"),
          symbol("echo.Echo.Shout"),
          file("nope.proto"),
          { messageRequest: { case: "allExtensionNumbersOfType", value: "users.User" } },
          { messageRequest: { case: "listServices", value: "*" } },
        ],
        alpha,
      );
      assert.deepEqual(res[0], { files: ["echo.proto"] });
      assert.deepEqual(res[1], { files: ["users.proto", "users_types.proto"] });
      assert.deepEqual(res[2], { files: ["grpc/health/v1/health.proto"] });
      assert.deepEqual(res[3], { files: ["users_types.proto"] }, "asked for by name: sent again");
      assert.deepEqual(res[4], { error: [5, 'symbol "echo.Echo.Shout" not found'] });
      assert.deepEqual(res[5], { error: [5, 'file "nope.proto" not found'] });
      assert.deepEqual(res[6], { extensions: [] });
      assert.equal(res[7]?.services?.length, 6);
    });
  }
});
