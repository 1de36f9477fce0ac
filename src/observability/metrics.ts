import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { collectDefaultMetrics, type Metric, Registry } from "prom-client";
import { callEndInterceptor } from "./call-end.js";

/** How a Tyk hook call ended, as counted: auth hooks' reject is "deny". */
export type HookMetricOutcome =
  | "continue"
  | "reject"
  | "respond"
  | "allow"
  | "deny"
  | "error"
  | "timeout"
  | "error_open"
  | "timeout_open"
  | "invalid_config"
  | "no_plugin";

/** The server's Prometheus metrics. */
export interface ServerMetrics {
  readonly registry: Registry;
  /** Counts every call it sees (first in both paths' interceptor lists). */
  readonly interceptor: Interceptor;
  /**
   * Counts one hook call under the name its hook was registered with ("*"
   * for a catch-all); calls with no plugin under "": names the caller
   * chooses would grow the label set without bound.
   */
  hookDone(hookType: string, hookName: string, outcome: HookMetricOutcome): void;
}

// Per method, plain numbers: a call only adds to these; prom-client reads
// them when scraped. (prom-client's own children hash their labels on every
// inc/observe, a visible share of a Dispatch call's cost.)
class MethodStats {
  started = 0;
  inFlight = 0;
  readonly handled = new Map<string, number>();
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly buckets = new Float64Array(bucketBounds.length + 1);
  sum = 0;
  constructor(readonly labels: Readonly<Record<"grpc_service" | "grpc_method" | "grpc_type", string>>) {}
}

const bucketBounds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const grpcType: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

type Sample = { value: number; labels: Record<string, string | number>; metricName?: string };

/** A metric whose samples are computed when scraped. */
function scrapeTimeMetric(registry: Registry, name: string, help: string, type: "counter" | "gauge" | "histogram", samples: () => Sample[]): void {
  const metric = { name, help, type, aggregator: "sum", get: async () => ({ name, help, type, aggregator: "sum", values: samples() }), reset: () => undefined };
  registry.registerMetric(metric as unknown as Metric);
}

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
  const perMethod = new Map<DescMethod, MethodStats>();
  const all = () => [...perMethod.values()];
  scrapeTimeMetric(registry, "grpc_server_started_total", "Calls started.", "counter", () => all().map((m) => ({ value: m.started, labels: m.labels })));
  scrapeTimeMetric(registry, "grpc_server_handled_total", "Calls completed, by gRPC code.", "counter", () =>
    all().flatMap((m) => [...m.handled].map(([code, value]) => ({ value, labels: { ...m.labels, grpc_code: code } }))),
  );
  scrapeTimeMetric(registry, "grpc_server_in_flight", "Calls in flight.", "gauge", () => all().map((m) => ({ value: m.inFlight, labels: m.labels })));
  scrapeTimeMetric(registry, "grpc_server_handling_seconds", "Time from the call's start to its end (for streams, the last message).", "histogram", () =>
    all().flatMap((m) => {
      let cumulative = 0;
      const buckets = [...bucketBounds, "+Inf" as const].map((le, i) => {
        cumulative += m.buckets[i]!;
        return { metricName: "grpc_server_handling_seconds_bucket", value: cumulative, labels: { le, ...m.labels } };
      });
      return [
        ...buckets,
        { metricName: "grpc_server_handling_seconds_sum", value: m.sum, labels: m.labels },
        { metricName: "grpc_server_handling_seconds_count", value: cumulative, labels: m.labels },
      ];
    }),
  );
  const hooks = new Map<string, Map<string, Map<HookMetricOutcome, Sample>>>();
  scrapeTimeMetric(registry, "tyk_hook_calls_total", "Tyk plugin hook calls, by outcome.", "counter", () =>
    [...hooks.values()].flatMap((byName) => [...byName.values()].flatMap((byOutcome) => [...byOutcome.values()])),
  );

  const forMethod = (method: DescMethod): MethodStats => {
    let m = perMethod.get(method);
    if (m === undefined) {
      m = new MethodStats({ grpc_service: method.parent.typeName, grpc_method: method.name, grpc_type: grpcType[method.methodKind] });
      perMethod.set(method, m);
    }
    return m;
  };
  const interceptor = callEndInterceptor(
    (req) => {
      const m = forMethod(req.method);
      m.started++;
      m.inFlight++;
      return { m, since: performance.now() };
    },
    ({ m, since }, error) => {
      const code = error === undefined ? "OK" : (Code[ConnectError.from(error).code] ?? "Unknown");
      m.handled.set(code, (m.handled.get(code) ?? 0) + 1);
      m.inFlight--;
      const seconds = (performance.now() - since) / 1000;
      let i = 0;
      while (i < bucketBounds.length && seconds > bucketBounds[i]!) i++;
      m.buckets[i]!++;
      m.sum += seconds;
    },
  );

  return {
    registry,
    interceptor,
    hookDone(hookType, hookName, outcome) {
      // Nested maps keyed by strings that already exist (enum name, registered
      // hook name, outcome literal): no key is built per call.
      const name = outcome === "no_plugin" ? "" : hookName;
      const byName = hooks.get(hookType) ?? hooks.set(hookType, new Map()).get(hookType)!;
      const byOutcome = byName.get(name) ?? byName.set(name, new Map()).get(name)!;
      const sample = byOutcome.get(outcome);
      if (sample === undefined) {
        byOutcome.set(outcome, { value: 1, labels: { hook_type: hookType, hook_name: name, outcome } });
      } else {
        sample.value++;
      }
    },
  };
}
