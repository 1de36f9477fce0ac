import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { repoPath } from "./paths.js";

// Clients built by @grpc/grpc-js from the project's .proto files at run time:
// an independent gRPC implementation, so wire bugs a Connect client might
// share with a Connect server show up here.

/** A grpc-js client whose methods are looked up by name. */
export type DynamicClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

const definition = protoLoader.loadSync(["coprocess_object.proto", "echo.proto", "users.proto"], {
  includeDirs: [repoPath("proto", "coprocess"), repoPath("proto", "seeds")],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});
const loaded = grpc.loadPackageDefinition(definition) as Record<string, any>;

type ClientConstructor = new (address: string, credentials: grpc.ChannelCredentials) => DynamicClient;

/** grpc-js clients for the Dispatcher, Echo and Users services at `address`. */
export function grpcJsClients(address: string) {
  const make = (ctor: ClientConstructor) => new ctor(address, grpc.credentials.createInsecure());
  return {
    dispatcher: make(loaded.coprocess.Dispatcher),
    echo: make(loaded.echo.Echo),
    users: make(loaded.Users),
    close(this: { dispatcher: grpc.Client; echo: grpc.Client; users: grpc.Client }) {
      this.dispatcher.close();
      this.echo.close();
      this.users.close();
    },
  };
}

/** Calls a unary method; resolves with the response or rejects with the ServiceError. */
export function unary<T>(client: DynamicClient, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!(request, metadata, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Collects a server stream: the messages received and the final status. */
export function collectStream<T>(stream: grpc.ClientReadableStream<T>): Promise<{ messages: T[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    stream.on("data", (m: T) => messages.push(m));
    stream.on("error", (error: grpc.ServiceError) => resolve({ messages, error }));
    stream.on("end", () => resolve({ messages }));
  });
}

export { grpc };
