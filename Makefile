# gapwatch — `make help` lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Packages with goroutines of their own: always tested with -race.
RACE_PKGS := ./ingest/... ./storage/... ./dashboards/... ./detect/... ./cmd/...
FUZZTIME ?= 15s
# Tools that deploy/tools.sh installs on first use live here (git-ignored), as do the services' state.
STATE   ?= $(or $(GAPWATCH_STATE_DIR),$(CURDIR)/.state)
export GAPWATCH_PYTHON ?= $(STATE)/venv/bin/python

.PHONY: help build test unit lint services services-stop tools demo bench fuzz clean plugin plugin-test plugin-frontend-test

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/gapwatch
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/gapwatch ./cmd/gapwatch

services: ## install (first time) and start Kafka and ClickHouse on loopback
	@deploy/services.sh start

services-stop: ## stop Kafka and ClickHouse
	@deploy/services.sh stop

tools: ## install what the tests need beyond Go on first use: chDB (virtualenv in .state), chromium, Node.js, rsyslog and syslog-ng (deploy/tools.sh)
	@deploy/tools.sh all >/dev/null

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit: ## unit tests only (no servers needed)
	$(GO) test -count=1 ./...

test: lint services tools ## everything CI runs: lint, unit + integration tests on the real servers (race), SQL on chDB, fuzz
	GAPWATCH_INTEGRATION=1 GAPWATCH_REQUIRE_CHROMIUM=1 $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	GAPWATCH_INTEGRATION=1 $(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -vE '/(ingest|storage|dashboards|detect|cmd)(/|$$)')
	$(MAKE) plugin-test
	$(MAKE) plugin-frontend-test
	$(MAKE) plugin
	$(MAKE) fuzz
	$(MAKE) build
	@echo "make test: all passed"

fuzz: ## run every fuzz target briefly (FUZZTIME, default 15s each)
	$(GO) test ./ingest/decode -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ingest/decode -run '^$$' -fuzz '^FuzzParseTime$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ingest/fetch -run '^$$' -fuzz '^FuzzRecordBatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./detect -run '^$$' -fuzz '^FuzzReadCountsCSV$$' -fuzztime $(FUZZTIME)

demo: build ## the all-in-one demo: embedded Kafka, in-memory store, simulated tenants, API on 127.0.0.1:8080
	./bin/gapwatch demo

bench: services ## ingest vs kcat on the real servers, live alert latency (gap.opened after a stream stops, vs the watermark's floor and static rules), detection quality (NAB, Bikeshare, flights, World Cup 98 web requests, synthetic; vs static, seasonal and daily-drop rules) and scale, hot-path micro-benchmarks (decoder, counter, start-up replay); BENCHFLAGS="-events 100000 -runs 1" for a quick ingest run, LATENCYFLAGS="-runs 1" for one latency run
	$(GO) run ./cmd/benchingest $(BENCHFLAGS)
	$(GO) run ./cmd/benchingest -latency $(LATENCYFLAGS)
	$(GO) run ./cmd/benchdetect -bikeshare "$$(deploy/tools.sh bikeshare)" -flights "$$(deploy/tools.sh flights)"
	$(GO) test -run '^$$' -bench . -benchmem ./ingest/...
	$(GO) test -run '^$$' -bench ReplayStep -benchtime 20x ./detect/

PLUGIN_DIR := dashboards/grafana
PLUGIN_ARCHS := amd64 arm64

# npm ci once per package-lock.json (it writes node_modules/.package-lock.json).
NODE_MODULES := $(PLUGIN_DIR)/node_modules/.package-lock.json
$(NODE_MODULES): $(PLUGIN_DIR)/package-lock.json
	@deploy/tools.sh node >/dev/null
	cd $(PLUGIN_DIR) && npm ci --no-audit --no-fund
	@touch $@

plugin: $(NODE_MODULES) ## build the Grafana datasource plugin into dashboards/grafana/dist: the frontend (webpack) and the Go backend for linux amd64 and arm64
	cd $(PLUGIN_DIR) && npm run build
	@for arch in $(PLUGIN_ARCHS); do \
	  echo "go build $(PLUGIN_DIR)/dist/gpx_gapwatch_linux_$$arch"; \
	  (cd $(PLUGIN_DIR) && GOOS=linux GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o dist/gpx_gapwatch_linux_$$arch ./pkg) || exit 1; \
	done

plugin-test: ## the plugin module's vet and tests; with the real servers, the end-to-end test through the plugin's gRPC
	cd $(PLUGIN_DIR) && $(GO) vet ./...
	cd $(PLUGIN_DIR) && GAPWATCH_INTEGRATION=1 $(GO) test -race -count=1 -timeout 20m ./...

plugin-frontend-test: $(NODE_MODULES) ## the plugin frontend's typecheck, lint and jest tests (Node.js ≥ 20)
	cd $(PLUGIN_DIR) && npm run typecheck && npm run lint && npm run test:ci

clean: ## remove build output (not the services' state; see deploy/README.md)
	rm -rf bin $(PLUGIN_DIR)/dist
