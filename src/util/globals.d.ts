// @connectrpc/connect's declarations use the DOM type `HeadersInit`. Node has
// the global `Headers` class, but @types/node does not name its init type
// globally, and the DOM lib would bring in browser globals that do not exist
// here. So name it after what Node's Headers constructor accepts.
type HeadersInit = NonNullable<ConstructorParameters<typeof Headers>[0]>;
