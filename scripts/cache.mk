# SPDX-License-Identifier: GPL-2.0
#
# The build's view of scripts/deps' cache, included by every Makefile. Each
# make reads the env file when it starts; nothing read here is exported, so
# a sub-make started after scripts/deps wrote the file reads it afresh.
RMAI_CACHE ?= /var/cache/rmai
-include $(RMAI_CACHE)/env
KSRC ?= $(RMAI_KSRC)
