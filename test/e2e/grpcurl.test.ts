import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { externalTool } from "../helpers/external-tools.js";
import { servedServiceNames } from "../helpers/fixtures.js";
import { repoPath } from "../helpers/paths.js";
import { useServerProcess } from "../helpers/server-process.js";

// grpcurl, the client Tyk's gRPC tutorial tests its server with: through
// reflection only (no .proto files on its side), typed as the tutorial
// types it. `.ci/run` installs a pinned grpcurl with `go install` and sets
// GRPCURL; elsewhere the tests run when grpcurl is there.

const grpcurl = externalTool("grpcurl", "GRPCURL", ["grpcurl"]);
const skip = "skip" in grpcurl ? grpcurl.skip : undefined;

describe("grpcurl (reflection only)", { skip }, () => {
  const server = useServerProcess();
  const run = (...args: string[]) =>
    execFileSync((grpcurl as { path: string }).path, ["-plaintext", ...args], { encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });

  it("lists the services, Users without a package", () => {
    assert.deepEqual(run(server().address, "list").trim().split("\n"), servedServiceNames);
  });

  it("describes coprocess.Dispatcher and its Object", () => {
    const service = run(server().address, "describe", "coprocess.Dispatcher");
    assert.match(service, /rpc Dispatch \( \.coprocess\.Object \) returns \( \.coprocess\.Object \);/);
    assert.match(service, /rpc DispatchEvent \( \.coprocess\.Event \) returns \( \.coprocess\.EventReply \);/);
    assert.match(run(server().address, "describe", "coprocess.Object"), /\.coprocess\.HookType hook_type = 1;/);
  });

  it("the tutorial's Dispatch payload comes back unchanged; DispatchEvent answers {}", () => {
    // As the tutorial types it: the Object as JSON on the command line.
    const object = JSON.stringify(JSON.parse(readFileSync(repoPath("test", "fixtures", "tyk-article-pre-object.json"), "utf8")));
    const reply = JSON.parse(run("-d", object, server().address, "coprocess.Dispatcher/Dispatch")) as Record<string, unknown>;
    assert.deepEqual(reply, JSON.parse(object));
    assert.equal(run("-d", '{"payload": "{\\"event\\": \\"test\\"}"}', server().address, "coprocess.Dispatcher/DispatchEvent").trim(), "{}");
  });

  it("errors come back as gRPC statuses grpcurl prints", () => {
    assert.throws(
      () => run("-d", '{"payload": "not json"}', server().address, "coprocess.Dispatcher/DispatchEvent"),
      (e: { stderr?: string }) => /Code: InvalidArgument/.test(String(e.stderr)),
    );
  });
});
