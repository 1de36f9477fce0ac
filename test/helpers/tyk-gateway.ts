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

  dispatch(object: Object$): Promise<Object$> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        "/coprocess.Dispatcher/Dispatch",
        (o: Object$) => Buffer.from(toBinary(ObjectSchema, o)),
        (b: Buffer) => fromBinary(ObjectSchema, b),
        object,
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
