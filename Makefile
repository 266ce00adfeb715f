# SPDX-License-Identifier: GPL-2.0
#
# RMAI top-level build. `make` builds the module against the cached Debian
# 6.12 headers (KDIR= overrides), the memnode daemon and the selftests.
# `make check` runs the whole suite in a QEMU VM; see README.md.

include scripts/cache.mk

KDIR	?= $(RMAI_KDIR_612)
KDIR_61	?= $(RMAI_KDIR_61)
BUILD	:= $(CURDIR)/build
# What installs the dependencies and writes the cache's env file.
RMAI_DEPS ?= scripts/deps

# Only the cache's place goes down to sub-makes: each reads the env file
# itself when it starts, which may be after RMAI_DEPS wrote it.
export RMAI_CACHE RMAI_DEPS

KERNEL_SRCS := $(filter-out %.mod.c,$(wildcard backend/*.c backend/*.h))

.PHONY: all module module-clean memnode selftests compat-6.1 checkpatch sparse \
	check check-debug demo bench deps prepare clean install

all: module memnode selftests

deps:
	$(RMAI_DEPS)

# The first step of demo and bench: install, then build in a new make,
# which reads the env file that the install has just written.
prepare:
	$(RMAI_DEPS)
	$(MAKE) all

module:
	@test -d "$(KDIR)" || { echo "KDIR '$(KDIR)' not found: run scripts/deps or set KDIR=" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# On a compute or memory node: the module for KDIR's kernel (so that
# `modprobe rmai` finds it), the daemon and the man pages.
install: module memnode
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install
	depmod -a $(shell cat $(KDIR)/include/config/kernel.release)
	install -D -m 0755 memnode/rmai-memnoded $(DESTDIR)/usr/local/sbin/rmai-memnoded
	install -D -m 0644 man/rmai.4 $(DESTDIR)/usr/local/share/man/man4/rmai.4
	install -D -m 0644 man/rmai-memnoded.8 $(DESTDIR)/usr/local/share/man/man8/rmai-memnoded.8

module-clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

# Out-of-tree builds into another output directory (MO=) arrived only in
# 6.13, so the 6.1 module is built from a copy of the sources.
compat-6.1:
	@test -d "$(KDIR_61)" || { echo "KDIR_61 '$(KDIR_61)' not found: run scripts/deps" >&2; exit 1; }
	rm -rf $(BUILD)/6.1 && mkdir -p $(BUILD)/6.1/backend
	cp Kbuild $(BUILD)/6.1/ && cp backend/Kbuild $(KERNEL_SRCS) $(BUILD)/6.1/backend/
	$(MAKE) -C $(KDIR_61) M=$(BUILD)/6.1 modules

memnode:
	$(MAKE) -C memnode

selftests:
	$(MAKE) -C selftests

checkpatch:
	@test -f "$(KSRC)/scripts/checkpatch.pl" || { echo "checkpatch.pl not cached: run scripts/deps" >&2; exit 1; }
	perl $(KSRC)/scripts/checkpatch.pl --strict --no-tree --terse --show-types \
		--ignore FILE_PATH_CHANGES -f $(KERNEL_SRCS)

# sparse over every kernel source file; any diagnostic fails the target.
sparse:
	@test -d "$(KDIR)" || { echo "KDIR '$(KDIR)' not found" >&2; exit 1; }
	mkdir -p $(BUILD)
	$(MAKE) -C $(KDIR) M=$(CURDIR) C=2 modules 2>&1 | tee $(BUILD)/sparse.log; \
		! grep -E ': (warning|error):' $(BUILD)/sparse.log

check:
	scripts/check

# The debug-kernel tier (KASAN, lockdep, kmemleak): not part of check.
check-debug:
	scripts/check-debug

demo:
	scripts/demo

bench:
	scripts/bench

clean: module-clean
	-$(MAKE) -C memnode clean
	-$(MAKE) -C selftests clean
	rm -rf $(BUILD)
