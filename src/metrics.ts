import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { callEndInterceptor } from "./interceptors/call-end.js";

/** How a Tyk hook call ended, as counted: auth hooks' reject is "deny". */
export type HookMetricOutcome = "continue" | "reject" | "respond" | "allow" | "deny" | "error" | "no_plugin";

/** The server's Prometheus metrics. */
export interface ServerMetrics {
  readonly registry: Registry;
  /** Counts every call it sees (first in both paths' interceptor lists). */
  readonly interceptor: Interceptor;
  /** Counts one hook call; unknown hook names are counted under "" (caller-chosen names would grow without bound). */
  hookDone(hookType: string, hookName: string, outcome: HookMetricOutcome): void;
}

// Per method: the label values and pre-bound children, so a call does no label lookups.
interface MethodMetrics {
  readonly labels: readonly [service: string, method: string, type: string];
  readonly started: Counter.Internal;
  readonly inFlight: Gauge.Internal<string>;
  readonly seconds: Histogram.Internal<string>;
  readonly handled: Map<Code | 0, Counter.Internal>;
}

const grpcType: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

/**
 * Creates the metrics: go-grpc-prometheus style per-method counters
 * (`grpc_server_started_total`, `grpc_server_handled_total` by code), a
 * handling-time histogram, an in-flight gauge, Tyk hook outcomes, and
 * prom-client's default process metrics. `defaultLabels` (e.g. the worker
 * id) go on every series.
 */
export function createMetrics(defaultLabels: Record<string, string> = {}): ServerMetrics {
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels);
  collectDefaultMetrics({ register: registry });
  const methodLabels = ["grpc_service", "grpc_method", "grpc_type"] as const;
  const started = new Counter({ name: "grpc_server_started_total", help: "Calls started.", labelNames: methodLabels, registers: [registry] });
  const handled = new Counter({ name: "grpc_server_handled_total", help: "Calls completed, by gRPC code.", labelNames: [...methodLabels, "grpc_code"], registers: [registry] });
  const inFlight = new Gauge({ name: "grpc_server_in_flight", help: "Calls in flight.", labelNames: methodLabels, registers: [registry] });
  const seconds = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Time from the call's start to its end (for streams, the last message).",
    labelNames: methodLabels,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const hooks = new Counter({ name: "tyk_hook_calls_total", help: "Tyk plugin hook calls, by outcome.", labelNames: ["hook_type", "hook_name", "outcome"], registers: [registry] });

  const perMethod = new Map<DescMethod, MethodMetrics>();
  const forMethod = (method: DescMethod): MethodMetrics => {
    let m = perMethod.get(method);
    if (m === undefined) {
      const labels = [method.parent.typeName, method.name, grpcType[method.methodKind]] as const;
      m = { labels, started: started.labels(...labels), inFlight: inFlight.labels(...labels), seconds: seconds.labels(...labels), handled: new Map() };
      perMethod.set(method, m);
    }
    return m;
  };
  const end = (m: MethodMetrics, since: number, error?: unknown) => {
    const code = error === undefined ? 0 : ConnectError.from(error).code;
    let counter = m.handled.get(code);
    if (counter === undefined) {
      counter = handled.labels(...m.labels, code === 0 ? "OK" : Code[code] ?? String(code));
      m.handled.set(code, counter);
    }
    counter.inc();
    m.inFlight.dec();
    m.seconds.observe((performance.now() - since) / 1000);
  };

  const interceptor = callEndInterceptor(
    (req) => {
      const m = forMethod(req.method);
      m.started.inc();
      m.inFlight.inc();
      return { m, since: performance.now() };
    },
    ({ m, since }, error) => end(m, since, error),
  );

  return {
    registry,
    interceptor,
    hookDone(hookType, hookName, outcome) {
      hooks.labels(hookType, outcome === "no_plugin" ? "" : hookName, outcome).inc();
    },
  };
}
