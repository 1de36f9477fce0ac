import * as http2 from "node:http2";

const serverPrefaceWaitMs = 2000;

/** How one call of a load run ended. */
export type CallOutcome =
  /** grpc-status 0 with a reply message. */
  | "ok"
  /** Answered with another status, or a broken reply. */
  | "failed"
  /** Never accepted: refused by GOAWAY or REFUSED_STREAM, before any answer. A client retries these. */
  | "refused"
  /** Accepted (answer begun, or stream within the GOAWAY's last id), then the connection died. */
  | "lost";

/** What a load run saw. */
export interface LoadReport {
  readonly calls: Record<CallOutcome, number>;
  /** New connections that could not be made (ECONNREFUSED and the like). */
  readonly refusedConnections: number;
  /** Connections accepted but never served: no server SETTINGS within 2 s (grpc-go waits 20 s for them). */
  readonly unservedConnections: number;
  /** grpc-status values of "failed" calls, and how many of each. */
  readonly failedStatuses: Record<string, number>;
  /** Lost calls per connection, and whether that connection was lost as a whole. */
  readonly lostOn: Array<{ connection: number; lost: number; connectionLost: boolean }>;
}

/** Settings of a load run. */
export interface LoadOptions {
  readonly baseUrl: string;
  readonly path: string;
  /** The framed request, sent on every call. */
  readonly body: Uint8Array;
  readonly connections: number;
  readonly streamsPerConnection: number;
}

/**
 * A closed-loop gRPC load of raw node:http2 calls (no gRPC library) that
 * classifies every call's end, for drain and crash tests: h2load cannot
 * read grpc-status. Connections that go away are replaced until stop().
 */
export class GrpcLoad {
  readonly #options: LoadOptions;
  readonly #calls: Record<CallOutcome, number> = { ok: 0, failed: 0, refused: 0, lost: 0 };
  readonly #failedStatuses: Record<string, number> = {};
  readonly #lostOn: LoadReport["lostOn"] = [];
  #refusedConnections = 0;
  #unservedConnections = 0;
  #stopping = false;
  #connectionCount = 0;
  readonly #slots: Promise<void>[] = [];

  constructor(options: LoadOptions) {
    this.#options = options;
  }

  /** Starts the load: every connection keeps its streams busy until stop(). */
  start(): void {
    for (let i = 0; i < this.#options.connections; i++) {
      this.#slots.push(this.#slot());
    }
  }

  /** The outcomes so far. */
  get calls(): Readonly<Record<CallOutcome, number>> {
    return this.#calls;
  }

  /** Stops starting calls, waits for the ones in flight, and reports. */
  async stop(): Promise<LoadReport> {
    this.#stopping = true;
    await Promise.all(this.#slots);
    return {
      calls: { ...this.#calls },
      refusedConnections: this.#refusedConnections,
      unservedConnections: this.#unservedConnections,
      failedStatuses: this.#failedStatuses,
      lostOn: this.#lostOn,
    };
  }

  // One connection at a time, replaced when it goes away.
  async #slot(): Promise<void> {
    while (!this.#stopping) {
      const id = this.#connectionCount++;
      const session = http2.connect(this.#options.baseUrl);
      let peerGone = false;
      let goawayLastId: number | undefined;
      const connected = await new Promise<boolean>((resolve) => {
        session.once("connect", () => resolve(true));
        session.once("error", () => resolve(false));
      });
      session.on("error", () => (peerGone = true));
      session.on("goaway", (_code: number, lastStreamId: number) => (goawayLastId = lastStreamId));
      session.once("close", () => (peerGone ||= goawayLastId === undefined));
      if (!connected) {
        this.#refusedConnections++;
        session.destroy();
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      // Like grpc-go, use a connection only once the server has spoken.
      const served = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), serverPrefaceWaitMs);
        session.once("remoteSettings", () => {
          clearTimeout(timer);
          resolve(true);
        });
        session.once("close", () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      if (!served) {
        if (!session.closed) this.#unservedConnections++;
        session.destroy();
        continue;
      }
      let lost = 0;
      const worker = async () => {
        while (!this.#stopping && !session.closed && !session.destroyed && goawayLastId === undefined) {
          const outcome = await this.#call(
            session,
            () => goawayLastId,
            () => peerGone,
          );
          this.#calls[outcome]++;
          if (outcome === "lost") lost++;
        }
      };
      await Promise.all(Array.from({ length: this.#options.streamsPerConnection }, worker));
      if (lost > 0) this.#lostOn.push({ connection: id, lost, connectionLost: peerGone });
      session.close();
    }
  }

  #call(session: http2.ClientHttp2Session, goawayLastId: () => number | undefined, peerGone: () => boolean): Promise<CallOutcome> {
    return new Promise((resolve) => {
      let req: http2.ClientHttp2Stream;
      try {
        req = session.request({ ":method": "POST", ":path": this.#options.path, "content-type": "application/grpc", te: "trailers" });
      } catch {
        resolve("refused"); // the session got its GOAWAY before this call began
        return;
      }
      let answered = false;
      let status: string | undefined;
      let bytes = 0;
      req.on("response", (h) => {
        answered = true;
        status = h["grpc-status"] as string | undefined;
      });
      req.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
      req.on("data", (d: Buffer) => (bytes += d.length));
      req.on("error", () => undefined); // classified on close
      req.on("close", () => {
        if (status !== undefined) {
          if (status === "0" && bytes > 5) {
            resolve("ok");
          } else {
            this.#failedStatuses[status] = (this.#failedStatuses[status] ?? 0) + 1;
            resolve("failed");
          }
          return;
        }
        const last = goawayLastId();
        const notAccepted = req.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || (last !== undefined && (req.id ?? Infinity) > last);
        if (!answered && notAccepted) {
          resolve("refused");
        } else if (peerGone() || session.destroyed) {
          resolve("lost");
        } else {
          this.#failedStatuses[`rst ${req.rstCode}`] = (this.#failedStatuses[`rst ${req.rstCode}`] ?? 0) + 1;
          resolve("failed");
        }
      });
      req.end(this.#options.body);
    });
  }
}
