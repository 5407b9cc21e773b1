# syntax=docker/dockerfile:1
#
# macrolake container image.
#
#   docker build -t macrolake:0.1.0 .
#   docker run --rm -v macrolake-lake:/app/lake macrolake:0.1.0 run nightly
#   docker run -d --stop-timeout 1900 -p 127.0.0.1:9464:9464 \
#       -e MACROLAKE_LAKE=s3://bucket/prefix -e AWS_REGION -e AWS_ACCESS_KEY_ID \
#       -e AWS_SECRET_ACCESS_KEY macrolake:0.1.0
#
# The default command is the scheduler daemon. `docker stop` waits only 10 s before SIGKILL;
# give it --stop-timeout 1900 (compose: stop_grace_period: 1900s) so a running step can finish
# (nightly's step_timeout_secs is 1800). See infra/README.md.

############################
# Builder
############################
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# 1. Dependencies only: the real manifest and lock file with stub sources. This layer is
#    rebuilt only when Cargo.toml or Cargo.lock change. (The [[test]] target's file is not
#    needed: cargo build compiles the lib and the bin only.)
COPY Cargo.toml Cargo.lock ./
# The patched DataFusion SQL planner ([patch.crates-io]; vendor/datafusion-sql/README.md).
COPY vendor ./vendor
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src

# 2. The crate itself. src/sources/fedwatch embeds sql/seeds/fomc_meetings.csv and src/chart
#    embeds assets/fonts/DejaVuSans.ttf (include_str!/include_bytes!), so both are needed at
#    compile time; the rest of sql/ is not, and is left out here so that editing a model does
#    not recompile the binary.
COPY src ./src
COPY sql/seeds ./sql/seeds
COPY assets ./assets
# COPY keeps the files' mtimes, which can be older than the stub build's outputs: touch the
# crate roots so cargo rebuilds the crate instead of reusing the stub.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && install -D -m 0755 target/release/macrolake /out/macrolake

############################
# Runtime
############################
FROM debian:bookworm-slim

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="macrolake" \
      org.opencontainers.image.description="Macro-liquidity data pipeline: Fed balance sheet, rates, EPS and asset prices into a Delta lake, queried with SQL" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# rustls is built with native roots: it needs the system CA bundle for every HTTPS call.
# (Time zones are compiled into the binary; tzdata is not needed.) Not version-pinned on
# purpose: Debian drops superseded versions from the archive, and the CA bundle should be current.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 macrolake \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin macrolake

COPY --from=builder /out/macrolake /usr/local/bin/macrolake

# The binary reads macrolake.toml, sql/ and schedules/ from its working directory. They stay
# owned by root (read-only for the service user). ./lake is the config's default local lake:
# it is the only writable directory, and the place to mount a volume when no object-store
# lake (MACROLAKE_LAKE=s3://…) is used.
WORKDIR /app
COPY macrolake.toml ./
COPY sql ./sql
COPY schedules ./schedules
RUN install -d -o 10001 -g 10001 -m 0750 /app/lake

USER 10001:10001
EXPOSE 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["macrolake"]
CMD ["daemon", "--metrics-listen", "0.0.0.0:9464"]
