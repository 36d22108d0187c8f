# mq: Kafka-format topics on a local disk, for the shell.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
SHAREDIR ?= $(PREFIX)/share/mq
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions

CC      ?= cc
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Ilibcore
LDLIBS  = -lz -llz4 -ljansson -lcurl -lmicrohttpd -lpthread

# Optional codecs for reading batches written by other Kafka clients.
HAVE_ZSTD   := $(shell printf '#include <zstd.h>\nint main(void){return 0;}' | $(CC) -x c - -o /dev/null -lzstd 2>/dev/null && echo 1)
HAVE_SNAPPY := $(shell printf '#include <snappy-c.h>\nint main(void){return 0;}' | $(CC) -x c - -o /dev/null -lsnappy 2>/dev/null && echo 1)
ifeq ($(HAVE_ZSTD),1)
override CFLAGS += -DHAVE_ZSTD
LDLIBS += -lzstd
endif
ifeq ($(HAVE_SNAPPY),1)
override CFLAGS += -DHAVE_SNAPPY
LDLIBS += -lsnappy
endif

ifeq ($(SANITIZE),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
BUILD = build/san
else
BUILD = build/rel
endif

PROGS   = $(patsubst cmd/%.c,bin/%,$(wildcard cmd/mq-*.c))
LIBSRC  = $(wildcard libcore/*.c)
LIBOBJ  = $(patsubst libcore/%.c,$(BUILD)/%.o,$(LIBSRC))
UNITS   = $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/*.c))
FUZZERS = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAYS = $(patsubst %,$(BUILD)/replay/%,$(FUZZERS))
FUZZ_TIME ?= 60
MAN1    = $(wildcard man/*.1)
DEBS    = gcc make libc6-dev zlib1g-dev liblz4-dev libcurl4-openssl-dev libjansson-dev \
          libzstd-dev libsnappy-dev libmicrohttpd-dev bats python3 python3-kafka python3-lz4 \
          python3-snappy python3-prometheus-client lz4 gzip curl

all: $(PROGS)

# objects depend on every header they include (-MMD: BUILD/*.d)
$(BUILD)/%.o: libcore/%.c libcore/mq.h | $(BUILD)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libcore.a: $(LIBOBJ)
	$(AR) rcs $@ $^

$(BUILD)/%.cmd.o: cmd/%.c libcore/mq.h | $(BUILD)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(wildcard $(BUILD)/*.d)

bin/%: $(BUILD)/%.cmd.o $(BUILD)/libcore.a | bin
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libcore.a | $(BUILD)
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the fuzz corpora, replayed by make test without libFuzzer
$(BUILD)/replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(BUILD)/libcore.a | $(BUILD)
	@mkdir -p $(BUILD)/replay
	$(CC) $(CFLAGS) $(LDFLAGS) -DCORPUS='"tests/fuzz/corpus/$*"' -o $@ $^ $(LDLIBS)

# libFuzzer (clang) over each target for FUZZ_TIME seconds; new inputs
# land in tests/fuzz/corpus/TARGET
fuzz:
	@mkdir -p build/fuzz
	@for t in $(FUZZERS); do \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -Ilibcore $(filter -DHAVE_%,$(CFLAGS)) \
	    -fsanitize=fuzzer,address,undefined -o build/fuzz/$$t tests/fuzz/fuzz_$$t.c libcore/*.c $(LDLIBS) || exit 1; \
	  mkdir -p tests/fuzz/corpus/$$t; \
	  echo "fuzzing $$t for $(FUZZ_TIME)s"; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_TIME) -max_len=65536 -print_final_stats=1 tests/fuzz/corpus/$$t 2>&1 | \
	    grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' || exit 1; \
	done

$(BUILD) bin:
	@mkdir -p $@

# Installs the Debian packages the build and the tests need, if missing.
deps:
	@missing=; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# test and demo install what is missing first, then build in a fresh make
# (so the codec probes above see the libraries just installed).
test: deps
	@$(MAKE) --no-print-directory all units
	@ASAN_OPTIONS=verify_asan_link_order=0 tests/run $(UNITS) $(REPLAYS)

units: $(UNITS) $(REPLAYS)

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/demo

bench: all
	tests/bench/run

# the long form of tests/010-reliability.bats (see tests/RELIABILITY.md)
torture: all
	tests/torture

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(SHAREDIR)
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	install -m 644 man/*.5 $(DESTDIR)$(MANDIR)/man5
	install -m 644 man/*.7 $(DESTDIR)$(MANDIR)/man7
	for f in completions/*.bash; do install -m 644 $$f $(DESTDIR)$(BASHCOMPDIR)/$$(basename $$f .bash); done
	install -m 644 completions/_mq $(DESTDIR)$(ZSHCOMPDIR)/_mq
	cp -R share/. $(DESTDIR)$(SHAREDIR)/

clean:
	rm -rf bin build

.PHONY: all deps test units fuzz demo bench torture install clean
.SECONDARY:
