import { parseArgs } from "node:util";
import { makeDevCertificates } from "./make.js";

// `pnpm certs [--out DIR] [--name HOST ...] [--days N]`: development
// certificates for the TLS listeners (see README, "TLS and mTLS").

const { values } = parseArgs({
  options: {
    out: { type: "string", default: "certs" },
    name: { type: "string", multiple: true, default: [] },
    days: { type: "string", default: "365" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write(`Usage: pnpm certs [--out DIR] [--name HOST]... [--days N]
Writes a development CA (ca.crt, ca.key), a server certificate for localhost,
127.0.0.1 and ::1 plus each --name (server.crt, server.key) and a client
certificate (client.crt, client.key) to DIR (default certs/, git-ignored).
`);
  process.exit(0);
}
const days = Number(values.days);
if (!Number.isInteger(days) || days < 1) {
  process.stderr.write(`invalid --days "${values.days}": expected a whole number of days\n`);
  process.exit(2);
}
try {
  const files = makeDevCertificates(values.out, { extraNames: values.name, days });
  process.stdout.write(`${Object.values(files).join("\n")}\n`);
} catch (e) {
  const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
  process.stderr.write(`cannot make certificates (is openssl installed?): ${stderr || (e as Error).message}\n`);
  process.exit(1);
}
