import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Where makeDevCertificates wrote each PEM file. */
export interface DevCertificates {
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** Options of makeDevCertificates. */
export interface DevCertificateOptions {
  /** The CA's common name; distinct names make distinct, mutually untrusted CAs. */
  readonly caName?: string;
  /** Names the server certificate is valid for, besides localhost, 127.0.0.1 and ::1. */
  readonly extraNames?: readonly string[];
  readonly days?: number;
}

// P-256 keys: small, fast to make, and accepted by every gRPC and TLS stack.
const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Makes a development CA, a server certificate for localhost (plus any
 * extra names) and a client certificate, both signed by the CA, with the
 * openssl command-line tool. For local TLS and mTLS trials and tests only:
 * the keys are written unencrypted.
 */
export function makeDevCertificates(dir: string, options: DevCertificateOptions = {}): DevCertificates {
  const days = String(options.days ?? 365);
  mkdirSync(dir, { recursive: true });
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const out: DevCertificates = {
    caCert: file("ca.crt"),
    caKey: file("ca.key"),
    serverCert: file("server.crt"),
    serverKey: file("server.key"),
    clientCert: file("client.crt"),
    clientKey: file("client.key"),
  };
  openssl(
    "req",
    "-x509",
    ...newKey,
    "-keyout",
    out.caKey,
    "-out",
    out.caCert,
    "-days",
    days,
    "-subj",
    `/CN=${options.caName ?? "tyk-grpc-ts development CA"}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  const names = ["DNS:localhost", "IP:127.0.0.1", "IP:::1", ...(options.extraNames ?? []).map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`))];
  const issue = (name: string, cn: string, extensions: string) => {
    const csr = file(`${name}.csr`);
    const ext = file(`${name}.ext`);
    writeFileSync(ext, extensions);
    openssl("req", "-new", ...newKey, "-keyout", file(`${name}.key`), "-out", csr, "-subj", `/CN=${cn}`);
    openssl(
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      out.caCert,
      "-CAkey",
      out.caKey,
      "-set_serial",
      `0x${randomSerial()}`,
      "-days",
      days,
      "-out",
      file(`${name}.crt`),
      "-extfile",
      ext,
    );
    rmSync(csr);
    rmSync(ext);
  };
  issue(
    "server",
    "localhost",
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${names.join(",")}\n`,
  );
  issue("client", "tyk-grpc-ts development client", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  return out;
}

// Certificates from one CA need distinct serial numbers.
function randomSerial(): string {
  return Array.from({ length: 16 }, () => Math.floor(Math.random() * 16).toString(16))
    .join("")
    .replace(/^0/, "1");
}
