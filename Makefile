# sifkernel — build, test, install.
#   make            build bin/sifkernel
#   make demo       a job's whole lifecycle on a simulated GPU node (no root, no Slurm)
#   make try        kernel add/check/fix on built-in examples (no root, no Slurm)
#   make test       unit and integration tests (what CI runs; as root, the
#                   Jupyter differential test also runs against Debian 13's
#                   Jupyter: make debian13 builds its chroot first)
#   make test-cluster  end-to-end tests on a real Slurm cluster on this machine (root)
#   make test-package  build, lint, install the .deb, run the cluster on it, remove it (root)
#   make test-vm    the cluster tests on three Debian VMs under QEMU (root; DISTRO=trixie)
#   make test-vm-ci the part of it CI runs (root)
#   make bench-vm   staging against NFS slowed by tc netem, on the VM cluster (root)
#   make soak-vm    100 jobs, copies that outlast the deadline, a node reset, on the VM cluster (root)
#   make lint       gofmt, go vet, staticcheck, errcheck (every dropped error
#                   is one .errcheck-excludes allows or a written `_ =`), shellcheck
#   make bench      node-cache benchmarks (ratios against cp, measured in one run)
#   make cover      coverage per package, with what hooks run as the job user (root)
#   make man        manual pages, generated from the commands, into build/man
#   make install    binary, man pages, completions, config, systemd units, tmpfiles.d,
#                   profile.d, Jupyter's base config, docs under $(DESTDIR)$(PREFIX)
#                   (default /usr/local; CACHEDIR=/path for a cache.dir of the site's)
#   make package    dist/sifkernel_<version>_amd64.deb and .rpm (nfpm)

GO      ?= go
PREFIX  ?= /usr/local
# Where each part goes; a package (PREFIX=/usr) puts the config in /etc.
BINDIR      ?= $(PREFIX)/bin
# The Epilog's small cleanup child; sifkernel looks for it in ../libexec/sifkernel.
LIBEXECDIR  ?= $(dir $(BINDIR))libexec
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/sifkernel
UNITDIR     ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
# The node cache root (cache.dir): the installed config, the tmpfiles.d line
# that makes it at boot and the profile.d snippets name it.
CACHEDIR    ?= /tmp/sifkernel
# What install rewrites in the files it copies from the tree.
PATHS_SED   := -e 's\#/usr/local/bin/sifkernel\#$(BINDIR)/sifkernel\#g' -e 's\#/tmp/sifkernel\#$(CACHEDIR)\#g'
# A version dpkg and rpm accept: the tag without its v (0.1.0), commits after
# it as +gitN.HASH (rpm takes no '-'), else 0.0.0 and the commit count and
# hash (0.0.0+git123.abcdef0); +dirty for local changes.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null | sed -e 's/^v//' -e 's/-\([0-9]*\)-g\([0-9a-f]*\)/+git\1.\2/' -e 's/-dirty$$/+dirty/' | grep . || \
	echo "0.0.0+git$$(git rev-list --count HEAD 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo none)$$(git diff --quiet HEAD 2>/dev/null || echo .dirty)")
NFPM    := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRCHECK    := github.com/kisielk/errcheck@v1.30.0
# Imports in three groups: the standard library, other modules, this one.
GCI         := github.com/daixiang0/gci@v0.14.0
GCIFLAGS    := -s standard -s default -s 'prefix(github.com/sifkernel/sifkernel)'
LINTTAGS    := cluster,vmcluster,sifkernel_forge
LDFLAGS := -s -w -X main.version=$(VERSION)
# PIE, which also gets RELRO from the external linker: what Debian's
# hardening expects of a binary root runs (lintian checks it).
GOBUILDFLAGS ?= -buildmode=pie
# Fuzzing is bounded by executions, not seconds: Go 1.26's coordinator can
# fail a run with "context deadline exceeded" when a -fuzztime duration ends
# (go.dev/issue/75804, fixed in Go 1.27). FUZZTIME=2m still works by hand.
FUZZ_PARSE ?= 200000x
FUZZ_CHECK ?= 10000x

.PHONY: imports debian13 test-vm test-vm-ci bench-vm soak-vm test-package man package cover build demo try test test-unit test-cluster test-cluster-vm soak fuzz lint bench install clean

build:
	$(GO) build $(GOBUILDFLAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/sifkernel ./wrapper/cmd/sifkernel
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/sifkernel-cleanup ./wrapper/cmd/sifkernel-cleanup
	$(GO) build -trimpath -o bin/mkimage ./wrapper/cmd/mkimage

demo: build
	bin/sifkernel demo

try: build
	examples/try.sh

test: lint test-unit fuzz

# Debian 13's Jupyter in a chroot, for the differential test (root, ~1 min once).
debian13:
	testcluster/debian13/build

test-unit:
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(or $(FUZZTIME),$(FUZZ_PARSE)) ./wrapper/apptainer
	$(GO) test -run='^$$' -fuzz=FuzzCheck -fuzztime=$(or $(FUZZTIME),$(FUZZ_CHECK)) ./wrapper/kernelspec

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@out=$$($(GO) run $(GCI) list $(GCIFLAGS) $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "imports out of their groups (make imports):"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(LINTTAGS) ./...
	$(GO) run $(STATICCHECK) -tags $(LINTTAGS) ./...
	$(GO) run $(ERRCHECK) -exclude .errcheck-excludes -tags $(LINTTAGS) ./...
	@# A raw t.Skip or b.Skip passes CI without running: testkit.Skip fails under SIFKERNEL_NO_SKIP=1.
	@if git grep -nE '\b[tb]\.(Skip|Skipf|SkipNow)\(' -- '*.go' ':!testcluster/testkit/*'; then echo "use testkit.Skip, not t.Skip or b.Skip"; exit 1; fi
	@# Slurm's variables are read in wrapper/slurm (GPU signals: wrapper/node) alone.
	@if git grep -nE '(etenv|LookupEnv)\("SLURM' -- 'wrapper/*.go' ':!wrapper/slurm/*' ':!wrapper/node/*' ':!*_test.go'; then echo "read Slurm's variables through wrapper/slurm"; exit 1; fi
	@if command -v shellcheck >/dev/null; then shellcheck -x .ci/run testcluster/up testcluster/down testcluster/run-tests testcluster/package-test testcluster/lib.sh testcluster/bin/* examples/*.sh examples/jobs/*.sbatch templates/jobs/*.sbatch slurm/profile.d/sifkernel.sh testcluster/bench/*.sh testcluster/image/build testcluster/debian-mirror testcluster/debian13/build testcluster/vm/build-box testcluster/vm/cluster testcluster/vm/provision testcluster/vm/run-tests testcluster/vm/bench-nfs testcluster/vm/soak testcluster/vm/stage-files testcluster/vm/e2e-on-ctl testcluster/vm/vagrant-box testcluster/vm/vagrant-cluster testcluster/soak/run wrapper/sifimage/gen-minimal.sh slurm/package/deb/* slurm/package/rpm/*; \
	 elif [ "$$SIFKERNEL_NO_SKIP" = 1 ]; then echo "shellcheck missing"; exit 1; \
	 else echo "shellcheck not installed: shell scripts not linted"; fi

# Puts every file's imports in their groups (make lint checks them).
imports:
	$(GO) run $(GCI) write $(GCIFLAGS) $$(git ls-files '*.go')

bench: build
	testcluster/bench/cache.sh
	testcluster/bench/kernels.sh
	@if [ "$$(id -u)" = 0 ]; then testcluster/bench/hooks.sh; else echo "hooks.sh needs root: skipped"; fi
	@if [ "$$(id -u)" = 0 ]; then testcluster/bench/site.sh; else echo "site.sh needs root: skipped"; fi

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

man:
	rm -rf build/man
	$(GO) run ./wrapper/cmd/genman -version $(VERSION) -config examples/config.toml -o build/man

# Everything a site needs. The config is installed only where there is
# none (a package marks it a conffile instead); paths inside the units,
# profile.d snippets and slurm.conf snippet are rewritten to BINDIR.
install: build man
	install -D -m 0755 bin/sifkernel $(DESTDIR)$(BINDIR)/sifkernel
	install -D -m 0755 bin/sifkernel-cleanup $(DESTDIR)$(LIBEXECDIR)/sifkernel/sifkernel-cleanup
	for p in build/man/*; do \
		d=$(DESTDIR)$(MANDIR)/man$${p##*.}; install -D -m 0644 $$p $$d/$${p##*/} && gzip -9nf $$d/$${p##*/} || exit 1; \
	done
	install -D -m 0644 templates/completion/bash $(DESTDIR)$(BASHCOMPDIR)/sifkernel
	install -D -m 0644 templates/completion/zsh $(DESTDIR)$(ZSHCOMPDIR)/_sifkernel
	[ -e $(DESTDIR)$(SYSCONFDIR)/sifkernel/config.toml ] || { \
		install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/sifkernel && \
		sed 's#^dir = "/tmp/sifkernel"$$#dir = "$(CACHEDIR)"#' examples/config.toml >$(DESTDIR)$(SYSCONFDIR)/sifkernel/config.toml && \
		chmod 0644 $(DESTDIR)$(SYSCONFDIR)/sifkernel/config.toml; }
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/profile.d $(DESTDIR)$(DOCDIR)/examples
	for u in slurm/systemd/*; do \
		sed 's#/usr/local/bin/sifkernel#$(BINDIR)/sifkernel#g' $$u >$(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	for f in slurm/profile.d/*; do \
		sed $(PATHS_SED) $$f >$(DESTDIR)$(SYSCONFDIR)/profile.d/$${f##*/} || exit 1; \
	done
	install -d -m 0755 $(DESTDIR)$(TMPFILESDIR)
	sed 's#/tmp/sifkernel#$(CACHEDIR)#g' slurm/tmpfiles.d/sifkernel.conf >$(DESTDIR)$(TMPFILESDIR)/sifkernel.conf
	@# Jupyter's base config: never over a site's own (append ours to it then).
	if [ -e $(DESTDIR)$(SYSCONFDIR)/jupyter/jupyter_config.py ] && ! cmp -s slurm/jupyter/jupyter_config.py $(DESTDIR)$(SYSCONFDIR)/jupyter/jupyter_config.py; then \
		echo "$(DESTDIR)$(SYSCONFDIR)/jupyter/jupyter_config.py exists: append slurm/jupyter/jupyter_config.py to it (see slurm/README.md)"; \
	else \
		install -D -m 0644 slurm/jupyter/jupyter_config.py $(DESTDIR)$(SYSCONFDIR)/jupyter/jupyter_config.py; \
	fi
	sed 's#/usr/local/bin/sifkernel#$(BINDIR)/sifkernel#g' slurm/slurm.conf.snippet >$(DESTDIR)$(DOCDIR)/slurm.conf.snippet
	install -m 0644 README.md slurm/package/copyright $(DESTDIR)$(DOCDIR)/
	install -m 0644 slurm/README.md $(DESTDIR)$(DOCDIR)/ADMIN.md
	install -m 0644 templates/modulefiles/sifkernel.lua $(DESTDIR)$(DOCDIR)/examples/sifkernel.lua
	install -m 0644 examples/config.toml examples/jobs/*.sbatch templates/jobs/jupyter.sbatch $(DESTDIR)$(DOCDIR)/examples/
	chmod 0644 $(DESTDIR)$(UNITDIR)/sifkernel-* $(DESTDIR)$(SYSCONFDIR)/profile.d/sifkernel.* $(DESTDIR)$(DOCDIR)/slurm.conf.snippet $(DESTDIR)$(TMPFILESDIR)/sifkernel.conf

# The .deb and .rpm, from what `make install` puts in a staging tree
# (slurm/package/nfpm.yaml lists it; nfpm is pinned and run with go run).
package:
	rm -rf dist && mkdir -p dist
	$(MAKE) install DESTDIR=$(CURDIR)/dist/root PREFIX=/usr
	sed -e "s/@VERSION@/$(VERSION)/" -e "s/@DATE@/$$(date -R -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s))/" \
		slurm/package/changelog | gzip -9n >dist/changelog.gz
	cd dist && VERSION=$(VERSION) $(GO) run $(NFPM) package --config ../slurm/package/nfpm.yaml --packager deb --target .
	cd dist && VERSION=$(VERSION) $(GO) run $(NFPM) package --config ../slurm/package/nfpm.yaml --packager rpm --target .
	@ls -l dist/*.deb dist/*.rpm

clean:
	rm -rf bin build dist cover

# The end-to-end tests on a real Slurm cluster on this machine (root).
# Brings the cluster up, runs the tests, prints the logs if they fail, and
# brings it down again.
test-cluster: build
	testcluster/run-tests

# The packages as a site gets them: lintian, rpm -qlp, dpkg -i, systemd-analyze
# verify, the cluster tests on the installed .deb, dpkg -r and -P.
test-package:
	testcluster/package-test

# Many jobs with cancels, a node crash and a full disk, under a CPU hog;
# SOAK_ARGS="-jobs 60" for a short round (what CI runs).
soak: build
	testcluster/soak/run $(SOAK_ARGS)

# The same tests on three real Debian VMs (plain QEMU; TCG where there is no
# usable KVM), with systemd, NFS home, pam_slurm_adopt and the .deb
# installed, plus a node rebooted mid-job (root). DISTRO=trixie: Debian 13.
DISTRO ?= bookworm
test-vm:
	DISTRO=$(DISTRO) testcluster/vm/run-tests

# What CI runs of it: the scenarios only real VMs can run (a GPU job on a
# node whose home is NFS, ssh-style idev through pam_slurm_adopt, a node
# reset mid-job); about 13 minutes with a cold box, which keeps .ci/run
# under 30 on a fresh machine.
VM_CI_TESTS = ^(TestGPUJob|TestIdevOverSSH|TestRebootMidJob)$$
test-vm-ci:
	DISTRO=bookworm VM_TEST_RUN='$(VM_CI_TESTS)' testcluster/vm/run-tests

# Staging against reading in place, on the VM cluster's NFS home slowed by tc netem (root).
bench-vm:
	DISTRO=$(DISTRO) testcluster/vm/bench-nfs

# The hooks' deadline on the VM cluster: 100 jobs whose images take several
# Prologs to copy over netem-slowed NFS, a node reset among them (root; by
# hand, about 20 minutes under TCG: not in CI).
soak-vm:
	DISTRO=$(DISTRO) testcluster/vm/soak

# Inside the ctl VM of a Vagrant cluster (root), with the test binary built on
# the host (the box has neither Go nor make: testcluster/vm/vagrant-cluster
# test runs the script itself).
test-cluster-vm:
	bash testcluster/vm/e2e-on-ctl $(CURDIR) $(CURDIR)/build/vm-provision/e2e.test
