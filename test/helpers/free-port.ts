import { once } from "node:events";
import { createServer } from "node:net";

/** A free TCP port on 127.0.0.1 (released before it is returned; fine for a test's own processes). */
export async function freePort(): Promise<number> {
  const s = createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, "close");
  return port;
}
