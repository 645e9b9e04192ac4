# syntax=docker/dockerfile:1
# SPEC §8.2: build the single binary with the pinned Bun, ship it on a minimal base as a non-root user.

# ---- build --------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
# git is read by the build script for the commit in --version.
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The pinned Bun comes from the npm registry with the rest of the lockfile.
RUN npm ci --no-audit --no-fund
COPY . .
RUN node_modules/.bin/bun run build && ./dist/neuronetz-gateway --version && mkdir -p /out/data

# ---- run ----------------------------------------------------------------------------------------
# The binary is glibc-linked (Bun's runtime and the argon2 addon): a distroless glibc base, no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/neuronetz-gateway /usr/local/bin/neuronetz-gateway
# An empty DATA_DIR owned by the runtime user (distroless nonroot is uid 65532).
COPY --from=build --chown=65532:65532 /out/data /data
# The argon2 addon is unpacked into TMPDIR at start; /tmp in distroless is writable by nonroot.
# DATA_DIR holds the embedded SQLite store and the audit spill files.
ENV TMPDIR=/tmp \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json
WORKDIR /data
VOLUME ["/data"]
USER nonroot:nonroot
EXPOSE 8080
# No shell or curl in the image: the binary checks its own /healthz (exit 0 when it answers 200).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/neuronetz-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/neuronetz-gateway"]
