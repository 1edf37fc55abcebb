## tests/vcsim: the vSphere simulator launcher (govmomi 0.24.2's vcsim with
## vmshift's overrides and fault injection, see tests/vcsim/README.md) and
## vcsim-check, an independent govmomi client the ESX tests use to read the
## simulator's state.  Built offline from Debian's golang-go and
## golang-github-vmware-govmomi-dev; nothing binary is committed.
vcsim_launcher_srcs = \
	tests/vcsim/launcher/main.go tests/vcsim/launcher/front.go \
	tests/vcsim/launcher/overrides.go tests/vcsim/launcher/control.go \
	tests/vcsim/launcher/rest.go tests/vcsim/launcher/files.go
vcsim_check_srcs = tests/vcsim/check/main.go
EXTRA_DIST += tests/vcsim/README.md tests/vcsim/source-hash $(vcsim_launcher_srcs) $(vcsim_check_srcs)

## GOPATH mode against Debian's source tree; the build cache lives outside
## the build directory so that distclean leaves nothing behind.
VCSIM_GOPATH = /usr/share/gocode
VCSIM_GOENV = GOPATH=$(VCSIM_GOPATH) GO111MODULE=off GOFLAGS= CGO_ENABLED=0 \
	GOCACHE=$${TMPDIR:-/tmp}/vmshift-gocache-$$(id -u)

if HAVE_GO
if ENABLE_INTEGRATION
check_SCRIPTS += tests/vcsim/vcsim-launcher tests/vcsim/vcsim-check
endif
CLEANFILES += tests/vcsim/vcsim-launcher tests/vcsim/vcsim-check

## The binaries are rebuilt whenever the hash of their sources differs from
## the one embedded in them (tests/vcsim/source-hash), not by timestamps: a
## binary newer than its sources can still come from other sources (it was
## once committed, and a checkout gives it a fresh mtime).  go build is
## only run when the hash differs.
tests/vcsim/vcsim-launcher: $(vcsim_launcher_srcs) vcsim-source-check
	$(AM_V_GEN)$(MKDIR_P) tests/vcsim && out=$(abs_top_builddir)/tests/vcsim/vcsim-launcher && \
	h=$$($(SHELL) $(srcdir)/tests/vcsim/source-hash $(srcdir)/tests/vcsim/launcher) && \
	if test -x $$out && test "$$($$out -source-hash 2>/dev/null)" = "$$h"; then :; else \
	cd $(srcdir)/tests/vcsim/launcher && \
	$(VCSIM_GOENV) $(GO) build -ldflags "-X main.sourceHash=$$h" -o $$out.tmp . && mv -f $$out.tmp $$out; fi

tests/vcsim/vcsim-check: $(vcsim_check_srcs) vcsim-source-check
	$(AM_V_GEN)$(MKDIR_P) tests/vcsim && out=$(abs_top_builddir)/tests/vcsim/vcsim-check && \
	h=$$($(SHELL) $(srcdir)/tests/vcsim/source-hash $(srcdir)/tests/vcsim/check) && \
	if test -x $$out && test "$$($$out -source-hash 2>/dev/null)" = "$$h"; then :; else \
	cd $(srcdir)/tests/vcsim/check && \
	$(VCSIM_GOENV) $(GO) build -ldflags "-X main.sourceHash=$$h" -o $$out.tmp . && mv -f $$out.tmp $$out; fi

## (a target with no recipe and no file: always out of date, like FORCE)
vcsim-source-check:
endif
