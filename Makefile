# Everyday targets; the README's two commands need none of them.
GO ?= go

.PHONY: build test fuzz bench fix ci

build:
	$(GO) build -o bin/citadel ./cmd/citadel

test:
	./scripts/test

# Each fuzz target for a short while; FUZZTIME=5m for a longer run.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "$$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/citadel bench api

fix:
	gofmt -w $$(git ls-files '*.go')

ci:
	./.ci/run
