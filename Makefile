# pg_vms: PGXS build.  `make demo`, `make test` and `make bench` install what
# they need first (scripts/install-deps.sh); see README.md.

EXTENSION   = pg_vms
MODULE_big  = pg_vms
OBJS        = src/pg_vms.o src/audit.o src/audit_queue.o src/audit_chain.o \
              src/audit_worker.o src/authorize.o src/crypto.o src/facex.o src/invoker.o src/keys.o src/log_filter.o src/password.o \
              src/password_policy.o src/auth_guard.o src/client_address.o src/state_file.o src/totp.o src/retention.o
# Released scripts are frozen.  The script of the version under development
# is assembled from one file per concern in upgrade/<from>--<to>/ (sorted).
DATA        = pg_vms--1.0.sql pg_vms--1.0--1.1.sql pg_vms--1.1--1.2.sql pg_vms--1.2--1.3.sql \
              pg_vms--1.3--1.4.sql
DEV_SCRIPT  = pg_vms--1.4--1.5.sql
DATA_built  = $(DEV_SCRIPT)
PG_CPPFLAGS = -I$(srcdir)/include -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare -Werror
SHLIB_LINK  = -lcrypto -lcrack

PG_CONFIG  ?= /usr/lib/postgresql/15/bin/pg_config

# Run the dependency installer before anything needs pg_config.
ifeq ($(filter deps clean distclean,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(PG_CONFIG)),)
$(info pg_vms: $(PG_CONFIG) not found; installing build dependencies)
$(shell bash $(CURDIR)/scripts/install-deps.sh >&2)
endif
endif

# No JIT bitcode: it needs clang and gains nothing for this code.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DEV_SCRIPT): $(sort $(wildcard $(srcdir)/upgrade/1.4--1.5/*.sql))
	cat $^ >$@

# The C tools (tools/Makefile); built by `make test` and `make demo`.
.PHONY: tools
tools:
	$(MAKE) -C tools

.PHONY: deps demo test bench

deps:
	bash scripts/install-deps.sh

demo: deps
	bash demo/run.sh

test: deps
	bash test/run-all.sh

bench: deps
	bash bench/run.sh
