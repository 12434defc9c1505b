# syntax=docker/dockerfile:1
#
# Switchboard container image.
#
#   docker build -t ghcr.io/switchboard-rs/switchboard:0.1.0 .
#   docker run --rm -p 8080:8080 -e SWITCHBOARD_DEV=1 ghcr.io/switchboard-rs/switchboard:0.1.0
#
# Stage 1 compiles the dependencies against a stub crate first, so that layer is reused
# until Cargo.toml or Cargo.lock change; stage 2 is a slim Debian runtime that runs the
# gateway as uid/gid 10001. No package is installed at runtime: the TLS root store comes
# from the builder and the health check uses bash's /dev/tcp (no curl in the image).

ARG RUST_VERSION=1.95
ARG DEBIAN_SUITE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_SUITE} AS builder
WORKDIR /build

# Dependencies only: a stub lib/main/example with the real manifest and lock file.
COPY Cargo.toml Cargo.lock ./
# jemalloc's build-time settings (.cargo/config.toml [env]).
COPY .cargo ./.cargo
RUN mkdir -p src loadtest \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > loadtest/swarm.rs \
    && cargo build --release --locked \
    && rm -rf src loadtest

# The real sources. COPY keeps the files' old mtimes, so touch the crate roots to make
# sure cargo rebuilds the crate instead of keeping the stub binary.
COPY src ./src
COPY loadtest/swarm.rs ./loadtest/swarm.rs
# The browser app is embedded in the binary (include_str!).
COPY web ./web
COPY clients/js/switchboard.js ./clients/js/switchboard.js
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && mkdir -p /out \
    && objcopy --compress-debug-sections target/release/switchboard /out/switchboard \
    && /out/switchboard --version


FROM debian:${DEBIAN_SUITE}-slim AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="Horizontally scaled real-time gateway: WebSocket + TCP, rooms, DMs, presence, games" \
      org.opencontainers.image.url="https://github.com/switchboard-rs/switchboard" \
      org.opencontainers.image.source="https://github.com/switchboard-rs/switchboard" \
      org.opencontainers.image.documentation="https://github.com/switchboard-rs/switchboard/blob/main/docs/OPERATIONS.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="switchboard-rs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

RUN groupadd --system --gid 10001 switchboard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin switchboard

# CA roots for rediss:// (rustls reads the system store); the slim image has none.
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/switchboard /usr/local/bin/switchboard

# Public listener (/ws, /, /api/v1, probes) and admin listener (/metrics and probes only).
# Production: set SWITCHBOARD_JWT_SECRET or SWITCHBOARD_JWT_PUBLIC_KEY_FILE. Without one
# the image refuses to start (its listen address is not loopback, so dev mode is never
# guessed); SWITCHBOARD_DEV=1 asks for dev mode, where GET /dev/token mints tokens for
# anyone who reaches port 8080: only for trying it out on a trusted host.
ENV SWITCHBOARD_LISTEN=0.0.0.0:8080 \
    SWITCHBOARD_ADMIN_LISTEN=0.0.0.0:9090

USER 10001:10001
EXPOSE 8080 9090
# SIGTERM starts the drain: /readyz turns 503 at once, the listeners stay open for
# SWITCHBOARD_DRAIN_DELAY (new upgrades get 503 + Retry-After), then every client gets
# `reconnect` + close 1012 spread over SWITCHBOARD_DRAIN_TIMEOUT. Give the container at
# least DRAIN_DELAY + DRAIN_TIMEOUT + 10s (docker stop -t / compose stop_grace_period).
STOPSIGNAL SIGTERM

# Liveness only (/healthz never depends on Redis); the port follows SWITCHBOARD_LISTEN.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${SWITCHBOARD_LISTEN##*:}\" && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r status <&3 && [[ $status == *' 200 '* ]]"]

ENTRYPOINT ["/usr/local/bin/switchboard"]
