# The profile service's binaries (profiled, profile-gateway, profilectl) on
# Debian 12, built from this repository.
FROM debian:12 AS build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake pkg-config librdkafka-dev libnng-dev libkyotocabinet-dev \
      libprotobuf-c-dev protobuf-c-compiler libjansson-dev libmicrohttpd-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    && cmake --build /build -j"$(nproc)" \
    && cmake --install /build --prefix /opt/profile

FROM debian:12-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      librdkafka1 libnng1 libkyotocabinet16v5 libprotobuf-c1 libjansson4 libmicrohttpd12 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/profiled profile \
    && mkdir -p /var/lib/profiled && chown profile /var/lib/profiled
COPY --from=build /opt/profile /opt/profile
ENV PATH=/opt/profile/bin:$PATH LD_LIBRARY_PATH=/opt/profile/lib
USER profile
WORKDIR /var/lib/profiled
# A core node, configured by PROFILED_* variables (docs/configuration.md);
# the gateway is the same image with the command profile-gateway.
CMD ["profiled"]
