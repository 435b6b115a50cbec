# sifkernel — build, test, install.
#   make            build bin/sifkernel
#   make demo       a job's whole lifecycle on a simulated GPU node (no root, no Slurm)
#   make try        kernel add/check/fix on built-in examples (no root, no Slurm)
#   make test       unit and integration tests (what CI runs)
#   make test-cluster  end-to-end tests on a real Slurm cluster on this machine (root)
#   make lint       gofmt, go vet, shellcheck
#   make bench      node-cache benchmarks (ratios against cp, measured in one run)
#   make cover      coverage per package, with what hooks run as the job user (root)
#   make install    install to $(PREFIX)/bin (default /usr/local)

GO      ?= go
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: cover build demo try test test-unit test-cluster test-cluster-vm soak fuzz lint bench install clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sifkernel ./wrapper/cmd/sifkernel
	$(GO) build -trimpath -o bin/mkimage ./wrapper/cmd/mkimage

demo: build
	bin/sifkernel demo

try: build
	examples/try.sh

test: lint test-unit fuzz

test-unit:
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./wrapper/apptainer
	$(GO) test -run='^$$' -fuzz=FuzzCheck -fuzztime=$(FUZZTIME) ./wrapper/kernelspec

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v shellcheck >/dev/null; then shellcheck -x .ci/run testcluster/up testcluster/down testcluster/run-tests testcluster/provision testcluster/lib.sh testcluster/bin/* examples/*.sh examples/jobs/*.sbatch templates/jobs/*.sbatch slurm/profile.d/sifkernel.sh testcluster/bench/*.sh testcluster/image/build testcluster/soak/run wrapper/sifimage/gen-minimal.sh; \
	 elif [ "$$SIFKERNEL_NO_SKIP" = 1 ]; then echo "shellcheck missing"; exit 1; \
	 else echo "shellcheck not installed: shell scripts not linted"; fi

bench: build
	testcluster/bench/cache.sh
	testcluster/bench/kernels.sh
	@if [ "$$(id -u)" = 0 ]; then testcluster/bench/hooks.sh; else echo "hooks.sh needs root: skipped"; fi

# Coverage of every package. The hooks' user part runs in a child binary as
# the job user; the lifecycle tests build that child with -cover and it
# writes to GOCOVERDIR, so the user part counts (as root: 77 % of the
# lifecycle package instead of the 39 % the test process alone sees).
COVER := $(CURDIR)/cover
cover:
	rm -rf $(COVER) && mkdir -p $(COVER)/unit $(COVER)/child && chmod 1777 $(COVER)/child
	SIFKERNEL_COVERDIR=$(COVER)/child $(GO) test -count=1 -cover -coverpkg=github.com/sifkernel/sifkernel/... ./... \
		-args -test.gocoverdir=$(COVER)/unit >$(COVER)/test.log || { cat $(COVER)/test.log; exit 1; }
	$(GO) tool covdata percent -i=$(COVER)/unit,$(COVER)/child
	$(GO) tool covdata textfmt -i=$(COVER)/unit,$(COVER)/child -o $(COVER)/cover.out
	@$(GO) tool cover -func=$(COVER)/cover.out | tail -1
	@echo "HTML: go tool cover -html=$(COVER)/cover.out"

install: build
	install -D -m 0755 bin/sifkernel $(DESTDIR)$(PREFIX)/bin/sifkernel

clean:
	rm -rf bin

# The end-to-end tests on a real Slurm cluster on this machine (root).
# Brings the cluster up, runs the tests, prints the logs if they fail, and
# brings it down again.
test-cluster: build
	testcluster/run-tests

# Many jobs with cancels, a node crash and a full disk, under a CPU hog;
# SOAK_ARGS="-jobs 60" for a short round (what CI runs).
soak: build
	testcluster/soak/run $(SOAK_ARGS)

# The same tests on the Vagrant cluster, from inside the ctl VM (root).
test-cluster-vm:
	SIFKERNEL_CLUSTER_SSH=1 SLURM_CONF=/etc/slurm/slurm.conf go test -tags cluster -count=1 -v ./testcluster/e2e
