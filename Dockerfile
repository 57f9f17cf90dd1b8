# Airbyte connector image of destination-kafka.
# Build: docker build -t airbyte/destination-kafka:0.2.0 .   (or podman, see README)

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev libsasl2-dev pkg-config make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY spec spec
# The same command and profile as scripts/test, so the image holds the binary the acceptance suite ran.
RUN cargo build --release --locked --bin destination-kafka

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libsasl2-2 libsasl2-modules-gssapi-mit ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --user-group --home-dir /airbyte --create-home airbyte
COPY --from=build /src/target/release/destination-kafka /airbyte/bin/destination-kafka
WORKDIR /airbyte
USER airbyte
ENV AIRBYTE_ENTRYPOINT="/airbyte/bin/destination-kafka"
ENTRYPOINT ["/airbyte/bin/destination-kafka"]
LABEL io.airbyte.name="airbyte/destination-kafka"
LABEL io.airbyte.version="0.2.0"
