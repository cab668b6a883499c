# SPDX-License-Identifier: GPL-2.0
#
# Common rules for userspace tools. A tool's Makefile sets:
#   NAME := <dir name>            PROGS := prog1 prog2
#   prog1-objs := a.o b.o         (defaults to prog1.o)
#   LDLIBS += -lpthread           (optional)
# then includes this file. Objects go to build/tools/<NAME>/, programs to
# build/bin/, everything links build/tools/lib/libkml.a.

TOPDIR   := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BUILD    ?= $(TOPDIR)/build
OBJDIR   := $(BUILD)/tools/$(NAME)
BINDIR   := $(BUILD)/bin
LIBKML   := $(BUILD)/tools/lib/libkml.a

CC       ?= gcc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow \
	    -Wformat=2 -D_GNU_SOURCE -MMD -MP \
	    -I$(TOPDIR)/include/uapi -I$(TOPDIR)/tools/lib $(EXTRA_CFLAGS)

BINS := $(addprefix $(BINDIR)/,$(PROGS))

all: $(BINS)

$(OBJDIR)/%.o: %.c | $(OBJDIR)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OBJDIR) $(BINDIR):
	mkdir -p $@

ifneq ($(NAME),lib)
$(LIBKML): FORCE
	$(MAKE) -C $(TOPDIR)/tools/lib
FORCE:
endif

# $(1): program name
define prog_rule
$(1)-objs ?= $(1).o
$(BINDIR)/$(1): $$(addprefix $(OBJDIR)/,$$($(1)-objs)) $(LIBKML) | $(BINDIR)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lm
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))

clean:
	rm -rf $(OBJDIR) $(BINS)

-include $(wildcard $(OBJDIR)/*.d)

.PHONY: all clean FORCE
