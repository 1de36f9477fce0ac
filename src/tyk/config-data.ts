import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Logger } from "../observability/logger.js";
import { issuesText } from "./schema-issues.js";

/** What one config_data string means to a plugin: its value, or why it is refused. */
type Read = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: ConnectError };

// config_data is one string per API, sent on every call: remembering the
// answer per string spares a JSON parse (and a validation) per call. The
// gateway's APIs are few; the bound only stops a caller sending endless
// variants from growing the map.
const maxRemembered = 256;

/**
 * The API's config_data as one plugin sees it: parsed JSON, or with the
 * plugin's `config` schema, that schema's output. Remembers the answer for
 * each config_data string seen.
 */
export class ConfigData {
  readonly #answers = new Map<string | undefined, Read>();

  constructor(
    readonly plugin: string,
    /** The plugin's schema: config_data it refuses fails the call before the hook runs. */
    readonly schema: StandardSchemaV1 | undefined,
    readonly logger: Logger,
  ) {}

  /**
   * The value for this config_data. Throws a ConnectError (INTERNAL) naming
   * the field when the schema refuses it; without a schema, config_data
   * that is not JSON is undefined (and logged once).
   */
  value(raw: string | undefined): unknown {
    let read = this.#answers.get(raw);
    if (read === undefined) {
      read = this.#read(raw);
      if (this.#answers.size >= maxRemembered) {
        this.#answers.clear();
      }
      this.#answers.set(raw, read);
    }
    if (!read.ok) {
      throw read.error;
    }
    return read.value;
  }

  #read(raw: string | undefined): Read {
    let parsed: JsonValue | undefined;
    try {
      parsed = raw ? (JSON.parse(raw) as JsonValue) : undefined;
    } catch {
      if (this.schema !== undefined) {
        return this.#refused("it is not valid JSON");
      }
      this.logger.warn({ plugin: this.plugin }, "config_data is not valid JSON: ignoring it");
      return { ok: true, value: undefined };
    }
    if (this.schema === undefined) {
      return { ok: true, value: parsed };
    }
    const result = this.schema["~standard"].validate(parsed);
    if (result instanceof Promise) {
      return this.#refused("the plugin's config schema validates asynchronously; config schemas must be synchronous");
    }
    return result.issues ? this.#refused(issuesText(result.issues)) : { ok: true, value: result.value };
  }

  #refused(why: string): Read {
    return { ok: false, error: new ConnectError(`plugin "${this.plugin}": the API's config_data is invalid: ${why}`, Code.Internal) };
  }
}
