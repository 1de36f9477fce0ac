import { AsyncLocalStorage } from "node:async_hooks";
import { performance } from "node:perf_hooks";
import { fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { HookType } from "../../../gen/coprocess_common_pb.js";
import { type Object$, type ObjectJson, ObjectSchema } from "../../../gen/coprocess_object_pb.js";
import type { LogTap } from "../../observability/log-tap.js";
import type { Logger } from "../../observability/logger.js";
import type { HookMetricOutcome } from "../../observability/metrics.js";
import { currentTrace } from "../../observability/trace-context.js";
import { receivedBytesToReply, wireBytesOf } from "../../rpc/wire-bytes.js";
import type { DispatchObserver, HookReport } from "../../tyk/dispatch-observer.js";
import { maskUrl } from "../../tyk/mask.js";
import { deferredObjectMark } from "../../tyk/object-log.js";
import { isPromiseLike, type MaybePromise } from "../../util/maybe-promise.js";
import { type CallContents, type CallDetail, type CallSummary, callContents } from "./recorded-call.js";
import { type ReplayTarget, replayCommands } from "./replay-commands.js";

/** Someone with the page open: gets the summaries of calls as they end, a batch at a time. */
export interface CallViewer {
  /** `skipped`: calls that ended since the last batch and are not in this one (more than a batch holds). */
  send(calls: readonly CallSummary[], skipped: number): void;
}

/** How much the recorder keeps. */
export interface CallRecorderOptions {
  /** The last this many calls are kept. */
  readonly capacity: number;
  /** Keep credentials as they came (--log-secrets); masked otherwise, as in the log. */
  readonly logSecrets: boolean;
  readonly logger: Logger;
  /** Where the log lines of recorded calls are read from; without it calls have no log lines. */
  readonly logTap?: LogTap;
  /** Upper bound of everything kept (Objects' bytes, JSON text, log lines), in bytes; the oldest calls go first. */
  readonly maxBytes?: number;
}

// A call's log lines: at most this many, each cut to this length.
const maxLinesPerCall = 100;
const maxLineChars = 4096;
// Summaries are sent to viewers this often, together: a page cannot draw 20k rows a second one by one.
const batchMs = 100;

// Objects up to this size are kept as their bytes while the call ends, and
// shown (decoded, compared, masked) only when someone opens the call; larger
// ones are cut for display at once, so that what is kept stays small.
const maxKeptBytes = 64 * 1024;

// One recorded call. A small Object is kept as its bytes, and so is its
// reply (encoded: the message itself would hold on to the chunk the
// request came in); a large one as its CallDetail's JSON text, cut.
class Recording {
  id = 0;
  summary!: CallSummary;
  /** The received Object's protobuf bytes (small Objects). */
  bytes: Uint8Array | undefined;
  /** The reply's bytes; undefined when the call failed or the reply was the Object received. */
  reply: Uint8Array | undefined;
  /** The CallDetail as JSON text (large Objects: cut at once). */
  detail: string | undefined;
  /** The Object received as JSON, while a large Object's call runs. */
  receivedJson: ObjectJson | undefined;
  readonly logs: string[] = [];
  logsDropped = 0;
  /** What it holds, in bytes (about). */
  size = 0;
  plugin: string | null = null;
  outcome: HookMetricOutcome | undefined;

  constructor(
    readonly started: number,
    readonly time: number,
    readonly traceId: string | null,
  ) {}
}

/**
 * The call inspector's memory: while a viewer is connected (only then:
 * `watching`), it records each Dispatch call whole (the Object as received,
 * the reply, what changed, the log lines written while it ran or carrying
 * its trace id) and keeps the last `capacity` of them, within `maxBytes`.
 * Recording never fails a call: a recording that fails is dropped and logged.
 */
export class CallRecorder implements DispatchObserver {
  readonly #options: Required<Omit<CallRecorderOptions, "logTap">> & { logTap: LogTap | undefined };
  readonly #kept: Recording[] = [];
  readonly #byTrace = new Map<string, Recording>();
  readonly #scope = new AsyncLocalStorage<Recording>();
  readonly #viewers = new Set<CallViewer>();
  #pending: CallSummary[] = [];
  #skipped = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #bytes = 0;
  #nextId = 1;
  #failureLogged = false;
  #target: ReplayTarget = { plaintext: [], tls: [] };

  constructor(options: CallRecorderOptions) {
    this.#options = { maxBytes: 64 * 1024 * 1024, ...options, logTap: options.logTap };
  }

  /** True while at least one viewer is connected. */
  get watching(): boolean {
    return this.#viewers.size > 0;
  }

  /** Where replay commands send calls (the server's gRPC listeners, known once it listens). */
  set target(target: ReplayTarget) {
    this.#target = target;
  }

  /** The kept calls, oldest first. */
  calls(): CallSummary[] {
    return this.#kept.map((r) => r.summary);
  }

  /** How many calls are kept at most. */
  get capacity(): number {
    return this.#options.capacity;
  }

  /** Whether credentials are shown masked. */
  get masked(): boolean {
    return !this.#options.logSecrets;
  }

  /** A kept call as JSON text: its CallDetail (`call`), log lines (`logs`) and replay commands (`replay`); undefined once it has left. */
  detail(id: number): string | undefined {
    const r = this.#kept.find((k) => k.id === id);
    if (r === undefined) return undefined;
    let text: string;
    let shown: Pick<CallContents, "received" | "cut">;
    if (r.detail !== undefined) {
      text = r.detail;
      shown = JSON.parse(text) as CallDetail;
    } else {
      // (Bytes this recorder encoded or the fast path decoded: they decode again.)
      const reply = r.summary.error !== null ? undefined : toJson(ObjectSchema, fromBinary(ObjectSchema, r.reply ?? r.bytes!));
      const contents = this.#contents(toJson(ObjectSchema, fromBinary(ObjectSchema, r.bytes!)), reply);
      text = JSON.stringify({ ...r.summary, ...contents } satisfies CallDetail);
      shown = contents;
    }
    const replay = replayCommands(
      shown.received,
      this.#target,
      shown.cut.some((c) => c.side === "received"),
    );
    return `{"call":${text},"logs":[${r.logs.join(",")}],"logsDropped":${r.logsDropped},"replay":${JSON.stringify(replay)}}`;
  }

  /** Forgets every kept call. */
  clear(): void {
    this.#kept.length = 0;
    this.#byTrace.clear();
    this.#bytes = 0;
  }

  /** Adds a viewer; returns what removes it. The first viewer turns recording (and reading the log) on, the last one off. */
  subscribe(viewer: CallViewer): () => void {
    this.#viewers.add(viewer);
    if (this.#viewers.size === 1) this.#options.logTap?.read((line) => this.#logLine(line));
    return () => {
      this.#viewers.delete(viewer);
      if (this.#viewers.size === 0) this.#options.logTap?.read(undefined);
    };
  }

  observe(object: Object$, dispatch: (report: HookReport) => MaybePromise<Object$>): MaybePromise<Object$> {
    let r: Recording;
    try {
      r = new Recording(performance.now(), Date.now(), currentTrace()?.traceId ?? null);
      // The fast path kept the bytes the Object came in (copied: they may share a larger chunk).
      const bytes = wireBytesOf(object)?.slice() ?? toBinary(ObjectSchema, object);
      if (bytes.length <= maxKeptBytes) r.bytes = bytes;
      else r.receivedJson = toJson(ObjectSchema, object);
    } catch (e) {
      this.#failed(e);
      return dispatch(() => undefined);
    }
    const report: HookReport = (plugin, outcome) => {
      r.plugin = plugin ?? null;
      r.outcome = outcome;
    };
    let result: MaybePromise<Object$>;
    try {
      result = this.#scope.run(r, dispatch, report);
    } catch (e) {
      this.#end(r, object, undefined, e);
      throw e;
    }
    if (!isPromiseLike(result)) {
      this.#end(r, object, result, undefined);
      return result;
    }
    return result.then(
      (reply) => {
        this.#end(r, object, reply, undefined);
        return reply;
      },
      (e: unknown) => {
        this.#end(r, object, undefined, e);
        throw e;
      },
    );
  }

  #end(r: Recording, object: Object$, reply: Object$ | undefined, error: unknown): void {
    try {
      const ms = performance.now() - r.started;
      const err = error === undefined ? undefined : ConnectError.from(error);
      // A reply sent as the bytes received is the Object received, whatever a
      // hook that failed open had half-changed in it.
      const sent = reply === undefined || receivedBytesToReply(reply) !== undefined ? undefined : reply;
      r.id = this.#nextId++;
      r.summary = {
        id: r.id,
        time: new Date(r.time).toISOString(),
        apiId: object.spec.APIID ?? "",
        hookType: HookType[object.hookType] ?? String(object.hookType),
        hookName: object.hookName,
        plugin: r.plugin,
        outcome: r.outcome ?? "error",
        ms: Math.round(ms * 1000) / 1000,
        method: object.request?.method ?? "",
        url: (this.#options.logSecrets ? object.request?.url : maskUrl(object.request?.url)) ?? "",
        status: statusOf(reply),
        error: err === undefined ? null : `${Code[err.code]}: ${err.rawMessage}`,
        traceId: r.traceId,
      };
      if (r.bytes !== undefined) {
        r.reply = sent === undefined ? undefined : toBinary(ObjectSchema, sent);
        r.size = r.bytes.length + (r.reply?.length ?? 0);
      } else {
        const received = r.receivedJson!;
        r.receivedJson = undefined;
        const replyJson = reply === undefined ? undefined : sent === undefined ? structuredClone(received) : toJson(ObjectSchema, sent);
        r.detail = JSON.stringify({ ...r.summary, ...this.#contents(received, replyJson) } satisfies CallDetail);
        r.size = r.detail.length;
      }
      this.#keep(r);
    } catch (e) {
      this.#failed(e);
    }
  }

  // What the Objects' JSON shows (fresh documents: masked in place).
  #contents(received: ObjectJson, reply: ObjectJson | undefined): CallContents {
    return callContents(received, reply ?? null, this.#options.logSecrets);
  }

  #keep(r: Recording): void {
    this.#kept.push(r);
    this.#bytes += r.size;
    if (r.traceId !== null) this.#byTrace.set(r.traceId, r);
    while (this.#kept.length > this.#options.capacity || (this.#bytes > this.#options.maxBytes && this.#kept.length > 1)) {
      const old = this.#kept.shift()!;
      this.#bytes -= old.size;
      if (old.traceId !== null && this.#byTrace.get(old.traceId) === old) this.#byTrace.delete(old.traceId);
    }
    this.#pending.push(r.summary);
    // A batch holds what a page keeps at most; the page is told how many more there were.
    if (this.#pending.length > this.#options.capacity) {
      this.#pending.shift();
      this.#skipped++;
    }
    this.#flushTimer ??= setTimeout(() => this.#flush(), batchMs).unref();
  }

  #flush(): void {
    this.#flushTimer = undefined;
    const batch = this.#pending;
    const skipped = this.#skipped;
    this.#pending = [];
    this.#skipped = 0;
    for (const viewer of this.#viewers) viewer.send(batch, skipped);
  }

  // A log line written while a recorded call ran (in its async context), or one with its trace id.
  #logLine(line: string): void {
    let r = this.#scope.getStore();
    if (r === undefined && this.#byTrace.size > 0) {
      const at = line.indexOf('"traceId":"');
      if (at >= 0) r = this.#byTrace.get(line.slice(at + 11, at + 43));
    }
    if (r === undefined) return;
    if (r.logs.length >= maxLinesPerCall) {
      r.logsDropped++;
      return;
    }
    const text = shownLine(line);
    r.logs.push(text);
    r.size += text.length;
    // A line that comes after the call was kept counts against the budget too.
    if (r.id !== 0) this.#bytes += text.length;
  }

  #failed(e: unknown): void {
    if (this.#failureLogged) return;
    this.#failureLogged = true;
    this.#options.logger.warn({ err: e }, "the inspector could not record a call: the call went on (logged once)");
  }
}

// The status the gateway answers with because of this reply: an early answer's, or a Response hook's.
function statusOf(reply: Object$ | undefined): number | null {
  const early = reply?.request?.returnOverrides?.responseCode;
  if (early !== undefined && early > 0) return early;
  return reply?.response?.statusCode || null;
}

// A log line as the page shows it: valid JSON (a deferred Object's marked
// bytes are not: the page shows the Object anyway), at most maxLineChars.
function shownLine(line: string): string {
  let text = line.trimEnd();
  if (text.includes(deferredObjectMark)) {
    text = text.replace(new RegExp(`${deferredObjectMark}[mu][^${deferredObjectMark}]*${deferredObjectMark}`, "g"), '"object":"(the Object: see Received)"');
  }
  if (text.length > maxLineChars) {
    return JSON.stringify({ msg: `${text.slice(0, maxLineChars)}…`, cut: text.length });
  }
  return text;
}
