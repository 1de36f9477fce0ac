import { type ParseArgsConfig, parseArgs } from "node:util";
import { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { parseDuration } from "../util/duration.js";
import { type Command, commands } from "./commands.js";
import { createConnection, UsageError, waitReady } from "./connection.js";

// `pnpm client COMMAND ...`: typed command-line clients for every service.
// Exit code: 0, the gRPC status code of a failed call, or 64 for a usage error.

const exitUsage = 64;

const globalFlags: NonNullable<ParseArgsConfig["options"]> = {
  server: { type: "string", default: "http://127.0.0.1:50051" },
  timeout: { type: "string" },
  "wait-ready": { type: "string" },
  "tls-ca": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  meta: { type: "string", multiple: true, default: [] },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
};

const globalHelp = `Options (any command):
  --server URL        http://host:port (h2c, default http://127.0.0.1:50051), https://host:port,
                      host:port, or unix:///path.sock
  --timeout DUR       deadline of the call, e.g. 30s, 500ms
  --wait-ready DUR    first wait until the server's health says SERVING, up to DUR
  --tls-ca FILE       trust this CA (implies TLS); --cert FILE --key FILE: client certificate (mTLS)
  --meta KEY=VALUE    request metadata, repeatable
  --json              print proto3 JSON, one message per line
  -h, --help          this help, or a command's
`;

function usage(): string {
  return `Usage: pnpm client COMMAND [ARGS] [OPTIONS]

Commands:
${Object.values(commands)
  .map((c) => `  ${c.usage}`)
  .join("\n")}

${globalHelp}Exit code: 0; the gRPC status code when the call fails (e.g. 5 NOT_FOUND, 14 UNAVAILABLE); ${exitUsage} for a usage error.
`;
}

// Options may come before the command: the command's words are the first
// tokens that are neither an option nor the value of one.
function splitCommand(argv: readonly string[]): { name: string | undefined; rest: string[] } {
  const takesValue = new Set(
    [globalFlags, ...Object.values(commands).map((c) => c.flags ?? {})].flatMap((flags) =>
      Object.entries(flags)
        .filter(([, o]) => o.type === "string")
        .map(([k]) => `--${k}`),
    ),
  );
  const words: number[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const token = argv[i]!;
    if (token.startsWith("-")) {
      if (takesValue.has(token)) i++;
    } else if (words.length === 0 || argv[words[0]!] === "users") {
      words.push(i);
    } else {
      break;
    }
  }
  const name = words.map((i) => argv[i]).join(" ") || undefined;
  return { name, rest: argv.filter((_, i) => !words.includes(i)) };
}

async function main(argv: string[]): Promise<number> {
  const { name, rest } = splitCommand(argv[0] === "--" ? argv.slice(1) : argv);
  const command: Command | undefined = name === undefined ? undefined : commands[name];
  if (command === undefined) {
    if (name === undefined || name === "help") {
      const asked = name === "help" || rest.includes("--help") || rest.includes("-h");
      process.stdout.write(usage());
      return asked ? 0 : exitUsage;
    }
    throw new UsageError(`unknown command "${name}"`);
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: { ...globalFlags, ...command.flags },
    allowPositionals: true,
    strict: true,
  });
  const flag = (key: string) => values[key] as string | undefined;
  if (values.help === true) {
    process.stdout.write(`Usage: pnpm client ${command.usage}\n\n${globalHelp}`);
    return 0;
  }
  const server = flag("server")!;
  const transport = createConnection({ server, tlsCa: flag("tls-ca"), cert: flag("cert"), key: flag("key"), meta: values.meta as string[] });
  const waitFor = flag("wait-ready");
  if (waitFor !== undefined) {
    await waitReady(transport, server, parseDuration(waitFor, "--wait-ready"));
  }
  const timeout = flag("timeout");
  const timeoutMs = timeout === undefined ? undefined : parseDuration(timeout, "--timeout");
  await command.run({
    args: positionals,
    flags: values as Record<string, string | boolean | string[] | undefined>,
    transport,
    call: timeoutMs === undefined ? {} : { timeoutMs },
    json: values.json === true,
    out: (line) => process.stdout.write(`${line}\n`),
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    if (
      e instanceof UsageError ||
      (e instanceof Error && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS")) ||
      (e instanceof Error && /^invalid --/.test(e.message))
    ) {
      process.stderr.write(`${e.message}\nRun with --help for the commands and options.\n`);
      process.exitCode = exitUsage;
      return;
    }
    const err = ConnectError.from(e);
    // As gRPC names codes: NOT_FOUND, not NotFound.
    process.stderr.write(`error: ${codeToString(err.code).toUpperCase()} (${err.code}): ${err.rawMessage}\n`);
    process.exitCode = err.code;
  },
);
