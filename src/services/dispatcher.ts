import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema, type Dispatcher } from "../../gen/coprocess_object_pb.js";
import type { Logger } from "../logger.js";
import type { DispatchHandler } from "../tyk/dispatch-handler.js";

/**
 * Tyk's `coprocess.Dispatcher`: logs each hook call as Tyk's tutorial server
 * does (a line naming the hook, and at debug level the whole Object as proto3
 * JSON) and hands the Object to `handler`.
 */
export function createDispatcherService(handler: DispatchHandler, logger: Logger): ServiceImpl<typeof Dispatcher> {
  return {
    async dispatch(object, ctx) {
      logger.info(
        { hookType: HookType[object.hookType] ?? object.hookType, hookName: object.hookName, apiId: object.spec["APIID"] },
        "dispatch",
      );
      // toJson is the costly part: skip it entirely when debug is off.
      if (logger.isLevelEnabled("debug")) {
        logger.debug({ object: toJson(ObjectSchema, object) }, "dispatch object");
      }
      return handler(object, { logger, signal: ctx.signal });
    },

    dispatchEvent(event) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(event.payload);
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        logger.warn({ payload: event.payload, reason }, "event payload is not JSON");
        throw new ConnectError(`event payload is not valid JSON: ${reason}`, Code.InvalidArgument);
      }
      logger.info({ event: parsed }, "received event");
      return {};
    },
  };
}
