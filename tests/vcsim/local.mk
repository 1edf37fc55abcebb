## tests/vcsim: the vSphere simulator launcher (govmomi 0.24.2's vcsim with
## vmshift's overrides and fault injection, see tests/vcsim/README.md) and
## vcsim-check, an independent govmomi client the ESX tests use to read the
## simulator's state.  Built offline from Debian's golang-go and
## golang-github-vmware-govmomi-dev; nothing binary is committed.
vcsim_launcher_srcs = \
	tests/vcsim/launcher/main.go tests/vcsim/launcher/front.go \
	tests/vcsim/launcher/overrides.go tests/vcsim/launcher/control.go
vcsim_check_srcs = tests/vcsim/check/main.go
EXTRA_DIST += tests/vcsim/README.md $(vcsim_launcher_srcs) $(vcsim_check_srcs)

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

tests/vcsim/vcsim-launcher: $(vcsim_launcher_srcs)
	$(AM_V_GEN)$(MKDIR_P) tests/vcsim && out=$(abs_top_builddir)/tests/vcsim/vcsim-launcher && \
	cd $(srcdir)/tests/vcsim/launcher && $(VCSIM_GOENV) $(GO) build -o $$out .

tests/vcsim/vcsim-check: $(vcsim_check_srcs)
	$(AM_V_GEN)$(MKDIR_P) tests/vcsim && out=$(abs_top_builddir)/tests/vcsim/vcsim-check && \
	cd $(srcdir)/tests/vcsim/check && $(VCSIM_GOENV) $(GO) build -o $$out .
endif
