import { strict as assert } from "node:assert";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EchoReplySchema, EchoRequestSchema } from "../../gen/echo_pb.js";
import { type DevCertificates, makeDevCertificates } from "../../src/dev-certs/make.js";
import { bufCurl } from "../helpers/buf-curl.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// TLS and mTLS listeners, end to end: certificates from `pnpm certs`' own
// code, a real server process, and clients that are not Connect.

const echoBody = (message: string) => grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message })));

async function echoOverTls(baseUrl: string, options: http2.SecureClientSessionOptions): Promise<string> {
  const res = await rawGrpcCall(baseUrl, "/echo.Echo/Reply", echoBody("over tls"), {}, options);
  assert.equal(res.trailers["grpc-status"], "0");
  return fromBinary(EchoReplySchema, res.body.subarray(5)).message;
}

const tlsArgs = (c: DevCertificates, extra: string[] = []) => ["--tls-listen", "127.0.0.1:0", "--tls-cert", c.serverCert, "--tls-key", c.serverKey, ...extra];

describe("TLS and mTLS", () => {
  let dir: string;
  let ours: DevCertificates;
  let theirs: DevCertificates; // another CA: trusted by nobody here
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "tyk-grpc-ts-tls-"));
    ours = makeDevCertificates(join(dir, "ours"));
    theirs = makeDevCertificates(join(dir, "theirs"), { caName: "some other CA" });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe("TLS beside plaintext", () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServerProcess(tlsArgs(ours));
    });
    after(async () => assert.equal(await server.stop(), 0));

    it("a client trusting the CA gets h2 by ALPN and its call served; the plaintext listener serves too", async () => {
      assert.ok(server.tlsBaseUrl);
      assert.equal(await echoOverTls(server.tlsBaseUrl, { ca: readFileSync(ours.caCert) }), "You said: over tls");
      const plain = await rawGrpcCall(server.baseUrl, "/echo.Echo/Reply", echoBody("plain"));
      assert.equal(plain.trailers["grpc-status"], "0");
    });

    it("buf curl with --cacert works through reflection", async () => {
      const r = await bufCurl(["--cacert", ours.caCert, "-d", '{"message":"tls"}', `${server.tlsBaseUrl}/echo.Echo/Reply`], { h2c: false });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { message: "You said: tls" });
    });

    it("HTTP/1.1 by ALPN serves the Connect protocol (JSON)", async () => {
      const body = await new Promise<string>((resolve, reject) => {
        const req = https.request(
          `${server.tlsBaseUrl}/echo.Echo/Reply`,
          { method: "POST", ca: readFileSync(ours.caCert), headers: { "content-type": "application/json" } },
          (res) => {
            assert.equal(res.statusCode, 200);
            let text = "";
            res.on("data", (d: Buffer) => (text += d.toString()));
            res.on("end", () => resolve(text));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ message: "h1" }));
      });
      assert.deepEqual(JSON.parse(body), { message: "You said: h1" });
    });

    it("a client without the CA fails the handshake; the server logs it and keeps serving", async () => {
      await assert.rejects(echoOverTls(server.tlsBaseUrl!, {}), (e: Error & { cause?: { code?: string } }) => {
        // The call is cancelled because its session failed verification.
        assert.match(String(e.cause?.code), /SELF_SIGNED|UNABLE_TO_VERIFY/);
        return true;
      });
      await server.waitForLog((l) => l.msg === "TLS handshake failed");
      assert.equal(await echoOverTls(server.tlsBaseUrl!, { ca: readFileSync(ours.caCert) }), "You said: over tls");
    });
  });

  describe("mTLS", () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServerProcess(tlsArgs(ours, ["--tls-client-ca", ours.caCert]));
    });
    after(async () => assert.equal(await server.stop(), 0));
    const trustServer = () => ({ ca: readFileSync(ours.caCert) });

    it("a client certificate from the CA is accepted", async () => {
      const options = { ...trustServer(), cert: readFileSync(ours.clientCert), key: readFileSync(ours.clientKey) };
      assert.equal(await echoOverTls(server.tlsBaseUrl!, options), "You said: over tls");
    });

    it("no client certificate is refused", async () => {
      await assert.rejects(echoOverTls(server.tlsBaseUrl!, trustServer()));
      const line = await server.waitForLog((l) => l.msg === "TLS handshake failed" && /CERTIFICATE/i.test(String(l.code)));
      assert.ok(line.peer, "the log line names the peer");
    });

    it("a client certificate from another CA is refused", async () => {
      const before = server.lines.filter((l) => l.msg === "TLS handshake failed").length;
      const options = { ...trustServer(), cert: readFileSync(theirs.clientCert), key: readFileSync(theirs.clientKey) };
      await assert.rejects(echoOverTls(server.tlsBaseUrl!, options));
      await server.waitForLog(() => server.lines.filter((l) => l.msg === "TLS handshake failed").length > before);
    });
  });

  it("SIGHUP re-reads the certificate: new connections get the new one, open ones keep working", async () => {
    const live = join(dir, "live");
    const files = makeDevCertificates(live);
    const server = await startServerProcess(tlsArgs(files));
    try {
      const oldCa = { ca: readFileSync(ours.caCert) };
      assert.ok(!readFileSync(files.caCert).equals(oldCa.ca));
      const trustLive = { ca: readFileSync(files.caCert) };
      const open = http2.connect(server.tlsBaseUrl!, trustLive);
      open.on("error", () => undefined);
      const callOn = (session: http2.ClientHttp2Session) =>
        new Promise<string | undefined>((resolve, reject) => {
          const req = session.request({ ":method": "POST", ":path": "/echo.Echo/Reply", "content-type": "application/grpc", te: "trailers" });
          req.on("trailers", (t) => resolve(t["grpc-status"] as string | undefined));
          req.on("error", reject);
          req.resume();
          req.end(echoBody("again"));
        });
      assert.equal(await callOn(open), "0");

      // Swap in the other server certificate (from `ours`' CA) and signal.
      copyFileSync(ours.serverCert, files.serverCert);
      copyFileSync(ours.serverKey, files.serverKey);
      server.child.kill("SIGHUP");
      const reloaded = await server.waitForLog((l) => l.msg === "TLS certificate reloaded");
      assert.equal(reloaded.fingerprint256, new (await import("node:crypto")).X509Certificate(readFileSync(ours.serverCert)).fingerprint256);

      assert.equal(await echoOverTls(server.tlsBaseUrl!, oldCa), "You said: over tls", "new connection: new certificate");
      await assert.rejects(echoOverTls(server.tlsBaseUrl!, trustLive), "the replaced certificate is no longer offered");
      assert.equal(await callOn(open), "0", "the connection opened before the reload still works");
      open.close();

      // A broken file on reload keeps the current certificate.
      copyFileSync(ours.caKey, files.serverKey); // a key that does not match
      server.child.kill("SIGHUP");
      const failed = await server.waitForLog((l) => l.msg === "TLS reload failed: keeping the old certificate");
      assert.match(JSON.stringify(failed.err), /key values mismatch|unusable TLS files/);
      assert.equal(await echoOverTls(server.tlsBaseUrl!, oldCa), "You said: over tls");
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("a key that does not match the certificate stops the start with exit 1 and says why", async () => {
    await assert.rejects(
      startServerProcess(["--tls-listen", "127.0.0.1:0", "--tls-cert", ours.serverCert, "--tls-key", theirs.serverKey]),
      /unusable TLS files/,
    );
  });
});
