import type { DescService } from "@bufbuild/protobuf";
import { type ConnectRouter, createServiceImplSpec, type ServiceImpl, type ServiceImplSpec } from "@connectrpc/connect";
import { Dispatcher } from "../../gen/coprocess_object_pb.js";
import { Echo } from "../../gen/echo_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Users } from "../../gen/users_pb.js";
import type { Logger } from "../observability/logger.js";
import { registerServices } from "../rpc/register-services.js";
import { createDispatcherService } from "../services/dispatcher.js";
import { echoService } from "../services/echo.js";
import { createHealthService } from "../services/health/health-service.js";
import { HealthStatus } from "../services/health/health-status.js";
import { DescriptorIndex } from "../services/reflection/descriptor-index.js";
import { createReflectionAlphaService, createReflectionService } from "../services/reflection/reflection-service.js";
import { createUsersService } from "../services/users.js";
import type { PluginHost } from "../tyk/plugin-host.js";
import type { UserStore } from "../users/user-store.js";

/** Every service this server serves; health and reflection cover all of them. */
export const servedServices: readonly DescService[] = [Dispatcher, Echo, Users, Health, ServerReflection, ServerReflectionAlpha];

/** What the routes need from the outside. */
export interface RouteDeps {
  readonly logger: Logger;
  readonly userStore: UserStore;
  /** Runs the Tyk plugins behind the Dispatcher. */
  readonly plugins: PluginHost;
  readonly health: HealthStatus;
  /** Log credentials in Dispatcher Objects unmasked. */
  readonly logSecrets?: boolean;
  /** Log every Dispatch Object at info level (otherwise at debug). */
  readonly logObjects?: boolean;
}

/**
 * Every service implementation, built once. Transport-independent: the
 * connect router and the gRPC fast path (see rpc/rpc-handlers.ts) serve these same
 * objects.
 */
export function services(deps: RouteDeps): ServiceImplSpec[] {
  const descriptors = new DescriptorIndex(servedServices);
  return [
    implement(
      Dispatcher,
      createDispatcherService({ plugins: deps.plugins, logger: deps.logger, logSecrets: deps.logSecrets ?? false, logObjects: deps.logObjects ?? false }),
    ),
    implement(Echo, echoService),
    implement(Users, createUsersService(deps.userStore, deps.logger)),
    implement(Health, createHealthService(deps.health)),
    implement(ServerReflection, createReflectionService(descriptors)),
    implement(ServerReflectionAlpha, createReflectionAlphaService(descriptors)),
  ];
}

function implement<T extends DescService>(service: T, impl: ServiceImpl<T>): ServiceImplSpec {
  return createServiceImplSpec<T>(service, impl);
}

/** Every service on a router (for in-process transports). */
export function routes(deps: RouteDeps): (router: ConnectRouter) => void {
  return registerServices(services(deps));
}

/** A HealthStatus with every served service SERVING. */
export function createHealthStatus(): HealthStatus {
  return new HealthStatus(servedServices.map((s) => s.typeName));
}
