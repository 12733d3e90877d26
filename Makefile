GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test bench lint fuzz

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/authresolver ./cmd/authresolver

# test is what CI runs (.ci/run): vet, then every package including the e2e
# suite against real redis-server, nginx and caddy.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

bench:
	$(GO) run ./bench

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	@command -v golangci-lint >/dev/null && golangci-lint run ./... || echo "golangci-lint not installed; ran gofmt and go vet only"

fuzz:
	$(GO) test ./resolver -run '^$$' -fuzz FuzzResolve -fuzztime 30s
