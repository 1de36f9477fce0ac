import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { bufCurl, parseJsonDocuments } from "../helpers/buf-curl.js";
import { articleObjectJson, servedServiceNames } from "../helpers/fixtures.js";
import { repoPath } from "../helpers/paths.js";
import { useServerProcess } from "../helpers/server-process.js";

// The buf curl binary from node_modules, with no --schema: every call below
// resolves the server's types through gRPC server reflection.

const services = servedServiceNames;

describe("buf curl (reflection only) against the server process", () => {
  const server = useServerProcess();

  for (const reflect of ["grpc-v1", "grpc-v1alpha"]) {
    it(`lists services and methods over reflection ${reflect}`, async () => {
      const list = await bufCurl(["--reflect-protocol", reflect, "--list-services", server().baseUrl]);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(list.stdout.trim().split("\n"), services);
      const methods = await bufCurl(["--reflect-protocol", reflect, "--list-methods", server().baseUrl]);
      assert.equal(methods.code, 0, methods.stderr);
      for (const m of ["Users/CreateUser", "Users/GetUsers", "coprocess.Dispatcher/Dispatch", "echo.Echo/Reply", "grpc.health.v1.Health/Watch"]) {
        assert.ok(methods.stdout.split("\n").includes(m), `${m} in\n${methods.stdout}`);
      }
    });

    it(`calls Echo.Reply resolved over reflection ${reflect}`, async () => {
      const r = await bufCurl(["--reflect-protocol", reflect, "-d", '{"message":"Hello World!"}', `${server().baseUrl}/echo.Echo/Reply`]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { message: "You said: Hello World!" });
    });
  }

  it("sends the Tyk article's Dispatch payload and gets it back", async () => {
    const r = await bufCurl(["-d", `@${repoPath("test", "fixtures", "tyk-article-pre-object.json")}`, `${server().baseUrl}/coprocess.Dispatcher/Dispatch`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), articleObjectJson);
  });

  it("DispatchEvent: {} for JSON, invalid_argument (exit 3<<3) for anything else", async () => {
    const ok = await bufCurl(["-d", JSON.stringify({ payload: '{"event": "test"}' }), `${server().baseUrl}/coprocess.Dispatcher/DispatchEvent`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), {});
    const bad = await bufCurl(["-d", JSON.stringify({ payload: "{event" }), `${server().baseUrl}/coprocess.Dispatcher/DispatchEvent`]);
    assert.equal(bad.code, 3 << 3, bad.stderr);
    assert.equal((JSON.parse(bad.stderr) as { code: string }).code, "invalid_argument");
  });

  it("creates users and streams them back with a --timeout", async () => {
    for (const name of ["tom", "alexa", "christie"]) {
      const r = await bufCurl(["-H", "ip: 127.0.0.1", "-d", JSON.stringify({ username: name }), `${server().baseUrl}/Users/CreateUser`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await bufCurl([
      "--timeout",
      "30s",
      "-d",
      JSON.stringify({ user: [{ username: "alexa" }, { username: "christie" }] }),
      `${server().baseUrl}/Users/GetUsers`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseJsonDocuments(r.stdout), [{ user: { username: "alexa", userId: 2 } }, { user: { username: "christie", userId: 3 } }]);
    const missing = await bufCurl(["-d", JSON.stringify({ user: [{ username: "tom" }, { userId: 99 }] }), `${server().baseUrl}/Users/GetUsers`]);
    assert.equal(missing.code, 5 << 3, missing.stderr);
    assert.deepEqual(parseJsonDocuments(missing.stdout), [{ user: { username: "tom", userId: 1 } }]);
    assert.match(missing.stderr, /user_id 99 not found/);
  });

  it("health Check and List report SERVING", async () => {
    const check = await bufCurl(["-d", '{"service":"echo.Echo"}', `${server().baseUrl}/grpc.health.v1.Health/Check`]);
    assert.equal(check.code, 0, check.stderr);
    assert.deepEqual(JSON.parse(check.stdout), { status: "SERVING" });
    const list = await bufCurl(["-d", "{}", `${server().baseUrl}/grpc.health.v1.Health/List`]);
    const statuses = (JSON.parse(list.stdout) as { statuses: Record<string, { status: string }> }).statuses;
    assert.deepEqual(Object.keys(statuses).sort(), ["", ...services].sort());
    assert.ok(Object.values(statuses).every((s) => s.status === "SERVING"));
  });

  it("README's buf curl examples still name real methods", () => {
    const readme = readFileSync(repoPath("README.md"), "utf8");
    // Every example but the one that shows an unknown method.
    const examples = readme.split("\n").filter((line) => !line.includes("UNIMPLEMENTED"));
    const paths = examples.flatMap((line) => [...line.matchAll(/http:\/\/127\.0\.0\.1:50051\/([\w.]+\/\w+)/g)].map((m) => m[1]!));
    assert.ok(paths.length >= 8, "README shows a buf curl example per RPC");
    for (const p of paths) {
      assert.ok(
        services.some((s) => p.startsWith(`${s}/`)),
        `${p} is served`,
      );
    }
  });

  it("README's curl commands for the errors buf curl refuses to send answer what their comments say", () => {
    const readme = readFileSync(repoPath("README.md"), "utf8");
    const block = /```sh\n(grpc-raw\(\)[\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(block, "README has the grpc-raw block");
    const [definition, ...calls] = block.replace(/\\\n/g, "").trim().split("\n");
    assert.equal(calls.length, 2);
    for (const call of calls) {
      const [command, comment] = call.split(" # ");
      const script = `${definition}\n${command!.replace("http://127.0.0.1:50051", server().baseUrl)}`;
      const out = execFileSync("bash", ["-c", script], { encoding: "utf8", timeout: 30_000 });
      const status = /grpc-status: (\d+)/.exec(comment!)![1];
      assert.match(out, new RegExp(`^grpc-status: ${status}\\r?$`, "m"), `${command}: ${out}`);
    }
  });
});
