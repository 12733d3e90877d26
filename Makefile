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

# lint runs golangci-lint (v2, .golangci.yml) when it is on PATH or in
# $(go env GOPATH)/bin; its findings fail the target.
GOLANGCI_LINT ?= $(shell command -v golangci-lint 2>/dev/null || ls "$$($(GO) env GOPATH)/bin/golangci-lint" 2>/dev/null)

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	@if [ -n "$(GOLANGCI_LINT)" ]; then $(GOLANGCI_LINT) run ./...; else echo "golangci-lint not installed; ran gofmt and go vet only"; fi

fuzz:
	$(GO) test ./resolver -run '^$$' -fuzz FuzzResolve -fuzztime 30s
