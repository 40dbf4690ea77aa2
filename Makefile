# tls.so: TLS transport module for Debian's kamailio.
#
#   make              prepare the host headers if missing, build tls.so
#   make test         unit tests (Check) and integration tests
#   make install      install as $(INSTALL_DIR)/tls_modern.so (Debian's tls.so
#                     is never replaced)
#
# The module is compiled with the core's own defines and flags (read from
# the host tree's config.mak), so that its version and compile-flags strings
# match the installed kamailio binary exactly.

HOST_VER   := $(shell dpkg-query -W -f='$${Version}' kamailio 2>/dev/null)
HOST_UPVER := $(firstword $(subst -, ,$(HOST_VER)))
HOST_SRC   ?= .host/kamailio-$(HOST_UPVER)/src
CONFIG_MAK := $(HOST_SRC)/config.mak

NAME        = tls.so
SRCS        = tls_mod.c tls_init.c tls_server.c tls_domain.c tls_locking.c tls_util.c tls_verify.c tls_select.c tls_config.c tls_rpc.c tls_session.c tls_mem.c
OBJDIR     ?= build/obj
OBJS        = $(SRCS:%.c=$(OBJDIR)/%.o)

INSTALL_DIR ?= /usr/lib/x86_64-linux-gnu/kamailio/modules
INSTALL_NAME ?= tls_modern.so

# The core's flags. When the host tree is missing, make prepares it (rule
# below) and then restarts itself with the file included.
ifeq ($(filter clean uninstall,$(MAKECMDGOALS)),)
-include $(CONFIG_MAK)
endif

# Our own warnings on top of the core's; -Werror keeps them at zero.
OUR_CFLAGS  = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-cast-align \
              -fvisibility=hidden -std=gnu11
SAN_CFLAGS ?=
MODULE_CFLAGS = -fPIC -DPIC $(CFLAGS) $(C_DEFS) -DMOD_NAME='"tls"' \
                -isystem $(HOST_SRC) $(OUR_CFLAGS) $(SAN_CFLAGS)
MODULE_LDFLAGS = $(MOD_LDFLAGS) $(SAN_CFLAGS)
MODULE_LIBS = -lssl -lcrypto

.PHONY: all host test unit integration install uninstall clean run bench

all: $(NAME)

host: $(CONFIG_MAK)

$(CONFIG_MAK):
	@bash scripts/host.sh

$(OBJDIR)/%.o: %.c | $(CONFIG_MAK)
	@mkdir -p $(OBJDIR)
	@echo "  CC $<"
	@$(CC) $(MODULE_CFLAGS) -MMD -MP -c $< -o $@

$(NAME): $(OBJS)
	@echo "  LD $@"
	@$(CC) $(MODULE_LDFLAGS) -o $@.tmp $(OBJS) $(MODULE_LIBS)
	@mv -f $@.tmp $@ # a running kamailio keeps the old file

-include $(OBJS:.o=.d)

test: unit integration

unit: | $(CONFIG_MAK)
	@$(MAKE) -s -C test/unit HOST_SRC=$(abspath $(HOST_SRC)) run

integration: $(NAME)
	/usr/bin/python3 test/integration/run.py --module $(abspath $(NAME))

install: $(NAME)
	install -d $(DESTDIR)$(INSTALL_DIR)
	install -m 644 $(NAME) $(DESTDIR)$(INSTALL_DIR)/$(INSTALL_NAME)
	@echo "installed $(DESTDIR)$(INSTALL_DIR)/$(INSTALL_NAME)"
	@echo 'use it with: loadmodule "$(INSTALL_NAME)" (instead of "tls.so")'

uninstall:
	rm -f $(DESTDIR)$(INSTALL_DIR)/$(INSTALL_NAME)

run: $(NAME)
	bash scripts/run.sh

# Debian's tls.so against this one in the same kamailio, side by side
# (bench/README.md); BENCH_QUICK=1 for a short smoke run.
bench: $(NAME)
	$(MAKE) -C bench run

clean:
	rm -rf build $(NAME)
	@$(MAKE) -s -C test/unit clean 2>/dev/null || true
	@$(MAKE) -s -C bench clean 2>/dev/null || true

# ---------------------------------------------------------------------------
# Hostile input (issue 7): fuzzing and sanitizers.
#
#   make fuzz [FUZZ_TIME=600]   fuzz each target (test/fuzz) FUZZ_TIME seconds
#   make fuzz-short             replay test/fuzz/regressions, fuzz each target
#                               ~20 s; ends with "N passed, N failed"
#   make sanitize               tls.so with ASan+UBSan (build/san/), whole
#                               integration suite under it; reports collected
FUZZ_TIME ?= 600

.PHONY: fuzz fuzz-short sanitize

fuzz: | $(CONFIG_MAK)
	@$(MAKE) -s -C test/fuzz HOST_SRC=$(abspath $(HOST_SRC)) run FUZZ_TIME=$(FUZZ_TIME)

fuzz-short: | $(CONFIG_MAK)
	@$(MAKE) -s -C test/fuzz HOST_SRC=$(abspath $(HOST_SRC)) short

sanitize: | $(CONFIG_MAK)
	@bash scripts/sanitize.sh
