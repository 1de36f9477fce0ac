import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { describe, it } from "node:test";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { EchoRequestSchema as EchoRequest, EchoRequestSchema } from "../../gen/echo_pb.js";
import { CreateUserRequestSchema } from "../../gen/users_types_pb.js";
import { requestObject } from "../../src/testing/gateway-model.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { CONTINUATION, clientPreface, DATA, frame, frameHead, GOAWAY, HEADERS, headerBlock, parseFrames, SETTINGS } from "../helpers/h2-frames.js";
import { splitAddress } from "../helpers/raw-http1.js";
import { grpcStatusOf, rawGrpcCallOn } from "../helpers/raw-http2.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// Clients that make the server hold memory or work for them: what they can
// make it hold is bounded, and it stops working for a client that left.
// Memory is read from the server's /proc status (its peak RSS, VmHWM)
// against the same figure before, with generous margins.

const mib = 2 ** 20;

/** The server's peak RSS so far (VmHWM) and its RSS now, in bytes. */
function rssOf(server: ServerProcess): { peak: number; now: number } {
  const status = readFileSync(`/proc/${server.child.pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024;
  return { peak: kib("VmHWM"), now: kib("VmRSS") };
}

/** CPU time (user + system) the server has used so far, in ms. */
function cpuMsOf(server: ServerProcess): number {
  const fields = readFileSync(`/proc/${server.child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 1/100 s
}

const echoCall = grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "still here" })));

/** `n` users with long names, created over one connection, `parallel` calls at a time. */
async function seedUsers(server: ServerProcess, n: number, parallel = 200): Promise<void> {
  const session = http2.connect(server.baseUrl);
  try {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        const username = `user-${String(i).padStart(8, "0")}-${"u".repeat(110)}`;
        const res = await rawGrpcCallOn(
          session,
          "/Users/CreateUser",
          grpcFrame(toBinary(CreateUserRequestSchema, create(CreateUserRequestSchema, { username }))),
        );
        assert.equal(grpcStatusOf(res), "0");
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally {
    session.close();
  }
}

/** GET /users read to the end by a client that reads: the status and the number of lines. */
async function listUsers(server: ServerProcess): Promise<{ status: number; lines: number }> {
  const res = await fetch(`${server.httpBaseUrl}/users`);
  const text = await res.text();
  return { status: res.status, lines: text.split("\n").filter((l) => l !== "").length };
}

describe("GET /users with clients that do not read", () => {
  it("streams at each client's pace, takes turns with other calls, caps listings at 8, and stops for clients that left", async (t) => {
    const server = await startServerProcess(["--log-level", "info", "--http-listen", "127.0.0.1:0", "--users-store", "memory"]);
    try {
      const users = 30_000; // about 5 MB of NDJSON per listing: more than a stalled socket takes
      await seedUsers(server, users);
      // The control: how long one listing takes for a client that reads.
      const listStarted = performance.now();
      assert.deepEqual(await listUsers(server), { status: 200, lines: users });
      const listMs = performance.now() - listStarted;
      const before = rssOf(server);
      const [host, port] = splitAddress(server.httpBaseUrl!.slice("http://".length));
      // Clients that send the request and never read a byte of the answer.
      const sockets = await Promise.all(
        Array.from(
          { length: 12 },
          () =>
            new Promise<net.Socket>((resolve) => {
              const socket = net.connect(port, host, () => {
                socket.pause();
                socket.write("GET /users HTTP/1.1\r\nHost: x\r\n\r\n");
                resolve(socket);
              });
              socket.on("error", () => undefined);
            }),
        ),
      );
      // Meanwhile gRPC calls are answered: the listings take turns with them.
      const session = http2.connect(server.baseUrl);
      let slowestEcho = 0;
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        assert.equal(grpcStatusOf(await rawGrpcCallOn(session, "/echo.Echo/Reply", echoCall)), "0");
        slowestEcho = Math.max(slowestEcho, performance.now() - started);
        await new Promise((r) => setTimeout(r, 200));
      }
      session.close();
      // Eight listings run (stalled); a ninth is refused.
      assert.equal((await fetch(`${server.httpBaseUrl}/users`)).status, 503);
      await server.waitForLog((l) => l.msg === "GET /users refused: too many listings at once");
      const during = rssOf(server);
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => setTimeout(r, 1000));
      const cpuAfterLeaving = cpuMsOf(server);
      await new Promise((r) => setTimeout(r, 2000));
      const leftCpuMs = cpuMsOf(server) - cpuAfterLeaving;
      const grown = (during.peak - before.peak) / mib;
      t.diagnostic(
        `one listing of ${users} users: ${listMs.toFixed(0)} ms; with 12 stalled listings: peak RSS ${(before.peak / mib).toFixed(0)} -> ${(during.peak / mib).toFixed(0)} MiB, ` +
          `slowest Echo ${slowestEcho.toFixed(0)} ms; CPU ${leftCpuMs} ms in the 2 s after the clients left`,
      );
      // Before: every line of every listing was queued at once, each message
      // of a stream stayed reachable until it ended (0.5 KB a message), a
      // listing ran to its end without giving other calls a turn, and there
      // was no cap.
      assert.ok(grown < 100, `peak RSS grew by ${grown.toFixed(0)} MiB`);
      assert.ok(slowestEcho < listMs, `an Echo took ${slowestEcho.toFixed(0)} ms, longer than a whole listing (${listMs.toFixed(0)} ms)`);
      assert.ok(leftCpuMs < 300, `${leftCpuMs} ms of CPU in 2 s after the clients left`);
      // Their listings are gone: a new one is served in full.
      assert.deepEqual(await listUsers(server), { status: 200, lines: users });
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

/** A connection that sends the start of a request, then one more byte every `everyMs`; resolves with it once connected. */
function trickle(address: string, everyMs: number): Promise<net.Socket & { closedAt?: number; received: string }> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect(port, host) as net.Socket & { closedAt?: number; received: string };
    socket.received = "";
    socket.on("error", () => undefined);
    socket.on("data", (d: Buffer) => (socket.received += d.toString("latin1")));
    socket.on("close", () => {
      socket.closedAt = performance.now();
      clearInterval(timer);
    });
    const timer = setInterval(() => socket.writable && socket.write("x"), everyMs);
    socket.on("connect", () => {
      socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
      resolve(socket);
    });
  });
}

describe("slow and idle HTTP/1.1 connections", () => {
  it("header timeout on every HTTP/1.1 path; a connection cap that closes the oldest unserved connection; health keeps answering", async (t) => {
    const server = await startServerProcess(["--log-level", "info", "--http-listen", "127.0.0.1:0", "--headers-timeout", "2s", "--max-connections", "50"]);
    const sockets: Array<net.Socket & { closedAt?: number; received: string }> = [];
    try {
      const httpAddress = server.httpBaseUrl!.slice("http://".length);
      // One on the h2c port (HTTP/1.1 there too), the rest on --http-listen, beyond the cap.
      const onRpcPort = await trickle(server.address, 500);
      sockets.push(onRpcPort);
      for (let i = 0; i < 120; i++) {
        sockets.push(await trickle(httpAddress, 500));
      }
      await server.waitForLog((l) => l.msg === "connection limit reached: closing the oldest connection that has completed no request");
      // Health answers while the flood holds every slot, and gRPC connections are served.
      const flooding = setInterval(() => void trickle(httpAddress, 500).then((s) => sockets.push(s)), 20);
      try {
        for (let i = 0; i < 5; i++) {
          const res = await fetch(`${server.httpBaseUrl}/healthz`);
          assert.equal(res.status, 200);
          await res.text();
        }
        const session = http2.connect(server.baseUrl);
        assert.equal(grpcStatusOf(await rawGrpcCallOn(session, "/echo.Echo/Reply", echoCall)), "0");
        session.close();
      } finally {
        clearInterval(flooding);
      }
      // Every trickling connection is closed: the oldest by the cap, the rest by the header timeout.
      const started = performance.now();
      while (sockets.some((s) => s.closedAt === undefined) && performance.now() - started < 20_000) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const open = sockets.filter((s) => s.closedAt === undefined).length;
      t.diagnostic(
        `${sockets.length} trickling connections; ${open} still open ${((performance.now() - started) / 1000).toFixed(1)} s after the flood stopped`,
      );
      assert.equal(open, 0, "every trickling connection closed");
      assert.match(onRpcPort.received, /^HTTP\/1\.1 408/, "the h2c port's HTTP/1.1 has the header timeout too");
      assert.ok(sockets.some((s) => /^HTTP\/1\.1 408/.test(s.received)));
      await server.waitForLog((l) => l.msg === "bad HTTP/1.1 request" && l.code === "ERR_HTTP_REQUEST_TIMEOUT");
    } finally {
      sockets.forEach((s) => s.destroy());
      assert.equal(await server.stop(), 0);
    }
  });
});

/** A raw HTTP/2 connection that records what the server sends and when it closes. */
async function rawConnection(address: string): Promise<{ socket: net.Socket; received: () => Buffer; closed: () => boolean }> {
  const [host, port] = splitAddress(address);
  const socket = net.connect(port, host);
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on("data", (d: Buffer) => chunks.push(d));
  socket.on("error", () => undefined);
  socket.on("close", () => (closed = true));
  await new Promise((r) => socket.once("connect", r));
  socket.write(Buffer.concat([clientPreface, frame(SETTINGS, 0, 0, Buffer.alloc(0))]));
  return { socket, received: () => Buffer.concat(chunks), closed: () => closed };
}

const goawayCode = (bytes: Buffer) => {
  const goaway = parseFrames(bytes).find((f) => f.type === GOAWAY);
  return goaway === undefined ? undefined : goaway.payload.readUInt32BE(4);
};

describe("HTTP/2 frames that never end", () => {
  it("a CONTINUATION flood after a request with an empty :authority (the rewriting path) ends in a GOAWAY and a log line, memory flat", async (t) => {
    const server = await startServerProcess(["--log-level", "info"]);
    try {
      const before = rssOf(server);
      const conn = await rawConnection(server.address);
      // grpc-go's empty :authority: this connection goes through the rewriting wrapper.
      conn.socket.write(frame(HEADERS, 0, 1, headerBlock("")));
      const continuation = frame(CONTINUATION, 0, 1, Buffer.alloc(16_000, 0x40));
      let sent = 0;
      // At most 300 MB, which is what the server held before: it stops reading long before.
      while (!conn.closed() && sent < 300 * mib) {
        sent += continuation.length;
        if (!conn.socket.write(continuation)) {
          await Promise.race([new Promise((r) => conn.socket.once("drain", r)), new Promise((r) => setTimeout(r, 2000))]);
        }
      }
      await new Promise((r) => setTimeout(r, 500));
      const grown = (rssOf(server).peak - before.peak) / mib;
      t.diagnostic(
        `sent ${(sent / mib).toFixed(1)} MiB before the server closed; GOAWAY code ${goawayCode(conn.received())}; peak RSS +${grown.toFixed(0)} MiB`,
      );
      assert.ok(conn.closed() || goawayCode(conn.received()) !== undefined, "the server ended the connection");
      assert.ok(sent < 10 * mib, `the server read ${(sent / mib).toFixed(0)} MiB of one header block`);
      assert.ok(grown < 50, `peak RSS grew by ${grown.toFixed(0)} MiB`);
      await server.waitForLog((l) => l.msg === "http2 session error" && /CONTINUATION/.test(JSON.stringify(l.err)));
      conn.socket.destroy();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("frames declared 16 MiB, trickled on 50 connections (before and after the first request), are refused at once: FRAME_SIZE_ERROR, memory flat", async (t) => {
    const server = await startServerProcess(["--log-level", "info"]);
    try {
      const before = rssOf(server);
      const cpuBefore = cpuMsOf(server);
      const conns = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const conn = await rawConnection(server.address);
          if (i % 2 === 0) {
            // The first request first (empty :authority: the rewriting path), then the lie.
            conn.socket.write(Buffer.concat([frame(HEADERS, 0x4, 1, headerBlock("")), frameHead(DATA, 0, 1, 16 * mib - 1)]));
          } else {
            conn.socket.write(frameHead(HEADERS, 0x4, 1, 16 * mib - 1)); // while the server looks at the first request
          }
          return conn;
        }),
      );
      // A kilobyte every 20 ms on each, for 3 s (or until closed).
      const chunk = Buffer.alloc(1024, 0x61);
      for (let i = 0; i < 150 && conns.some((c) => !c.closed()); i++) {
        conns.forEach((c) => c.closed() || c.socket.write(chunk));
        await new Promise((r) => setTimeout(r, 20));
      }
      const grown = (rssOf(server).peak - before.peak) / mib;
      const cpuMs = cpuMsOf(server) - cpuBefore;
      const refused = conns.filter((c) => c.closed() || goawayCode(c.received()) === 6).length;
      t.diagnostic(`${refused} of 50 connections refused with FRAME_SIZE_ERROR or closed; peak RSS +${grown.toFixed(0)} MiB; ${cpuMs} ms CPU`);
      assert.equal(refused, 50);
      assert.ok(grown < 50, `peak RSS grew by ${grown.toFixed(0)} MiB`);
      conns.forEach((c) => c.socket.destroy());
      // And the server serves.
      const session = http2.connect(server.baseUrl);
      assert.equal(grpcStatusOf(await rawGrpcCallOn(session, "/echo.Echo/Reply", echoCall)), "0");
      session.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

/**
 * Sends `count` requests on one connection whose client never reads: its
 * streams' flow-control window is 1 KiB, so the server can send a refusal
 * but only the first KiB of a reply. (With a window of 0 not even a
 * refusal's trailers go out: node sends them after an empty DATA frame.) Resolves with the answers' statuses
 * (gRPC status, or HTTP status without one) once every call has its headers
 * or `waitMs` passed.
 */
async function neverReading(
  baseUrl: string,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
  count: number,
  waitMs = 30_000,
): Promise<{ statuses: string[]; session: http2.ClientHttp2Session }> {
  const session = http2.connect(baseUrl, { settings: { initialWindowSize: 1024 } });
  session.on("error", () => undefined);
  const statuses = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<string>((resolve) => {
          const req = session.request({ ":method": "POST", te: "trailers", ...headers });
          const timer = setTimeout(() => resolve("no answer"), waitMs);
          req.on("response", (h) => {
            clearTimeout(timer);
            if (h["grpc-status"] !== undefined || !/^application\/grpc(\+proto)?$/.test(String(h["content-type"]))) {
              return resolve(String(h["grpc-status"] ?? `http ${h[":status"]}`));
            }
            // gRPC: the status comes in trailers, which flow control does not hold back; a
            // reply that cannot be sent keeps them waiting.
            const wait = setTimeout(() => resolve("reply waiting"), 3000);
            req.on("trailers", (tr) => {
              clearTimeout(wait);
              resolve(String(tr["grpc-status"]));
            });
          });
          req.on("error", () => resolve("error"));
          req.end(body);
        }),
    ),
  );
  return { statuses, session };
}

describe("compression amplification and replies nobody reads", () => {
  it("a default server stays under ~1 GiB: gzip/brotli bombs on both paths from clients that never read get RESOURCE_EXHAUSTED past the budget", async (t) => {
    const server = await startServerProcess(["--log-level", "info"], { memoryProbe: true, nodeArgs: ["--expose-gc"] });
    try {
      await server.memory();
      const before = await server.memory();
      const mib63 = Buffer.from(toBinary(EchoRequest, create(EchoRequest, { message: "a".repeat(63 * mib) })));
      const br = brotliCompressSync(mib63);
      // Tyk's Object with an 8 MiB body (sent twice: 16 MiB), gzipped to about 16 KB.
      const object = Buffer.from(
        toBinary(ObjectSchema, requestObject(HookType.Pre, "h", { method: "POST", url: "/upload", headers: {}, body: "x".repeat(8 * mib) })),
      );
      const attacks = await Promise.all([
        neverReading(server.baseUrl, { ":path": "/echo.Echo/Reply", "content-type": "application/grpc", "grpc-encoding": "br" }, grpcFrame(br, 1), 20),
        neverReading(
          server.baseUrl,
          { ":path": "/coprocess.Dispatcher/Dispatch", "content-type": "application/grpc", "grpc-encoding": "gzip" },
          grpcFrame(gzipSync(object), 1),
          30,
        ),
        // connect's path: the Connect protocol and gRPC-Web.
        neverReading(server.baseUrl, { ":path": "/echo.Echo/Reply", "content-type": "application/proto", "content-encoding": "br" }, br, 10),
        neverReading(server.baseUrl, { ":path": "/echo.Echo/Reply", "content-type": "application/grpc-web", "grpc-encoding": "br" }, grpcFrame(br, 1), 10),
      ]);
      const peak = rssOf(server).peak;
      const counts = attacks.map((a) => Object.fromEntries([...new Set(a.statuses)].map((s) => [s, a.statuses.filter((t) => t === s).length])));
      t.diagnostic(`peak RSS ${(peak / mib).toFixed(0)} MiB; answers ${JSON.stringify(counts)}`);
      // Some are served (their replies wait for the client), the rest refused;
      // gRPC-Web's status is in the body the client does not read.
      for (const [i, a] of attacks.slice(0, 3).entries()) {
        assert.ok(
          a.statuses.every((s) => ["0", "reply waiting", "8", "http 200", "http 429"].includes(s)),
          `attack ${i}: ${JSON.stringify(counts[i])}`,
        );
        assert.ok(
          a.statuses.some((s) => s === "8" || s === "http 429"),
          `attack ${i} is refused past the budget: ${JSON.stringify(counts[i])}`,
        );
      }
      // Before: 6 GB for 80 of the brotli requests alone. After: 1.0-1.25 GiB
      // across runs (the budget bounds what is held; RSS adds what the
      // allocator and GC have not given back yet), so the bound is 1.5 GiB.
      assert.ok(peak < 1.5 * 1024 * mib, `peak RSS ${(peak / mib).toFixed(0)} MiB`);
      await server.waitForLog((l) => l.msg === "rpc refused" && /server memory budget/.test(String(l.message)));
      // Once the clients leave, what they made the server hold is freed, and calls are served.
      attacks.forEach((a) => a.session.destroy());
      await new Promise((r) => setTimeout(r, 1000));
      const session = http2.connect(server.baseUrl);
      assert.equal(grpcStatusOf(await rawGrpcCallOn(session, "/echo.Echo/Reply", echoCall)), "0");
      session.close();
      await server.memory(); // (a second full GC frees what the first left to weak callbacks)
      const after = await server.memory();
      t.diagnostic(
        `heap used after a full GC: ${(before.heapUsed / mib).toFixed(1)} MiB before, ${(after.heapUsed / mib).toFixed(1)} after; external ${(after.external / mib).toFixed(1)} MiB`,
      );
      assert.ok(after.heapUsed + after.external - before.heapUsed - before.external < 32 * mib, "freed once the clients left");
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
