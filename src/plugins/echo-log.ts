import { HookType } from "../../gen/coprocess_common_pb.js";
import { definePlugin, type EventHandler, type RequestHook, type ResponseHook } from "../tyk/plugin.js";

/**
 * echo-log: the behaviour of Tyk's tutorial gRPC server. For every Pre,
 * PostKeyAuth, Post and Response hook without a plugin of its own, logs a
 * line naming the hook type, hook name and API id, and lets the request
 * through unchanged. (The whole Object is logged as JSON at debug level for
 * every call anyway.) Custom auth is not covered: passing an auth call
 * through unchanged means "no session", which the gateway answers with 403.
 *
 * Event handler `logEvent` (for `cp_dynamic_handler` with
 * `handler_meta.name: "logEvent"`): logs the event's type, API and path.
 */
export default definePlugin(() => {
  const log: RequestHook & ResponseHook = (_, ctx) => {
    ctx.logger.info({ hookType: HookType[ctx.hookType], hookName: ctx.hookName, apiId: ctx.apiId }, "dispatch");
  };
  const logEvent: EventHandler = (event, ctx) => {
    ctx.logger.info({ eventType: event.type, apiId: event.apiId, path: event.meta.Path, origin: event.meta.Origin }, "tyk event");
  };
  return {
    name: "echo-log",
    pre: { "*": log },
    postKeyAuth: { "*": log },
    post: { "*": log },
    response: { "*": log },
    events: { logEvent },
  };
});
