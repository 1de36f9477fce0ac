import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { repoPath } from "../test/helpers/paths.js";

// The reference server for `pnpm bench`: @grpc/grpc-js + proto-loader serving
// the same Dispatch (echo, optionally logging each Object as indented JSON
// like the Tyk article's server) and Echo.Reply. Bench code only.
// Usage: node dist/bench/grpc-js-server.js PORT [--log]

const [portArg, logFlag] = process.argv.slice(2);
const log = logFlag === "--log";
const definition = protoLoader.loadSync(["coprocess_object.proto", "echo.proto"], {
  includeDirs: [repoPath("proto", "coprocess"), repoPath("proto", "seeds")],
  longs: String,
  enums: String,
  bytes: String,
});
const pkg = grpc.loadPackageDefinition(definition) as Record<string, any>;

const server = new grpc.Server({ "grpc.max_receive_message_length": 64 * 1024 * 1024 });
server.addService(pkg.coprocess.Dispatcher.service, {
  Dispatch(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
    if (log) {
      process.stdout.write(`${JSON.stringify(call.request, null, 2)}\n`);
    }
    callback(null, call.request);
  },
  DispatchEvent(_call: unknown, callback: grpc.sendUnaryData<unknown>) {
    callback(null, {});
  },
});
server.addService(pkg.echo.Echo.service, {
  Reply(call: grpc.ServerUnaryCall<{ message: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
    callback(null, { message: `You said: ${call.request.message}` });
  },
});
server.bindAsync(`127.0.0.1:${portArg}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
