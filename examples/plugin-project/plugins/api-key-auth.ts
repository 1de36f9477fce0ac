import { createHash, timingSafeEqual } from "node:crypto";
import { allow, definePlugin, deny } from "tyk-grpc-ts/plugin";
import * as v from "valibot";

/** pluginOptions["./plugins/api-key-auth.ts"]: checked when the server starts. */
const Options = v.object({
  /** The request header that carries the key. */
  header: v.optional(v.string(), "X-Api-Key"),
  /** Accepted keys: who owns each, and its rate limit (per second) and hourly quota. */
  keys: v.record(v.string(), v.object({ owner: v.string(), rate: v.optional(v.number(), 10), quota: v.optional(v.number(), -1) })),
});

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Custom authentication (the API's auth_check "apiKeyAuth"): a known key
 * gets a session with its owner in the metadata, its rate limit and quota;
 * the gateway caches the session for 5 minutes (the API's ID extractor).
 */
export default definePlugin({
  options: Options,
  setup: ({ options, logger }) => {
    const keys = Object.entries(options.keys).map(([key, grant]) => ({ key, digest: digest(key), grant }));
    logger.info({ keys: keys.length }, "api-key-auth ready");
    return {
      auth: {
        apiKeyAuth(req) {
          const presented = req.header(options.header);
          if (presented === undefined) return deny(`missing ${options.header}`);
          const d = digest(presented);
          const match = keys.find((k) => timingSafeEqual(k.digest, d));
          if (match === undefined) return deny("unknown key");
          const { owner, rate, quota } = match.grant;
          return allow(
            { rate, per: 1, quotaMax: BigInt(quota), quotaRemaining: BigInt(quota), quotaRenewalRate: 3600n, metadata: { owner } },
            { token: match.key, ttlSeconds: 300 },
          );
        },
      },
    };
  },
});
