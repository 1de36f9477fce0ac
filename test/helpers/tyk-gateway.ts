import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EventSchema, type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { grpc } from "./grpc-js.js";

/**
 * Calls Dispatch with @grpc/grpc-js (not Connect), serializing with
 * protobuf-es, as the gateway's grpc-go client does: h2c, one connection.
 */
export class GatewayClient {
  readonly #client: grpc.Client;

  constructor(address: string, options: grpc.ChannelOptions = {}) {
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure(), options);
  }

  /** Dispatch, with request metadata (such as the `traceparent` Tyk sends with OpenTelemetry on). */
  dispatch(object: Object$, metadata: Record<string, string> = {}): Promise<Object$> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        "/coprocess.Dispatcher/Dispatch",
        (o: Object$) => Buffer.from(toBinary(ObjectSchema, o)),
        (b: Buffer) => fromBinary(ObjectSchema, b),
        object,
        md,
        (err, res) => (err ? reject(err) : resolve(res!)),
      );
    });
  }

  event(payload: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        "/coprocess.Dispatcher/DispatchEvent",
        (p: string) => Buffer.from(toBinary(EventSchema, create(EventSchema, { payload: p }))),
        () => undefined,
        typeof payload === "string" ? payload : JSON.stringify(payload),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  /** The client's channel (its one HTTP/2 connection and its state). */
  channel(): ReturnType<grpc.Client["getChannel"]> {
    return this.#client.getChannel();
  }

  close(): void {
    this.#client.close();
  }
}
