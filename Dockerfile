# Airbyte connector image of destination-kafka.
# Build: scripts/build-image (docker where an engine runs, else podman; makes missing base images locally), or
#        docker build -t airbyte/destination-kafka:0.2.0 .

FROM rust:1.95-slim-bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev libsasl2-dev libcurl4-openssl-dev pkg-config make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependency graph first, in its own layer: a change of the connector's source rebuilds only the connector.
# (tests/support is a dev-dependency: Cargo reads its manifest to resolve the graph, and builds nothing of it; the
# build script compiles proto/, Speed Mode's Protobuf messages.)
COPY Cargo.toml Cargo.lock build.rs ./
COPY tests/support tests/support
COPY proto proto
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --profile dist --locked --bin destination-kafka \
 && rm -rf src target/dist/destination-kafka target/dist/.fingerprint/destination-kafka-* \
           target/dist/deps/destination_kafka-* target/dist/deps/libdestination_kafka-*
COPY src src
COPY spec spec
# `dist` is the release profile without debug info, stripped (the shipped binary); sources are touched so an older
# copied mtime can never pass for the placeholder built above.
RUN touch src/main.rs src/lib.rs && cargo build --profile dist --locked --bin destination-kafka

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# libsasl2-modules-gssapi-mit and krb5-user: Kerberos (GSSAPI) with a keytab, for which librdkafka runs `kinit`;
# libcurl4: OAUTHBEARER OIDC token requests; ca-certificates: TLS with the system trust store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libsasl2-2 libsasl2-modules-gssapi-mit krb5-user libcurl4 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && groupadd --gid 1000 airbyte \
 && useradd --uid 1000 --gid 1000 --home-dir /airbyte --create-home airbyte
COPY --from=build /src/target/dist/destination-kafka /airbyte/bin/destination-kafka
WORKDIR /airbyte
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
ENV AIRBYTE_ENTRYPOINT="/airbyte/bin/destination-kafka"
ENTRYPOINT ["/airbyte/bin/destination-kafka"]
LABEL io.airbyte.name="airbyte/destination-kafka"
LABEL io.airbyte.version="0.2.0"
