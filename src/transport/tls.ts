import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import * as tls from "node:tls";

/** The PEM files of the TLS listeners. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Present: clients must show a certificate signed by this CA (mTLS). */
  readonly clientCaFile?: string;
}

/** What a loaded server certificate says, for the log. */
export interface CertificateInfo {
  readonly subject: string;
  readonly subjectAltName: string | undefined;
  readonly validTo: string;
  readonly fingerprint256: string;
}

/** The certificate material read from the files, checked to form a usable context. */
export interface LoadedTls {
  readonly context: tls.SecureContextOptions;
  readonly certificate: CertificateInfo;
}

/**
 * Reads the TLS files. Throws an Error naming the file or problem when a
 * file is missing, is not PEM, or the key does not match the certificate,
 * so a bad reload keeps the old certificate instead of breaking the listener.
 */
export function loadTls(files: TlsFiles): LoadedTls {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`cannot read TLS ${what} ${path}: ${(e as Error).message}`);
    }
  };
  const cert = read("certificate", files.certFile);
  const key = read("key", files.keyFile);
  const ca = files.clientCaFile === undefined ? undefined : read("client CA", files.clientCaFile);
  const context: tls.SecureContextOptions = ca === undefined ? { cert, key } : { cert, key, ca };
  try {
    // Throws on unreadable PEM and on a key that does not belong to the certificate.
    tls.createSecureContext(context);
  } catch (e) {
    throw new Error(`unusable TLS files (${files.certFile}, ${files.keyFile}): ${(e as Error).message}`);
  }
  const x509 = new X509Certificate(cert);
  return {
    context,
    certificate: {
      subject: x509.subject.replaceAll("\n", ", "),
      subjectAltName: x509.subjectAltName,
      validTo: x509.validTo,
      fingerprint256: x509.fingerprint256,
    },
  };
}

/**
 * A TLS listener that offers HTTP/2 and HTTP/1.1 by ALPN (gRPC needs h2;
 * Connect and gRPC-Web also work over HTTP/1.1). With a client CA, a client
 * without a certificate from it is refused during the handshake.
 */
export function createTlsListener(files: TlsFiles, loaded: LoadedTls): tls.Server {
  const mutual = files.clientCaFile !== undefined;
  return tls.createServer({
    ...loaded.context,
    ALPNProtocols: ["h2", "http/1.1"],
    minVersion: "TLSv1.2", // HTTP/2 forbids older versions (RFC 9113, 9.2)
    requestCert: mutual,
    rejectUnauthorized: mutual,
  });
}
