import { readFileSync } from "node:fs";
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type CallOptions, createClient, type Transport } from "@connectrpc/connect";
import { Dispatcher, type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { Echo } from "../../gen/echo_pb.js";
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { Users } from "../../gen/users_pb.js";
import { CreateUserResultSchema, GetUsersResultSchema } from "../../gen/users_types_pb.js";
import { UsageError } from "./connection.js";

/** What a command gets: its own arguments, and how to call and print. */
export interface CommandInput {
  readonly args: readonly string[];
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly transport: Transport;
  readonly call: CallOptions;
  /** Print proto3 JSON, one message per line, instead of text. */
  readonly json: boolean;
  readonly out: (line: string) => void;
}

/** One CLI command. */
export interface Command {
  readonly usage: string;
  /** The command's own flags (parseArgs options). */
  readonly flags?: Record<string, { type: "string" | "boolean"; multiple?: boolean }>;
  run(input: CommandInput): Promise<void>;
}

const one = (args: readonly string[], what: string): string => {
  if (args.length !== 1) throw new UsageError(`expected one ${what}, got ${args.length}`);
  return args[0]!;
};

/** The commands, by name ("users create" is a two-word name). */
export const commands: Record<string, Command> = {
  echo: {
    usage: 'echo MESSAGE                 echo.Echo/Reply: prints "You said: MESSAGE"',
    async run({ args, transport, call, json, out }) {
      const res = await createClient(Echo, transport).reply({ message: one(args, "message") }, call);
      out(json ? JSON.stringify({ message: res.message }) : res.message);
    },
  },
  "users create": {
    usage: "users create USERNAME [--email E] [--password P]   Users/CreateUser",
    flags: { email: { type: "string" }, password: { type: "string" } },
    async run({ args, flags, transport, call, json, out }) {
      const res = await createClient(Users, transport).createUser(
        { username: one(args, "username"), email: (flags.email as string | undefined) ?? "", password: (flags.password as string | undefined) ?? "" },
        call,
      );
      out(json ? JSON.stringify(toJson(CreateUserResultSchema, res)) : `created user ${res.user?.username} (id ${res.user?.userId})`);
    },
  },
  "users get": {
    usage: "users get [USERNAME...]      Users/GetUsers (all users when none named); prints each as it arrives",
    async run({ args, transport, call, json, out }) {
      for await (const res of createClient(Users, transport).getUsers({ user: args.map((username) => ({ username })) }, call)) {
        out(json ? JSON.stringify(toJson(GetUsersResultSchema, res)) : `${res.user?.userId}\t${res.user?.username}`);
      }
    },
  },
  dispatch: {
    usage: "dispatch --file FILE|-       coprocess.Dispatcher/Dispatch with an Object in proto3 JSON; prints the reply",
    flags: { file: { type: "string" } },
    async run({ flags, transport, call, out }) {
      const file = flags.file as string | undefined;
      if (file === undefined) throw new UsageError("dispatch needs --file FILE (or --file - for stdin)");
      let object: Object$;
      try {
        object = fromJson(ObjectSchema, JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8")) as JsonValue);
      } catch (e) {
        throw new UsageError(`cannot use ${file === "-" ? "stdin" : file} as an Object: ${(e as Error).message}`);
      }
      const res = await createClient(Dispatcher, transport).dispatch(object, call);
      out(JSON.stringify(toJson(ObjectSchema, res), null, 2));
    },
  },
  event: {
    usage: "event PAYLOAD                coprocess.Dispatcher/DispatchEvent with a JSON payload",
    async run({ args, transport, call, json, out }) {
      await createClient(Dispatcher, transport).dispatchEvent({ payload: one(args, "payload") }, call);
      out(json ? "{}" : "ok");
    },
  },
  health: {
    usage: 'health [SERVICE]             grpc.health.v1.Health/Check (default "": the whole server)',
    async run({ args, transport, call, json, out }) {
      if (args.length > 1) throw new UsageError(`expected at most one service, got ${args.length}`);
      const res = await createClient(Health, transport).check({ service: args[0] ?? "" }, call);
      out(json ? JSON.stringify(toJson(HealthCheckResponseSchema, res)) : Status[res.status]);
    },
  },
};
