# Cohort's commands. The two that matter:
#   make run    the whole job on this machine: Temporal dev server, emulator, worker, starter
#   make test   every check and every test, end-to-end ones included (what CI runs)

GO ?= go

# Tool versions, pinned; scripts/run-local.sh, scripts/test.sh and .ci/run install through
# `make tools`, so they are stated only here. CLI v1.5.1 embeds server 1.29.1 and UI 2.42.1
# (later CLIs refuse `go install`); workflowcheck v0.6.0 builds and runs on Go 1.26.
# The Temporal server on PostgreSQL (scripts/temporal-postgres.sh, docker-compose.yml's
# image tag) is the same 1.29.1, built as a tool (tools/temporal), never as a dependency.
TEMPORAL_CLI_VERSION := v1.5.1
WORKFLOWCHECK_VERSION := v0.6.0
TEMPORAL_SERVER_VERSION := v1.29.1

GOBIN := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)
TEMPORAL_CLI ?= $(GOBIN)/temporal
WORKFLOWCHECK := $(GOBIN)/workflowcheck
# The server and its SQL tool (binaries `server`, `sql`) in a folder of their own, since
# their names are generic.
TEMPORAL_SERVER_DIR := $(GOBIN)/temporal-server-$(TEMPORAL_SERVER_VERSION)
# The workflows package may add workflowcheck.config.yaml to mark calls it has
# checked by hand as deterministic (see the workflowcheck README).
WORKFLOWCHECK_FLAGS := $(if $(wildcard workflowcheck.config.yaml),-config workflowcheck.config.yaml)

.PHONY: run test test-postgres lint tools temporal-server temporal-server-dir build bench

run:
	scripts/run-local.sh

test:
	scripts/test.sh

# Only the end-to-end test on a Temporal server on PostgreSQL with two workers (several
# minutes; builds the server the first time). make test runs it with everything else.
test-postgres: tools temporal-server
	TEMPORAL_POSTGRES_TEST=1 $(GO) test ./e2e -run 'TestPostgres' -count=1 -v -timeout 20m

lint: tools
	$(GO) vet ./...
	$(WORKFLOWCHECK) $(WORKFLOWCHECK_FLAGS) ./workflows/...

tools: $(TEMPORAL_CLI) $(WORKFLOWCHECK)

# The CLI and the server are built from tools/temporal, a module of its own whose one
# requirement is the CLI: the server is then built with exactly the CLI's module versions (it
# is the server the CLI embeds), so nearly all of its packages come from the CLI's build
# cache. On a fresh machine that saves the several minutes a second, separate compile of the
# server's dependencies took (`go install server@version` resolves its own, different versions).
TEMPORAL_TOOLS_MOD := tools/temporal

$(TEMPORAL_CLI):
	@test "$@" = "$(GOBIN)/temporal" || { echo "TEMPORAL_CLI=$@ does not exist"; exit 1; }
	@grep -q 'github.com/temporalio/cli $(TEMPORAL_CLI_VERSION)$$' $(TEMPORAL_TOOLS_MOD)/go.mod || \
	  { echo "$(TEMPORAL_TOOLS_MOD)/go.mod does not require the CLI $(TEMPORAL_CLI_VERSION)"; exit 1; }
	@echo "building the Temporal CLI $(TEMPORAL_CLI_VERSION) into $(GOBIN) (once; a few minutes)"
	cd $(TEMPORAL_TOOLS_MOD) && $(GO) build -o $(GOBIN)/temporal github.com/temporalio/cli/cmd/temporal

# The Temporal server and temporal-sql-tool; their schema files come with the module's
# source in the module cache (`make -s temporal-server-dir` prints where).
temporal-server: $(TEMPORAL_SERVER_DIR)/server $(TEMPORAL_SERVER_DIR)/sql

# After the CLI (order only), so that its build cache is there to reuse.
$(TEMPORAL_SERVER_DIR)/server $(TEMPORAL_SERVER_DIR)/sql &: | $(TEMPORAL_CLI)
	@cd $(TEMPORAL_TOOLS_MOD) && test "$$($(GO) list -m -f '{{.Version}}' go.temporal.io/server)" = $(TEMPORAL_SERVER_VERSION) || \
	  { echo "$(TEMPORAL_TOOLS_MOD) does not build the server $(TEMPORAL_SERVER_VERSION)"; exit 1; }
	@echo "building the Temporal server $(TEMPORAL_SERVER_VERSION) into $(TEMPORAL_SERVER_DIR) (once; reuses the CLI's build)"
	cd $(TEMPORAL_TOOLS_MOD) && $(GO) build -o $(TEMPORAL_SERVER_DIR)/ go.temporal.io/server/cmd/server go.temporal.io/server/cmd/tools/sql

temporal-server-dir:
	@echo $(TEMPORAL_SERVER_DIR)

$(WORKFLOWCHECK):
	@echo "installing workflowcheck $(WORKFLOWCHECK_VERSION) into $(GOBIN)"
	$(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

build:
	$(GO) build -o bin/ ./...

# bench/ is written separately: a harness that prints figures, not a test.
bench:
	$(GO) run ./bench
