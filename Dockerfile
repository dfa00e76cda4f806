# onbehalf as a container image: the same binary as `go run .`, built without
# cgo (SQLite is modernc.org/sqlite, pure Go) and run as a non-root user on a
# distroless base that holds nothing but CA certificates and time zone data.
#
#   docker build -t onbehalf .
#   docker run -p 8080:8080 -v onbehalf-data:/data -e ZENDESK_SUBDOMAIN=acme \
#     -e ZENDESK_CLIENT_ID=onbehalf -e ZENDESK_CLIENT_SECRET=... onbehalf
#
# See the README's "Deploying" section, and compose.yaml for PostgreSQL with
# two replicas.

# The build stage runs on the builder's own platform and cross-compiles, so a
# multi-platform build (docker buildx --platform linux/amd64,linux/arm64)
# needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/onbehalf . \
 && mkdir /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/onbehalf /usr/local/bin/onbehalf
# /data belongs to nonroot (65532) in the image, so a fresh named volume
# mounted there inherits that owner and the app can write its SQLite file and
# generated key without running as root.
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data ADDR=:8080
VOLUME /data
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/onbehalf"]
