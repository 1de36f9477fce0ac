// What the gateway simulator needs from a Tyk API definition, read from a
// Classic definition or a Tyk OAS document (the `x-tyk-api-gateway`
// extension), the same file a team deploys.

/** One configured gRPC hook of an API. */
export interface HookRef {
  readonly name: string;
  /** `raw_body_only`: the hook gets `raw_body` without the text `body`. */
  readonly rawBodyOnly: boolean;
  readonly requireSession: boolean;
}

/** How the API authenticates requests. */
export type ApiAuth =
  | { readonly kind: "keyless" }
  /** Keys the gateway stores (created through its API): the key is read from `header`. */
  | { readonly kind: "key"; readonly header: string }
  /** A gRPC custom auth hook (CustomKeyCheck), with an optional header ID extractor caching its sessions. */
  | { readonly kind: "custom"; readonly hook: HookRef; readonly idExtractorHeader: string | undefined };

/** An API definition, as far as plugins see it. */
export interface ApiModel {
  readonly apiId: string;
  readonly orgId: string;
  /** E.g. "/my-api/". */
  readonly listenPath: string;
  readonly stripListenPath: boolean;
  readonly targetUrl: string;
  readonly auth: ApiAuth;
  readonly pre: readonly HookRef[];
  readonly postKeyAuth: readonly HookRef[];
  readonly post: readonly HookRef[];
  readonly response: readonly HookRef[];
  /** The driver hooks are configured for; the gateway sends gRPC calls only for "grpc". */
  readonly driver: string;
  /** The `config_data` the gateway sends (undefined: none is sent). */
  readonly configData: unknown;
}

type Json = Record<string, unknown>;

const object = (value: unknown): Json => (typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : {});
const list = (value: unknown): Json[] => (Array.isArray(value) ? value.map(object) : []);
const text = (value: unknown, fallback = ""): string => (typeof value === "string" ? value : fallback);

/** Reads a Classic API definition or a Tyk OAS document; throws naming what is missing. */
export function readApiDefinition(definition: unknown): ApiModel {
  const api = object(definition);
  return "x-tyk-api-gateway" in api ? readOas(api) : readClassic(api);
}

function readClassic(api: Json): ApiModel {
  const proxy = object(api.proxy);
  const listenPath = text(proxy.listen_path);
  if (listenPath === "") {
    throw new Error("the API definition has no proxy.listen_path (neither a Classic definition nor a Tyk OAS document with x-tyk-api-gateway)");
  }
  const mw = object(api.custom_middleware);
  const hooks = (key: string): HookRef[] =>
    list(mw[key]).map((h) => ({ name: text(h.name), rawBodyOnly: h.raw_body_only === true, requireSession: h.require_session === true }));
  const authCheck = object(mw.auth_check);
  const extractor = object(mw.id_extractor);
  const extractorHeader =
    extractor.disabled !== true && text(extractor.extract_from) === "header" ? text(object(extractor.extractor_config).header_name) || undefined : undefined;
  const header = text(object(api.auth).auth_header_name) || text(object(object(api.auth_configs).authToken).auth_header_name) || "Authorization";
  let auth: ApiAuth = { kind: "keyless" };
  if (api.use_keyless !== true) {
    auth =
      api.enable_coprocess_auth === true
        ? {
            kind: "custom",
            hook: { name: text(authCheck.name), rawBodyOnly: authCheck.raw_body_only === true, requireSession: false },
            idExtractorHeader: extractorHeader,
          }
        : { kind: "key", header };
  }
  const configData = api.config_data_disabled === true || Object.keys(object(api.config_data)).length === 0 ? undefined : api.config_data;
  return {
    apiId: text(api.api_id),
    orgId: text(api.org_id),
    listenPath,
    stripListenPath: proxy.strip_listen_path === true,
    targetUrl: text(proxy.target_url),
    auth,
    pre: hooks("pre"),
    postKeyAuth: hooks("post_key_auth"),
    post: hooks("post"),
    response: hooks("response"),
    driver: text(mw.driver),
    configData,
  };
}

function readOas(doc: Json): ApiModel {
  const tyk = object(doc["x-tyk-api-gateway"]);
  const info = object(tyk.info);
  const server = object(tyk.server);
  const listen = object(server.listenPath);
  const global = object(object(tyk.middleware).global);
  const pluginConfig = object(global.pluginConfig);
  const hooks = (key: string): HookRef[] =>
    list(global[key])
      .filter((h) => h.enabled !== false)
      .map((h) => ({ name: text(h.functionName), rawBodyOnly: h.rawBodyOnly === true, requireSession: h.requireSession === true }));
  const authentication = object(server.authentication);
  const custom = object(authentication.custom);
  const customConfig = object(custom.config);
  const extractor = object(customConfig.idExtractor);
  let auth: ApiAuth = { kind: "keyless" };
  if (authentication.enabled === true) {
    if (custom.enabled === true || customConfig.enabled === true) {
      const extractorHeader =
        extractor.enabled === true && text(extractor.source) === "header" ? text(object(extractor.config).headerName) || undefined : undefined;
      auth = {
        kind: "custom",
        hook: { name: text(customConfig.functionName), rawBodyOnly: customConfig.rawBodyOnly === true, requireSession: false },
        idExtractorHeader: extractorHeader,
      };
    } else {
      const schemes = object(authentication.securitySchemes);
      const token = Object.values(schemes)
        .map(object)
        .find((s) => s.enabled === true);
      auth = { kind: "key", header: text(object(token?.header).name) || "Authorization" };
    }
  }
  const data = object(pluginConfig.data);
  return {
    apiId: text(info.id),
    orgId: text(info.orgId),
    listenPath: text(listen.value) || "/",
    stripListenPath: listen.strip === true,
    targetUrl: text(object(tyk.upstream).url),
    auth,
    pre: hooks("prePlugins"),
    postKeyAuth: hooks("postAuthenticationPlugins"),
    post: hooks("postPlugins"),
    response: hooks("responsePlugins"),
    driver: text(pluginConfig.driver),
    configData: data.enabled === true && data.value !== undefined ? data.value : undefined,
  };
}
