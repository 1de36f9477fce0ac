import { createRegistry, type DescFile, type DescService, type Registry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * The descriptors reflection serves: the files of the served services and
 * all their transitive imports, by file name and by symbol.
 */
export class DescriptorIndex {
  /** Full names of the served services, sorted. */
  readonly serviceNames: readonly string[];
  readonly #files = new Map<string, DescFile>();
  readonly #encoded = new Map<DescFile, Uint8Array>();
  readonly #registry: Registry;

  constructor(services: readonly DescService[]) {
    this.serviceNames = services.map((s) => s.typeName).sort();
    const visit = (file: DescFile) => {
      if (!this.#files.has(file.proto.name)) {
        this.#files.set(file.proto.name, file);
        file.dependencies.forEach(visit);
      }
    };
    services.forEach((s) => visit(s.file));
    this.#registry = createRegistry(...this.#files.values());
  }

  /** A file by its proto name, e.g. "echo.proto". */
  fileByName(name: string): DescFile | undefined {
    return this.#files.get(name);
  }

  /**
   * The file defining a fully-qualified symbol: a service, method, message,
   * enum or extension. Methods are `pkg.Service.Method`.
   */
  fileContainingSymbol(symbol: string): DescFile | undefined {
    const desc = this.#registry.get(symbol);
    if (desc !== undefined) {
      return desc.file;
    }
    const dot = symbol.lastIndexOf(".");
    const parent = dot > 0 ? this.#registry.getService(symbol.slice(0, dot)) : undefined;
    return parent?.methods.some((m) => m.name === symbol.slice(dot + 1)) ? parent.file : undefined;
  }

  /** The file declaring extension `number` of message `extendee`. */
  fileContainingExtension(extendee: string, number: number): DescFile | undefined {
    const message = this.#registry.getMessage(extendee);
    return message && this.#registry.getExtensionFor(message, number)?.file;
  }

  /** Extension numbers known for a message, or undefined for an unknown message. */
  extensionNumbers(extendee: string): number[] | undefined {
    if (this.#registry.getMessage(extendee) === undefined) {
      return undefined;
    }
    const numbers: number[] = [];
    for (const desc of this.#registry) {
      if (desc.kind === "extension" && desc.extendee.typeName === extendee) {
        numbers.push(desc.number);
      }
    }
    return numbers;
  }

  /** A file and its transitive imports, the file first; each file once. */
  withDependencies(file: DescFile): DescFile[] {
    const out = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (!out.has(f)) {
        out.add(f);
        f.dependencies.forEach(visit);
      }
    };
    visit(file);
    return [...out];
  }

  /** The serialized google.protobuf.FileDescriptorProto of a file (cached). */
  encode(file: DescFile): Uint8Array {
    let bytes = this.#encoded.get(file);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.#encoded.set(file, bytes);
    }
    return bytes;
  }
}
