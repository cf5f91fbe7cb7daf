# Breakwater's container image in the standard multi-stage form for Swift servers. For CI that can
# pull base images: it cannot be built on the development machines (no registry access), where
# scripts/image builds the same image offline and the tests check that both agree (docs/deploy.md).
#
#   docker build -t breakwater .
#   docker run -p 8000:8000 -v breakwater-outbox:/app/spool breakwater

# ---- build: the official Swift image, Debian 12 like the run stage ----
FROM swift:6.3-bookworm AS build
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get -q update \
 && apt-get -q install -y --no-install-recommends \
      zlib1g-dev librabbitmq-dev libbrotli-dev libzstd-dev liblzma-dev libbz2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Dependencies in their own layer: a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY . .
RUN scripts/release-build --product breakwater \
 && mkdir /staging \
 && strip --strip-debug -o /staging/breakwater "$(scripts/release-build --show-bin-path)/breakwater" \
 && cp /usr/libexec/swift/linux/swift-backtrace-static /staging/ \
 && cp -R config /staging/config \
 && printf '{"source":"","version":"%s","commit":"","build":"Dockerfile"}\n' "$(swift --version 2>/dev/null | head -1 | tr -d '"')" \
      > /staging/version.json

# ---- run: slim Debian with only the shared libraries the binary links, and librabbitmq4, which it
# loads when QUEUE=rabbitmq ----
FROM debian:bookworm-slim
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get -q update \
 && apt-get -q install -y --no-install-recommends \
      zlib1g librabbitmq4 libbrotli1 libzstd1 liblzma5 libbz2-1.0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 breakwater \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin breakwater
# Owned by root: the collector cannot change its own binary or configuration.
COPY --from=build /staging /app
# The outbox (spool and publish backlog): the one folder the collector writes.
RUN mkdir /app/spool && chown 10001:10001 /app/spool
ENV PORT=8000 SPOOL_DIR=/app/spool \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/app/swift-backtrace-static
WORKDIR /app
USER 10001:10001
EXPOSE 8000
VOLUME ["/app/spool"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/breakwater"]
CMD ["serve"]
