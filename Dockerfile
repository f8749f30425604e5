# bedrock-cost-mcp: one static binary (musl) on a distroless base, running as non-root.
#
#   docker build -t bedrock-cost-mcp .
#   docker run --rm -i bedrock-cost-mcp --demo serve          # MCP on stdio, demo data
#   docker compose -f deploy/compose.yaml up -d               # the shared HTTP server (with auth)
#
# The default command serves streamable HTTP on 0.0.0.0:8000 (/mcp, GET /healthz); the server
# refuses a non-loopback address unless HTTP authentication is configured
# (BEDROCK_COST_MCP_AUTH_TOKENS or BEDROCK_COST_MCP_JWT_ISSUER): see deploy/compose.yaml.
# RUST_TARGET must be the builder's own architecture (x86_64-unknown-linux-musl by default;
# aarch64-unknown-linux-musl on an arm64 host). The release publishes the linux/amd64 image.

ARG RUST_TARGET=x86_64-unknown-linux-musl

FROM rust:1-alpine AS builder
ARG RUST_TARGET
# C toolchain for the crates that compile C (aws-lc-sys, zstd-sys, libmimalloc-sys). Alpine's
# package versions move with the rust:1-alpine tag, so they are not pinned.
# hadolint ignore=DL3018
RUN apk add --no-cache build-base cmake linux-headers
WORKDIR /src
# Only what the build reads: the manifests and lock file, the two crates, and the bundled font.
COPY Cargo.toml Cargo.lock ./
COPY core ./core
COPY src ./src
COPY assets ./assets
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN rustup target add "${RUST_TARGET}" \
    && cargo build --release --locked --target "${RUST_TARGET}" \
    && install -m 755 "target/${RUST_TARGET}/release/bedrock-cost-mcp" /bedrock-cost-mcp

# The binary alone, for the release workflow:
#   docker buildx build --target binary --build-arg RUST_TARGET=... --output type=local,dest=DIR .
FROM scratch AS binary
COPY --from=builder /bedrock-cost-mcp /bedrock-cost-mcp

# distroless/static: no shell, no package manager; CA certificates (for AWS endpoints), tzdata,
# and the nonroot user (uid 65532, home /home/nonroot).
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=0.1.0
# The MCP Registry checks this label against `name` in server.json before it lists the image.
ARG MCP_SERVER_NAME=io.github.OWNER/bedrock-cost-mcp
ARG SOURCE_URL=https://github.com/OWNER/bedrock-cost-mcp

LABEL io.modelcontextprotocol.server.name="${MCP_SERVER_NAME}" \
      org.opencontainers.image.title="bedrock-cost-mcp" \
      org.opencontainers.image.description="MCP server that answers who is spending what on Amazon Bedrock, per IAM principal" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.url="${SOURCE_URL}" \
      org.opencontainers.image.documentation="${SOURCE_URL}#readme"

COPY --from=builder /bedrock-cost-mcp /usr/local/bin/bedrock-cost-mcp

# nonroot (numeric, so hosts and orchestrators need not resolve the name).
USER 65532:65532
EXPOSE 8000

# Exec form: the runtime image has no shell. `health-check` exits 0 when /healthz answers ok.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/bedrock-cost-mcp", "health-check", "--url", "http://127.0.0.1:8000/healthz"]

ENTRYPOINT ["/usr/local/bin/bedrock-cost-mcp"]
# see README "Running it" for binding beyond loopback
CMD ["serve", "--http", "0.0.0.0:8000"]
