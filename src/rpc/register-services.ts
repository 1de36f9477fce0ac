import type { ConnectRouter, ServiceImplSpec } from "@connectrpc/connect";

/** Registers service implementations on a connect router, method by method. */
export function registerServices(specs: readonly ServiceImplSpec[]): (router: ConnectRouter) => void {
  return (router) => {
    for (const spec of specs) {
      for (const method of Object.values(spec.methods)) {
        // The spec pairs each method with its implementation; the union type
        // just cannot say so.
        router.rpc(method.method, method.impl as never);
      }
    }
  };
}
