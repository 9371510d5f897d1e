# The two commands a new user needs: `make run` and `make test`.
GO        ?= go
BIN       := bin
DATA_DIR  ?= ./var
HTTP_ADDR ?= 127.0.0.1:8080
REDIS_ADDR ?= 127.0.0.1:6379
TOKEN_FILE := $(DATA_DIR)/operator.token

.PHONY: build run test bench bench-webhook bench-campaign vet fmt token clean

build: ## build backofficed and backoffice into ./bin
	$(GO) build -o $(BIN)/ ./cmd/backofficed ./cmd/backoffice

# run: a local daemon on the defaults. Starts a Redis with AOF under ./var when
# none answers at $(REDIS_ADDR), creates an operator token in $(TOKEN_FILE).
# An exported BACKOFFICE_REDIS_URL wins: then no local Redis is looked for.
run: build token
	@if [ -n "$${BACKOFFICE_REDIS_URL:-}" ]; then \
		echo "using BACKOFFICE_REDIS_URL from the environment" >&2; \
	else \
		REDIS_ADDR=$(REDIS_ADDR) DATA_DIR=$(DATA_DIR) cmd/devtools/ensure-redis.sh serve; \
	fi
	@echo "dashboard and API on http://$(HTTP_ADDR); operator token in $(TOKEN_FILE)"
	BACKOFFICE_REDIS_URL=$${BACKOFFICE_REDIS_URL:-redis://$(REDIS_ADDR)/0} \
	BACKOFFICE_HTTP_ADDR=$${BACKOFFICE_HTTP_ADDR:-$(HTTP_ADDR)} \
	BACKOFFICE_DATA_DIR=$${BACKOFFICE_DATA_DIR:-$(DATA_DIR)} \
	BACKOFFICE_API_TOKENS=$${BACKOFFICE_API_TOKENS:-local:operator:$$(cat $(TOKEN_FILE))} \
	$(BIN)/backofficed

# token: the daemon writes its outbox, imports and secrets in $(DATA_DIR), and
# make run passes the token file's contents as the operator token: an
# unreadable file would give an empty secret, so both are checked here.
token:
	@mkdir -p $(DATA_DIR)
	@test -w $(DATA_DIR) || { echo "$(DATA_DIR) is not writable by $$(id -un) (owner: $$(stat -c %U $(DATA_DIR))): fix its owner or use make run DATA_DIR=./var2" >&2; exit 1; }
	@test -s $(TOKEN_FILE) || (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > $(TOKEN_FILE))
	@test -r $(TOKEN_FILE) || { echo "$(TOKEN_FILE) is not readable by $$(id -un) (owner: $$(stat -c %U $(TOKEN_FILE))): fix its owner, or delete it to make a new token" >&2; exit 1; }

# test: the whole suite against real servers (redis-server started per test).
test:
	@cmd/devtools/ensure-redis.sh test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

bench: bench-webhook bench-campaign
	@cmd/devtools/ensure-redis.sh install
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m ./...

# bench-webhook: signed Twilio webhooks from cmd/loadwebhook against a daemon
# it starts on a private redis-server, then checks every answered message is
# on a timeline exactly once. First as fast as answered (throughput, with a
# bare asynq enqueue loop as baseline), then at a fixed rate (latency). It
# sends over raw keep-alive HTTP/1.1 connections, as wrk does, and prints the
# CPU per request of the daemon, redis-server and itself.
WEBHOOK_DURATION ?= 20s
WEBHOOK_CONCURRENCY ?= 64
WEBHOOK_RATE ?= 5000
bench-webhook: build
	@cmd/devtools/ensure-redis.sh install
	$(GO) build -o $(BIN)/ ./cmd/loadwebhook
	$(BIN)/loadwebhook -daemon $(BIN)/backofficed -duration $(WEBHOOK_DURATION) -concurrency $(WEBHOOK_CONCURRENCY)
	$(BIN)/loadwebhook -daemon $(BIN)/backofficed -duration $(WEBHOOK_DURATION) -rate $(WEBHOOK_RATE) -concurrency 256 -baseline 0

# bench-campaign: the campaign figures from cmd/loadcampaign, each against a
# baseline of the same run, on private redis-servers and daemons: go-mail
# straight to an SMTP sink vs a 100,000-recipient campaign through the
# daemon into the same sink; the launch of 1,000,000 recipients (planning
# time, peak RSS, Redis bytes per recipient); SMS at 200/s against a local
# Twilio API that answers 5% 429 and 1% 500. Checks every recipient got
# exactly one message. CAMPAIGN_FLAGS=-quick for a run of a few minutes.
CAMPAIGN_FLAGS ?=
bench-campaign: build
	@cmd/devtools/ensure-redis.sh install
	$(GO) build -o $(BIN)/ ./cmd/loadcampaign
	$(BIN)/loadcampaign -daemon $(BIN)/backofficed $(CAMPAIGN_FLAGS)

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
