import type { Object$ } from "../../gen/coprocess_object_pb.js";
import type { HookMetricOutcome } from "../observability/metrics.js";
import type { MaybePromise } from "../util/maybe-promise.js";

/** Told which plugin served a Dispatch call and how the hook call ended (once per call). */
export type HookReport = (plugin: string | undefined, outcome: HookMetricOutcome) => void;

/**
 * Sees Dispatch calls whole while it watches (the call inspector,
 * services/inspector): the Object as the gateway sent it, which plugin ran,
 * how it ended, and the reply or error. PluginHost reads `watching` once per
 * call; while it is false a call costs nothing more.
 */
export interface DispatchObserver {
  /** Whether calls are observed now (someone has the inspector open). */
  readonly watching: boolean;
  /**
   * Observes one call: `object` has not been touched by a hook yet.
   * `dispatch` runs the call (it calls `report` before it returns or
   * settles); observe returns what it returns, and throws what it throws.
   */
  observe(object: Object$, dispatch: (report: HookReport) => MaybePromise<Object$>): MaybePromise<Object$>;
}
