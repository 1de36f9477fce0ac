import { createHash, timingSafeEqual } from "node:crypto";
import { type AuthHook, allow, definePlugin, deny } from "../tyk/plugin.js";

/** What a key grants (all optional). */
interface KeyGrant {
  /** Requests per `per` seconds (default 100 per 1). */
  rate?: number;
  per?: number;
  /** Requests per quota period; -1 (default) means unlimited. */
  quotaMax?: number;
  /** Quota period in seconds (default 3600). */
  quotaRenewalRate?: number;
  /** Copied into the session's metadata (visible to later hooks and Tyk templates). */
  metadata?: Record<string, string>;
  /** Shown in Tyk's analytics instead of the key. */
  alias?: string;
}

/** Options (config file: `pluginOptions["custom-auth"]`). */
interface Options {
  /** Request header carrying the key (default "Authorization"; a "Bearer " prefix is ignored). */
  header?: string;
  /** Accepted keys and what each grants. */
  keys?: Record<string, KeyGrant>;
  /** How long the gateway may reuse a session without asking again (default 60 s). */
  ttlSeconds?: number;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * custom-auth (Tyk's gRPC tests G7/G8; `auth_check` hook `customAuth`).
 *
 * Reads the key from a header and compares it, in constant time, with the
 * configured keys. A known key gets a session with its rate limit, quota and
 * metadata, `metadata.token` set to the key (the gateway stores the session
 * under it), and an ID-extractor deadline `ttlSeconds` from now, in Unix
 * seconds. Anything else is refused with 403 through return_overrides.
 */
export default definePlugin(({ options, logger }) => {
  const opts = (options ?? {}) as Options;
  const header = opts.header ?? "Authorization";
  const ttlSeconds = opts.ttlSeconds ?? 60;
  const keys = Object.entries(opts.keys ?? {}).map(([key, grant]) => ({ key, digest: digest(key), grant }));
  if (keys.length === 0) {
    logger.warn('custom-auth has no keys configured (pluginOptions["custom-auth"].keys): every request will be refused');
  }

  const customAuth: AuthHook = (req, ctx) => {
    const presented = req.header(header)?.replace(/^Bearer\s+/i, "");
    if (!presented) {
      return deny(`missing ${header} header`);
    }
    const d = digest(presented);
    // Compare against every key, so timing does not tell which one nearly matched.
    const match = keys.reduce<(typeof keys)[number] | undefined>((found, k) => (timingSafeEqual(k.digest, d) ? k : found), undefined);
    if (match === undefined) {
      ctx.logger.info({ apiId: ctx.apiId }, "custom-auth: unknown key refused");
      return deny("Access denied: unknown key");
    }
    const g = match.grant;
    const quotaMax = BigInt(g.quotaMax ?? -1);
    return allow(
      {
        rate: g.rate ?? 100,
        per: g.per ?? 1,
        quotaMax,
        quotaRemaining: quotaMax,
        quotaRenewalRate: BigInt(g.quotaRenewalRate ?? 3600),
        metadata: { ...g.metadata },
        alias: g.alias ?? "",
      },
      { token: match.key, ttlSeconds },
    );
  };

  return { auth: { customAuth } };
});
