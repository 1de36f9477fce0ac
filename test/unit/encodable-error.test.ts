import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { Int32ValueSchema, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { pino } from "pino";
import { encodableError } from "../../src/rpc/encodable-error.js";

describe("encodableError", () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ base: undefined }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });

  it("hands back an error that encodes (or is not a ConnectError) as it is, and logs nothing", () => {
    const plain = new Error("a bug");
    const withDetail = new ConnectError("ünïcode ✓ 😀", Code.NotFound, { "x-a": "1" }, [{ desc: StringValueSchema, value: { value: "d" } }]);
    assert.equal(encodableError(plain, logger, "p.S/M"), plain);
    assert.equal(encodableError(withDetail, logger, "p.S/M"), withDetail);
    assert.deepEqual(lines, []);
  });

  it("keeps code, metadata, cause and the details that encode; repairs the message", () => {
    const cause = new Error("underneath");
    const bad = new ConnectError(
      "ab\uDC00c",
      Code.Aborted,
      { "x-a": "1" },
      [
        { desc: StringValueSchema, value: { value: "kept" } },
        { desc: Int32ValueSchema, value: { value: "x" as unknown as number } },
      ],
      cause,
    );
    assert.throws(() => setTrailerStatus(new Headers(), bad), "as it is, it does not encode");
    const safe = encodableError(bad, logger, "p.S/M");
    assert.ok(safe instanceof ConnectError);
    assert.deepEqual([safe.code, safe.rawMessage, safe.metadata.get("x-a"), safe.cause, safe.details.length], [Code.Aborted, "ab\uFFFDc", "1", cause, 1]);
    const trailer = setTrailerStatus(new Headers(), safe);
    assert.equal(trailer.get("grpc-status"), String(Code.Aborted));
    assert.ok(trailer.has("grpc-status-details-bin"));
    assert.deepEqual(
      lines.map(({ level, rpc, droppedDetails, messageRepaired }) => ({ level, rpc, droppedDetails, messageRepaired })),
      [{ level: 50, rpc: "p.S/M", droppedDetails: 1, messageRepaired: true }],
    );
  });
});
