import type { JsonValue } from "@bufbuild/protobuf";
import { ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Dispatcher } from "../../gen/coprocess_object_pb.js";
import type { Logger } from "../observability/logger.js";
import { parseEventPayload } from "../tyk/events.js";
import { maskEventJson } from "../tyk/mask.js";
import { logDispatchObject } from "../tyk/object-log.js";
import type { PluginHost } from "../tyk/plugin-host.js";

/** What the Dispatcher service needs. */
export interface DispatcherOptions {
  /** Runs the plugins. */
  readonly plugins: PluginHost;
  readonly logger: Logger;
  /** Log credentials in Objects and events as they are (local debugging only). */
  readonly logSecrets: boolean;
  /** Log each Object at info level instead of debug. */
  readonly logObjects: boolean;
}

/**
 * Tyk's `coprocess.Dispatcher`. Logs each Object as proto3 JSON at debug
 * level, or info with `logObjects` (credentials masked), and hands hook
 * calls and events to the plugins.
 */
export function createDispatcherService({ plugins, logger, logSecrets, logObjects }: DispatcherOptions): ServiceImpl<typeof Dispatcher> {
  const level = logObjects ? "info" : "debug";
  return {
    // Not async: with a synchronous hook the reply is ready without a promise.
    dispatch(object, ctx) {
      // Skip all of the Object's logging when the level is off.
      if (logger.isLevelEnabled(level)) {
        logDispatchObject(logger, level, object, logSecrets);
      }
      return plugins.dispatch(object, ctx);
    },

    async dispatchEvent(event, ctx) {
      let parsed: JsonValue;
      try {
        parsed = parseEventPayload(event.payload);
      } catch (e) {
        logger.warn({ payloadBytes: event.payload.length, reason: ConnectError.from(e).rawMessage }, "event payload refused");
        throw e;
      }
      logger.info({ event: logSecrets ? parsed : maskEventJson(parsed) }, "received event");
      await plugins.event(parsed, ctx);
      return {};
    },
  };
}
