import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Health } from "../../../gen/grpc/health/v1/health_pb.js";
import type { HealthStatus } from "./health-status.js";

/** The standard `grpc.health.v1.Health` service over a HealthStatus. */
export function createHealthService(health: HealthStatus): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const status = health.get(req.service);
      if (status === undefined) {
        // As the health protocol specifies for Check.
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return { status };
    },

    list() {
      const statuses: Record<string, { status: number }> = {};
      for (const [service, status] of health.list()) {
        statuses[service] = { status };
      }
      return { statuses };
    },

    async *watch(req, ctx) {
      for await (const status of health.watch(req.service, ctx.signal)) {
        yield { status };
      }
    },
  };
}
