import * as http2 from "node:http2";
import { equals, fromBinary } from "@bufbuild/protobuf";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import type { FuzzCase } from "./cases.js";

/** What a fuzz run saw. */
export interface FuzzReport {
  readonly calls: number;
  /** Calls per gRPC status code ("none" for answers without one). */
  readonly byStatus: Record<string, number>;
  /** Calls per case kind. */
  readonly byKind: Record<string, number>;
  /** Answers that broke the rules: no gRPC status, a valid call not served, or a wrong echo. */
  readonly failures: Array<{ index: number; kind: string; problem: string }>;
}

interface Answer {
  status: string | undefined;
  body: Buffer;
  rstCode: number | undefined;
}

/**
 * Sends every case as a unary Dispatch call over `connections` HTTP/2
 * connections, `concurrency` calls in flight at a time, and checks each
 * answer: every call gets a gRPC status; a valid call gets OK and its
 * Object back.
 */
export async function driveFuzz(baseUrl: string, cases: Iterable<FuzzCase>, options: { connections: number; concurrency: number }): Promise<FuzzReport> {
  const sessions = Array.from({ length: options.connections }, () => {
    const s = http2.connect(baseUrl);
    s.on("error", () => undefined); // shows up as failed calls
    return s;
  });
  const byStatus: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  const failures: FuzzReport["failures"] = [];
  const iterator = cases[Symbol.iterator]();
  let index = 0;
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      const i = index++;
      const c = next.value;
      byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
      let answer: Answer;
      try {
        answer = await call(sessions[i % sessions.length]!, c);
      } catch (e) {
        failures.push({ index: i, kind: c.kind, problem: `call failed: ${(e as Error).message}` });
        continue;
      }
      const status = answer.status ?? "none";
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      const problem = check(c, answer);
      if (problem !== undefined) {
        failures.push({ index: i, kind: c.kind, problem });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    sessions.forEach((s) => s.close());
  }
  return { calls: index, byStatus, byKind, failures };
}

function check(c: FuzzCase, answer: Answer): string | undefined {
  if (answer.status === undefined) {
    return `no grpc-status (RST_STREAM code ${answer.rstCode})`;
  }
  if (c.echo === undefined) {
    return undefined; // any status is a fine answer to a broken request
  }
  if (answer.status !== "0") {
    return `valid call got status ${answer.status}`;
  }
  try {
    const length = answer.body.readUInt32BE(1);
    const echoed = fromBinary(ObjectSchema, answer.body.subarray(5, 5 + length));
    return equals(ObjectSchema, echoed, c.echo) ? undefined : "echoed Object differs";
  } catch (e) {
    return `reply does not decode: ${(e as Error).message}`;
  }
}

function call(session: http2.ClientHttp2Session, c: FuzzCase): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": "/coprocess.Dispatcher/Dispatch",
      "content-type": "application/grpc",
      te: "trailers",
      ...c.headers,
    });
    let status: string | undefined;
    const chunks: Buffer[] = [];
    req.on("response", (h) => (status = h["grpc-status"] as string | undefined));
    req.on("trailers", (t) => (status = (t["grpc-status"] as string | undefined) ?? status));
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("error", () => undefined); // a reset shows in rstCode below
    req.on("close", () => {
      if (session.destroyed && status === undefined) {
        reject(new Error("connection lost"));
      } else {
        resolve({ status, body: Buffer.concat(chunks), rstCode: req.rstCode });
      }
    });
    req.end(c.body);
  });
}
