import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { EchoRequestSchema } from "../../gen/echo_pb.js";
import { applyRequestReply, requestObject } from "../../src/testing/gateway-model.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { frame, headerBlock } from "../helpers/h2-frames.js";
import { type ServerProcess, startServerProcess, useServerProcess } from "../helpers/server-process.js";
import { GatewayClient } from "../helpers/tyk-gateway.js";

// Transport details Tyk depends on: unix sockets, several listeners, empty
// :authority from old gateways, one long-lived multiplexed connection.

const echoBody = grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hi" })));

/** One request over node:http2 with the given :authority; resolves with what came back. */
function callWithAuthority(baseUrl: string, authority: string, extra: http2.OutgoingHttpHeaders = {}) {
  return new Promise<{ status?: string; data: Buffer; rstCode: number }>((resolve) => {
    const session = http2.connect(baseUrl);
    session.on("error", () => undefined);
    const req = session.request({
      ":method": "POST",
      ":path": "/echo.Echo/Reply",
      ":authority": authority,
      ":scheme": "http",
      "content-type": "application/grpc",
      te: "trailers",
      ...extra,
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("trailers", (t) => (status = t["grpc-status"] as string));
    req.on("error", () => undefined);
    req.on("close", () => {
      resolve({ status, data: Buffer.concat(chunks), rstCode: req.rstCode ?? 0 });
      session.close();
    });
    req.end(echoBody);
  });
}

describe("empty :authority (Tyk <= 5.8.2 without grpc_authority)", () => {
  const server = useServerProcess();

  it("is served by default", async () => {
    const res = await callWithAuthority(server().baseUrl, "");
    assert.equal(res.status, "0");
    assert.match(res.data.toString(), /You said: hi/);
  });

  it("is served when the header block spans HEADERS and CONTINUATION frames", async () => {
    const res = await callWithAuthority(server().baseUrl, "", { "x-big": "v".repeat(20_000) });
    assert.equal(res.status, "0");
  });

  it("is served when sent as a literal without indexing (hand-made HPACK over a raw socket)", async () => {
    const port = Number(server().address.split(":")[1]);
    const str = (s: string) => [s.length, ...Buffer.from(s)];
    const block = Buffer.from([
      0x83, // :method POST
      0x86, // :scheme http
      0x04,
      ...str("/echo.Echo/Reply"), // :path, literal without indexing
      0x01,
      0x00, // :authority "", literal without indexing
      0x0f,
      0x10,
      ...str("application/grpc"), // content-type (static 31)
      0x00,
      ...str("te"),
      ...str("trailers"),
    ]);
    const socket = net.connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    socket.on("data", (d) => received.push(d));
    socket.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS
    socket.write(frame(0x1, 0x4, 1, block)); // HEADERS, END_HEADERS
    socket.write(frame(0x0, 0x1, 1, echoBody)); // DATA, END_STREAM
    const deadline = Date.now() + 3000;
    while (!Buffer.concat(received).includes("You said: hi") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    socket.destroy();
    assert.ok(Buffer.concat(received).includes("You said: hi"), "the reply came back");
  });

  // grpc-go (so Tyk) sends no request before the server's preface: the
  // server must speak first, then tell from the first request whether the
  // connection needs the :authority rewrite (authority-sniff.ts).
  for (const [authority, rewrite] of [
    ["", true],
    ["localhost:50051", false],
  ] as const) {
    it(`a client that waits for the server's preface, :authority ${JSON.stringify(authority)}: served${rewrite ? " through the rewrite" : " without the rewrite"}`, async () => {
      const port = Number(server().address.split(":")[1]);
      const client = new WaitingClient(port);
      await client.handshake();
      const reply = await client.call(headerBlock(authority));
      assert.ok(reply.includes("You said: hi"), "the reply came back");
      const reply2 = await client.call(headerBlock(authority), 3);
      assert.ok(reply2.includes("You said: hi"), "and a second call on the connection");
      const peer = client.localAddress;
      client.close();
      const line = await server().waitForLog((l) => l.msg === "connection accepted" && l.peer === peer);
      assert.equal(line.rewriteAuthority, rewrite);
    });
  }

  it("a client idle for longer than the look at its first request is served through the rewrite", async () => {
    const port = Number(server().address.split(":")[1]);
    const client = new WaitingClient(port);
    await client.handshake();
    await new Promise((r) => setTimeout(r, 1300));
    const reply = await client.call(headerBlock(""));
    assert.ok(reply.includes("You said: hi"));
    const peer = client.localAddress;
    client.close();
    const line = await server().waitForLog((l) => l.msg === "connection accepted" && l.peer === peer);
    assert.equal(line.rewriteAuthority, true);
  });

  it("is refused with PROTOCOL_ERROR under --empty-authority refuse (Node's own behaviour)", async () => {
    const strict = await startServerProcess(["--empty-authority", "refuse"]);
    try {
      const res = await callWithAuthority(strict.baseUrl, "");
      assert.equal(res.rstCode, http2.constants.NGHTTP2_PROTOCOL_ERROR);
      assert.equal((await callWithAuthority(strict.baseUrl, "localhost")).status, "0");
    } finally {
      assert.equal(await strict.stop(), 0);
    }
  });
});

/**
 * A raw HTTP/2 client that behaves like grpc-go on a new connection: it
 * sends its preface and SETTINGS, waits for the server's SETTINGS, ACKs
 * every SETTINGS it gets, and only then sends requests.
 */
class WaitingClient {
  readonly #socket: net.Socket;
  #received = Buffer.alloc(0);
  #settingsSeen = 0;
  readonly #data = new Map<number, Buffer[]>();
  readonly #ended = new Set<number>();

  constructor(port: number) {
    this.#socket = net.connect(port, "127.0.0.1");
    this.#socket.on("error", () => undefined);
    this.#socket.on("data", (d: Buffer) => this.#onData(d));
    this.#socket.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    this.#socket.write(frame(0x4, 0, 0, Buffer.alloc(0)));
  }

  get localAddress(): string {
    return `127.0.0.1:${this.#socket.localPort}`;
  }

  async handshake(): Promise<void> {
    await this.#until(() => this.#settingsSeen > 0);
  }

  async call(block: Buffer, streamId = 1): Promise<string> {
    this.#socket.write(frame(0x1, 0x4, streamId, block));
    this.#socket.write(frame(0x0, 0x1, streamId, echoBody));
    await this.#until(() => this.#ended.has(streamId));
    return Buffer.concat(this.#data.get(streamId) ?? []).toString();
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(d: Buffer): void {
    this.#received = Buffer.concat([this.#received, d]);
    while (this.#received.length >= 9) {
      const length = this.#received.readUIntBE(0, 3);
      if (this.#received.length < 9 + length) break;
      const [type, flags] = [this.#received[3]!, this.#received[4]!];
      const stream = this.#received.readUInt32BE(5) & 0x7fffffff;
      const payload = this.#received.subarray(9, 9 + length);
      this.#received = this.#received.subarray(9 + length);
      if (type === 0x4 && !(flags & 0x1)) {
        this.#settingsSeen++;
        this.#socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0))); // ACK
      } else if (type === 0x0) {
        this.#data.set(stream, [...(this.#data.get(stream) ?? []), payload]);
      }
      if ((type === 0x1 || type === 0x0) && flags & 0x1) {
        this.#ended.add(stream);
      } else if (type === 0x3) {
        this.#ended.add(stream); // RST_STREAM
      }
    }
  }

  async #until(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 3000;
    while (!condition()) {
      assert.ok(Date.now() < deadline, "no answer within 3 s");
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

describe("unix sockets and several listeners", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "tyk-sock-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("serves Dispatch on a unix socket and TCP at once; removes the socket file at exit", async () => {
    const path = join(dir, "plugins.sock");
    const server = await startServerProcess(["--listen", `unix://${path}`, "--listen", "127.0.0.1:0"]);
    const listening = server.lines.find((l) => l.msg === "server listening")!;
    assert.deepEqual((listening.addresses as string[])[0], `unix://${path}`);
    const tcp = (listening.addresses as string[])[1]!;
    try {
      for (const target of [`unix://${path}`, tcp]) {
        const gw = new GatewayClient(target);
        const req = { method: "GET", url: "/get", headers: {} };
        const reply = await gw.dispatch(requestObject(HookType.Pre, "anyHook", req));
        assert.equal(applyRequestReply(req, reply).kind, "continue");
        gw.close();
      }
    } finally {
      assert.equal(await server.stop(), 0);
    }
    assert.equal(existsSync(path), false, "socket file removed");
  });

  it("the socket file is rw for its owner and group only (0660) whatever the umask; --unix-socket-group sets its group", async () => {
    const path = join(dir, "mode.sock");
    // The server inherits the most permissive umask there is.
    const umask = process.umask(0);
    let server: ServerProcess;
    try {
      server = await startServerProcess(["--listen", `unix://${path}`]);
    } finally {
      process.umask(umask);
    }
    try {
      assert.equal((statSync(path).mode & 0o777).toString(8), "660");
    } finally {
      assert.equal(await server.stop(), 0);
    }
    // A group other than the server's own: as root any group will do, else one of ours.
    const groups = process.getgroups?.() ?? [];
    const gid = process.getuid?.() === 0 ? 1 : groups.find((g) => g !== process.getegid?.());
    if (gid === undefined) return; // no second group to give it to on this host
    const grouped = await startServerProcess(["--listen", `unix://${path}`, "--unix-socket-group", String(gid)]);
    try {
      assert.equal(statSync(path).gid, gid);
      assert.equal((statSync(path).mode & 0o777).toString(8), "660");
    } finally {
      assert.equal(await grouped.stop(), 0);
    }
    const unknown = await startServerProcess(["--listen", `unix://${path}`, "--unix-socket-group", "no-such-group-here"]).then(
      () => assert.fail("started with an unknown group"),
      (e: Error) => e,
    );
    assert.match(unknown.message, /unknown group "no-such-group-here"/);
  });

  it("replaces a stale socket file, but refuses a live one or a regular file", async () => {
    const path = join(dir, "stale.sock");
    // What a killed server leaves behind: a socket file nobody listens on.
    execFileSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    assert.equal(existsSync(path), true);
    const server = await startServerProcess(["--listen", `unix://${path}`]);
    try {
      await server.waitForLog((l) => l.msg === "removed stale socket file");
      const second = await startServerProcess(["--listen", `unix://${path}`]).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.match(String(second?.message), /another server is listening on/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    const file = join(dir, "not-a-socket");
    writeFileSync(file, "keep me");
    const refused = await startServerProcess(["--listen", `unix://${file}`]).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.match(String(refused?.message), /is not a socket: refusing to replace it/);
    assert.equal(existsSync(file), true);
  });
});

describe("one long-lived multiplexed connection, as the gateway keeps", () => {
  it("serves many concurrent calls on one connection, and a reconnect after the client closes it", async () => {
    const server = await startServerProcess();
    try {
      const gw = new GatewayClient(server.address);
      const req = { method: "GET", url: "/get", headers: {} };
      const replies = await Promise.all(
        Array.from({ length: 500 }, (_, i) => gw.dispatch(requestObject(HookType.Pre, `hook${i % 7}`, { ...req, url: `/get?i=${i}` }))),
      );
      replies.forEach((r, i) => assert.equal(r.request?.url, `/get?i=${i}`, "each reply answers its own call"));
      gw.close();
      const again = new GatewayClient(server.address);
      assert.equal((await again.dispatch(requestObject(HookType.Pre, "x", req))).request?.url, "/get");
      again.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
