import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Dispatcher } from "../gen/coprocess_object_pb.js";
import { Echo } from "../gen/echo_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Users } from "../gen/users_pb.js";
import { HealthStatus } from "./health/health-status.js";
import type { Logger } from "./logger.js";
import { DescriptorIndex } from "./reflection/descriptor-index.js";
import { createDispatcherService } from "./services/dispatcher.js";
import { echoService } from "./services/echo.js";
import { createHealthService } from "./services/health.js";
import { createReflectionAlphaService, createReflectionService } from "./services/reflection.js";
import { createUsersService } from "./services/users.js";
import type { PluginHost } from "./tyk/plugin-host.js";
import type { UserStore } from "./users/user-store.js";

/** Every service this server serves; health and reflection cover all of them. */
export const servedServices: readonly DescService[] = [
  Dispatcher,
  Echo,
  Users,
  Health,
  ServerReflection,
  ServerReflectionAlpha,
];

/** What the routes need from the outside. */
export interface RouteDeps {
  readonly logger: Logger;
  readonly userStore: UserStore;
  /** Runs the Tyk plugins behind the Dispatcher. */
  readonly plugins: PluginHost;
  readonly health: HealthStatus;
  /** Log credentials in Dispatcher Objects unmasked. */
  readonly logSecrets?: boolean;
}

/** Registers every service on a router; transport-independent (see server.ts). */
export function routes(deps: RouteDeps): (router: ConnectRouter) => void {
  const descriptors = new DescriptorIndex(servedServices);
  return (router) => {
    router.service(Dispatcher, createDispatcherService({ plugins: deps.plugins, logger: deps.logger, logSecrets: deps.logSecrets ?? false }));
    router.service(Echo, echoService);
    router.service(Users, createUsersService(deps.userStore, deps.logger));
    router.service(Health, createHealthService(deps.health));
    router.service(ServerReflection, createReflectionService(descriptors));
    router.service(ServerReflectionAlpha, createReflectionAlphaService(descriptors));
  };
}

/** A HealthStatus with every served service SERVING. */
export function createHealthStatus(): HealthStatus {
  return new HealthStatus(servedServices.map((s) => s.typeName));
}
