# SPDX-License-Identifier: GPL-2.0
#
# A small kselftest-compatible lib.mk for kmemlab areas. An area Makefile sets
#   TEST_GEN_PROGS := C tests, each built from <name>.c (or <name>-objs)
#   TEST_PROGS     := test scripts, run as they are
#   TEST_FILES     := helper scripts and data installed next to the tests
#   TEST_GEN_FILES := helper programs built like TEST_GEN_PROGS but not run
# and includes this file. Everything is installed in build/selftests/<area>/
# together with `settings` and `tests.list` (the order tests run in).

AREA     := $(notdir $(patsubst %/,%,$(CURDIR)))
TOPDIR   := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BUILD    ?= $(TOPDIR)/build
OUTPUT   := $(BUILD)/selftests/$(AREA)
KSRC     ?= $(BUILD)/ksrc
LIBKML   := $(BUILD)/tools/lib/libkml.a

CC       ?= gcc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
	    -MMD -MP -I$(KSRC)/tools/testing/selftests \
	    -I$(TOPDIR)/include/uapi -I$(TOPDIR)/tools/lib $(EXTRA_CFLAGS)

GEN      := $(addprefix $(OUTPUT)/,$(TEST_GEN_PROGS) $(TEST_GEN_FILES))
COPIED   := $(addprefix $(OUTPUT)/,$(TEST_PROGS) $(TEST_FILES) settings)

# shared by all areas: the kernel's KTAP shell helpers and our own
SHARED   := $(BUILD)/selftests/kselftest/ktap_helpers.sh \
	    $(BUILD)/selftests/lib/kmemlab.sh

all: $(GEN) $(COPIED) $(OUTPUT)/tests.list $(SHARED)

$(BUILD)/selftests/kselftest/ktap_helpers.sh: $(KSRC)/tools/testing/selftests/kselftest/ktap_helpers.sh
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/selftests/lib/%: $(TOPDIR)/selftests/lib/%
	@mkdir -p $(dir $@)
	cp $< $@

$(OUTPUT):
	mkdir -p $@

$(OUTPUT)/%.o: %.c | $(OUTPUT)
	$(CC) $(CFLAGS) -c -o $@ $<

define gen_rule
$(1)-objs ?= $(1).o
$(OUTPUT)/$(1): $$(addprefix $(OUTPUT)/,$$($(1)-objs)) $(LIBKML) | $(OUTPUT)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lm
endef
$(foreach p,$(TEST_GEN_PROGS) $(TEST_GEN_FILES),$(eval $(call gen_rule,$(p))))

$(OUTPUT)/%: % | $(OUTPUT)
	@mkdir -p $(dir $@)
	cp -p $< $@

$(OUTPUT)/tests.list: Makefile | $(OUTPUT)
	@printf '%s\n' $(TEST_GEN_PROGS) $(TEST_PROGS) > $@

$(LIBKML):
	$(MAKE) -C $(TOPDIR)/tools/lib

emit_tests:
	@for t in $(TEST_GEN_PROGS) $(TEST_PROGS); do echo "$(AREA):$$t"; done

clean:
	rm -rf $(OUTPUT)

-include $(wildcard $(OUTPUT)/*.d)

.PHONY: all clean emit_tests
