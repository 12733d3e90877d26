# syntax=docker/dockerfile:1
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t authresolver .
#   docker run -p 8080:8080 -e AUTHRESOLVER_REDIS_URL=redis://redis:6379/0 ... authresolver

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/authresolver ./cmd/authresolver

# distroless/static: no shell, no package manager, CA certificates for HTTPS
# JWKS URLs, and a nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authresolver /authresolver
USER nonroot:nonroot
# Inside a container the admin listener must not be loopback-only to be
# reachable at all; publish 9090 only on a private network.
ENV AUTHRESOLVER_LISTEN_ADDR=:8080 \
    AUTHRESOLVER_ADMIN_ADDR=:9090
EXPOSE 8080 9090
# No shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/authresolver", "healthcheck"]
ENTRYPOINT ["/authresolver"]
CMD ["serve"]
