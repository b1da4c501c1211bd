# Cohort's commands. The two that matter:
#   make run    the whole job on this machine: Temporal dev server, emulator, worker, starter
#   make test   every check and every test, end-to-end ones included (what CI runs)

GO ?= go

# Tool versions, pinned; scripts/run-local.sh, scripts/test.sh and .ci/run install through
# `make tools`, so they are stated only here. CLI v1.5.1 embeds server 1.29.1 and UI 2.42.1
# (later CLIs refuse `go install`); workflowcheck v0.6.0 builds and runs on Go 1.26.
TEMPORAL_CLI_VERSION := v1.5.1
WORKFLOWCHECK_VERSION := v0.6.0

GOBIN := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)
TEMPORAL_CLI ?= $(GOBIN)/temporal
WORKFLOWCHECK := $(GOBIN)/workflowcheck
# The workflows package may add workflowcheck.config.yaml to mark calls it has
# checked by hand as deterministic (see the workflowcheck README).
WORKFLOWCHECK_FLAGS := $(if $(wildcard workflowcheck.config.yaml),-config workflowcheck.config.yaml)

.PHONY: run test lint tools build bench

run:
	scripts/run-local.sh

test:
	scripts/test.sh

lint: tools
	$(GO) vet ./...
	$(WORKFLOWCHECK) $(WORKFLOWCHECK_FLAGS) ./workflows/...

tools: $(TEMPORAL_CLI) $(WORKFLOWCHECK)

$(TEMPORAL_CLI):
	@test "$@" = "$(GOBIN)/temporal" || { echo "TEMPORAL_CLI=$@ does not exist"; exit 1; }
	@echo "installing the Temporal CLI $(TEMPORAL_CLI_VERSION) into $(GOBIN) (once; about 2 minutes)"
	$(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

$(WORKFLOWCHECK):
	@echo "installing workflowcheck $(WORKFLOWCHECK_VERSION) into $(GOBIN)"
	$(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

build:
	$(GO) build -o bin/ ./...

# bench/ is written separately: a harness that prints figures, not a test.
bench:
	$(GO) run ./bench
