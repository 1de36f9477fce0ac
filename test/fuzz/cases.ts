import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { clone, create, fromJson, toBinary } from "@bufbuild/protobuf";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { repoPath } from "../helpers/paths.js";

/** One fuzzed Dispatch request: headers beyond the gRPC basics, and the raw body. */
export interface FuzzCase {
  readonly kind: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** Set when the request is valid: the Object the server must echo back (echo-log returns it unchanged). */
  readonly echo?: Object$;
}

/** mulberry32: a small seeded PRNG, so a failing seed can be replayed exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The Pre-hook Object every case starts from (test/fixtures/bench-pre-object.json). */
export function baseObject(): Object$ {
  return fromJson(ObjectSchema, JSON.parse(readFileSync(repoPath("test", "fixtures", "bench-pre-object.json"), "utf8")));
}

// Strings that are valid UTF-8 but unusual: combining marks, RTL, emoji, NUL, BOM.
const oddStrings = ["", "é́́", "שלום عربى", "🦄🏳️‍🌈", "a\u0000b", "\ufeffbom", "\u2028\u2029", "%00%ff", "../../etc/passwd", "x".repeat(300)];

/**
 * Yields `count` requests, one in four of them valid (the base Object, or a
 * valid but odd one), the rest mutated in one of a dozen ways. The same
 * seed yields the same requests.
 */
export function* fuzzCases(seed: number, count: number): Generator<FuzzCase> {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]) => items[int(items.length)]!;
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const base = baseObject();
  const baseBytes = toBinary(ObjectSchema, base);
  const valid = (kind: string, object: Object$, extra: Partial<FuzzCase> = {}): FuzzCase => ({
    kind,
    headers: {},
    body: grpcFrame(toBinary(ObjectSchema, object)),
    echo: object,
    ...extra,
  });

  const mutations: Array<() => FuzzCase> = [
    () => {
      const bytes = Buffer.from(baseBytes);
      for (let i = 1 + int(8); i > 0; i--) bytes[int(bytes.length)] ^= 1 << int(8);
      return { kind: "bit flips", headers: {}, body: grpcFrame(bytes) };
    },
    () => {
      const full = grpcFrame(baseBytes);
      return { kind: "truncated", headers: {}, body: full.subarray(0, int(full.length)) };
    },
    () => {
      const lie = Math.max(0, baseBytes.length + pick([-1, 1]) * (1 + int(100)));
      return { kind: "length prefix lies", headers: {}, body: grpcFrame(baseBytes, 0, lie) };
    },
    () => ({ kind: "huge declared length", headers: {}, body: grpcFrame(baseBytes, 0, 2 ** 24 + int(2 ** 32 - 2 ** 24)) }),
    () => ({ kind: "compressed flag without encoding", headers: {}, body: grpcFrame(baseBytes, 1) }),
    () => ({ kind: "unknown compression", headers: { "grpc-encoding": pick(["snappy", "zstd", "lz4", "x-custom"]) }, body: grpcFrame(gzipSync(baseBytes), 1) }),
    () => {
      const zipped = gzipSync(baseBytes);
      for (let i = 1 + int(4); i > 0; i--) zipped[int(zipped.length)] = int(256);
      return { kind: "corrupt gzip", headers: { "grpc-encoding": "gzip" }, body: grpcFrame(zipped, 1) };
    },
    () => ({ kind: "random bytes", headers: {}, body: randomBytes(int(2048)) }),
    () => ({ kind: "random message", headers: {}, body: grpcFrame(randomBytes(1 + int(1024))) }),
    () => ({ kind: "two messages", headers: {}, body: Buffer.concat([grpcFrame(baseBytes), grpcFrame(baseBytes)]) }),
    () => ({ kind: "trailing bytes", headers: {}, body: Buffer.concat([grpcFrame(baseBytes), randomBytes(1 + int(4))]) }),
    () => ({ kind: "empty body", headers: {}, body: Buffer.alloc(0) }),
  ];
  const oddities: Array<() => FuzzCase> = [
    () => valid("valid", base),
    () => valid("valid, gzip", base, { headers: { "grpc-encoding": "gzip" }, body: grpcFrame(gzipSync(baseBytes), 1) }),
    () => valid("empty Object", create(ObjectSchema)),
    () => {
      const o = clone(ObjectSchema, base);
      o.request!.headers = {};
      o.request!.params = {};
      o.spec = {};
      o.metadata = {};
      return valid("empty maps", o);
    },
    () => {
      const o = clone(ObjectSchema, base);
      for (let i = 0; i < 5; i++) o.request!.headers[pick(oddStrings) + i] = pick(oddStrings);
      o.request!.url = `/${pick(oddStrings)}`;
      o.hookName = pick(oddStrings);
      return valid("unicode", o);
    },
    () => {
      const o = clone(ObjectSchema, base);
      // Rare and large: up to 1 MiB, well under the 64 MiB message limit.
      o.request!.headers["X-Giant"] = "g".repeat(int(8) === 0 ? 256 * 1024 + int(768 * 1024) : 8 * 1024 + int(56 * 1024));
      return valid("giant header value", o);
    },
    () => {
      const o = clone(ObjectSchema, base);
      for (let i = 0; i < 1000; i++) o.request!.headers[`X-H${i}`] = String(i);
      return valid("1000 headers", o);
    },
    () => {
      // An unknown field (number 1000, varint): kept and echoed as protobuf-es does.
      const bytes = Buffer.concat([baseBytes, Buffer.from([0xc0, 0x3e, int(128)])]);
      return { kind: "unknown field", headers: {}, body: grpcFrame(bytes), echo: base };
    },
  ];

  for (let i = 0; i < count; i++) {
    yield i % 4 === 0 ? pick(oddities)() : pick(mutations)();
  }
}
