// The testing kit, imported as "tyk-grpc-ts/testing": the gateway simulator
// and the model of the gateway it is built on.

export type { ApiAuth, ApiModel, HookRef } from "./api-definition.js";
export { readApiDefinition } from "./api-definition.js";
export type {
  Gateway,
  GatewayOptions,
  GatewayRequest,
  GatewayResult,
  HookCall,
  LogLine,
  PluginInput,
  UpstreamRequest,
  UpstreamResponse,
} from "./create-gateway.js";
export { createGateway } from "./create-gateway.js";
export type { ApiSpec, AuthResult, HttpRequest, HttpResponse, RequestResult, ResponseResult } from "./gateway-model.js";
export { applyAuthReply, applyRequestReply, applyResponseReply, canonicalHeader, errorPage, requestObject, responseObject } from "./gateway-model.js";
export { replyWarnings } from "./reply-warnings.js";
