# syntax=docker/dockerfile:1
# The plugin server image: compiled JavaScript, production dependencies only,
# running as the unprivileged "node" user. Build: docker build -t tyk-grpc-ts:0.1.0 .
# The Node.js version is the one CI runs the whole suite on (.ci/run).

FROM node:24.22.3-bookworm-slim AS base
RUN npm install -g pnpm@10.34.9
WORKDIR /app
# What `pnpm install --frozen-lockfile` reads: the manifest, the lockfile, the
# workspace settings and the patches they name (test/unit/deploy-files.test.ts
# derives this list from package.json and pnpm-workspace.yaml).
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY patches patches

# Everything needed to compile (TypeScript, buf's generated code is committed in gen/).
# --ignore-scripts: `prepare` compiles, and the sources are not here yet.
FROM base AS build
RUN pnpm install --frozen-lockfile --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY gen gen
COPY src src
RUN pnpm run build

# Only what runs in production (no dependency needs an install script).
FROM base AS prod-deps
RUN pnpm install --frozen-lockfile --prod --ignore-scripts

FROM node:24.22.3-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY config/plugins.json config/plugins.json
# The call inspector's page (--inspect), served as it is.
COPY web/inspector web/inspector
# The embedded Users store (SQLite, opened on the first Users call) keeps its
# file here; mount a volume to keep users across containers.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME /app/data
USER node
# 50051: gRPC (h2c, what Tyk dials); 8080: --http-listen (Connect, gRPC-Web, /healthz, /readyz, /metrics).
EXPOSE 50051 8080
# The gRPC health service, asked by the project's own client.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "--server", "127.0.0.1:50051", "--timeout", "2s", "health"]
# Drains in-flight calls for up to --grace-period on SIGTERM (docker stop waits 10 s by default).
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=100", "dist/src/main.js", "--config", "config/plugins.json", \
     "--listen", "tcp://[::]:50051", "--http-listen", "[::]:8080", "--grace-period", "8s"]
