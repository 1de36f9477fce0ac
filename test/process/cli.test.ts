import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { makeDevCertificates } from "../../src/dev-certs/make.js";
import { repoPath } from "../helpers/paths.js";
import { startServerProcess, useServerProcess } from "../helpers/server-process.js";

// `pnpm client ...` driven as a user would: a spawned process against a real server.

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function client(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [repoPath("dist", "src", "cli", "main.js"), ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
    child.stdin!.end(stdin);
  });
}

const dir = mkdtempSync(join(tmpdir(), "cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("pnpm client", () => {
  const server = useServerProcess();
  const run = (...args: string[]) => client(["--server", server().address, ...args]);

  it("echo, and --json", async () => {
    assert.deepEqual(await run("echo", "Hello World!"), { code: 0, stdout: "You said: Hello World!\n", stderr: "" });
    assert.deepEqual(JSON.parse((await run("echo", "hi", "--json")).stdout), { message: "You said: hi" });
  });

  it("through pnpm as the README says: `pnpm -s client --json` prints only the JSON (no build, no banner)", async () => {
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
      execFile("pnpm", ["-s", "client", "--server", server().address, "--json", "echo", "hi"], { cwd: repoPath(), timeout: 30_000 }, (err, stdout) =>
        err ? reject(err) : resolve({ stdout }),
      ),
    );
    assert.deepEqual(JSON.parse(stdout), { message: "You said: hi" });
  });

  it("users create with --meta (the server sees it), users get in request order, exit codes from the status", async () => {
    const tom = await run("users", "create", "tom", "--meta", "ip=127.0.0.1", "--email", "tom@example.com", "--password", "s3cret");
    assert.equal(tom.code, 0, tom.stderr);
    assert.match(tom.stdout, /^created user tom \(id \d+\)\n$/);
    const line = await server().waitForLog((l) => l.msg === "create user" || (typeof l.metadata === "object" && l.metadata !== null && "ip" in l.metadata));
    assert.equal((line.metadata as Record<string, string>).ip, "127.0.0.1");
    await run("users", "create", "alexa");
    await run("users", "create", "christie");
    const got = await run("--timeout", "30s", "users", "get", "christie", "alexa");
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(
      got.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[1]),
      ["christie", "alexa"],
    );
    const dup = await run("users", "create", "tom");
    assert.equal(dup.code, 6, "ALREADY_EXISTS");
    assert.match(dup.stderr, /^error: ALREADY_EXISTS \(6\): username "tom" is already taken/);
    // Users before the missing one are printed as they arrive, then the error.
    const partial = await run("users", "get", "alexa", "nobody", "--json");
    assert.equal(partial.code, 5, "NOT_FOUND");
    assert.equal(JSON.parse(partial.stdout.trim()).user.username, "alexa");
  });

  it("dispatch --file (and from stdin), event, health", async () => {
    const object = repoPath("test", "fixtures", "tyk-article-pre-object.json");
    const reply = await run("dispatch", "--file", object);
    assert.equal(reply.code, 0, reply.stderr);
    assert.equal(JSON.parse(reply.stdout).hookName, "MyPreCustomPluginForBasicAuth");
    const fromStdin = await client(["--server", server().address, "dispatch", "--file", "-"], '{"hookType": "Pre", "hookName": "x", "request": {"url": "/"}}');
    assert.equal(JSON.parse(fromStdin.stdout).request.url, "/");
    assert.deepEqual(await run("event", '{"event":"test"}'), { code: 0, stdout: "ok\n", stderr: "" });
    assert.equal((await run("health")).stdout, "SERVING\n");
    assert.equal((await run("health", "nope.Nope")).code, 5);
  });

  it("usage: --help per command, unknown commands and bad input exit 64 with a hint", async () => {
    const help = await client(["users", "get", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: pnpm client users get \[USERNAME\.\.\.\]/);
    assert.match((await client(["--help"])).stdout, /Commands:[\s\S]*dispatch --file/);
    const unknown = await client(["shout"]);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /unknown command "shout"\nRun with --help/);
    writeFileSync(join(dir, "bad.json"), '{"hookType": "NoSuchHook"}');
    const bad = await run("dispatch", "--file", join(dir, "bad.json"));
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /cannot use .*bad\.json as an Object/);
    assert.equal((await run("echo")).code, 64, "missing argument");
  });
});

describe("pnpm client --wait-ready, TLS and unix sockets", () => {
  it("--wait-ready fails with UNAVAILABLE and says why when nothing listens", async () => {
    const r = await client(["--server", "127.0.0.1:1", "--wait-ready", "600ms", "health"]);
    assert.equal(r.code, 14);
    assert.match(r.stderr, /not ready after 600 ms: connect ECONNREFUSED/);
  });

  it("--wait-ready waits for a server that starts later", async () => {
    const probe = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => probe.once("listening", r));
    const port = (probe.address() as net.AddressInfo).port;
    probe.close();
    const waiting = client(["--server", `127.0.0.1:${port}`, "--wait-ready", "20s", "echo", "late"]);
    await new Promise((r) => setTimeout(r, 500));
    const server = await startServerProcess(["--listen", `127.0.0.1:${port}`]);
    try {
      assert.deepEqual(await waiting, { code: 0, stdout: "You said: late\n", stderr: "" });
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("TLS with --tls-ca, mTLS with --cert/--key, and unix:// servers", async () => {
    const certs = makeDevCertificates(join(dir, "certs"));
    const socket = join(dir, "cli.sock");
    const server = await startServerProcess([
      "--listen",
      `unix://${socket}`,
      "--tls-listen",
      "127.0.0.1:0",
      "--tls-cert",
      certs.serverCert,
      "--tls-key",
      certs.serverKey,
      "--tls-client-ca",
      certs.caCert,
    ]);
    try {
      const tls = server.tlsBaseUrl!;
      const mtls = await client(["--server", tls, "--tls-ca", certs.caCert, "--cert", certs.clientCert, "--key", certs.clientKey, "echo", "secure"]);
      assert.deepEqual(mtls, { code: 0, stdout: "You said: secure\n", stderr: "" });
      const noCert = await client(["--server", tls, "--tls-ca", certs.caCert, "echo", "x"]);
      assert.notEqual(noCert.code, 0, "refused without a client certificate");
      assert.equal((await client(["--server", `unix://${socket}`, "echo", "local"])).stdout, "You said: local\n");
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
