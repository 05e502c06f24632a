# chat toolkit. Programs live in cmd/PROG/ (main.c plus what only PROG uses),
# shared code in lib/ (one static library). New files are picked up without
# editing this file.
#
#   make            build every program into bin/
#   make check      install what is missing, then every test: unit, cli,
#                   integration (real servers), the sanitizer build, brief
#                   fuzzing; ends with "N passed, M failed"
#   make run        install what is missing, build, start the chat system
#   make asan       build with AddressSanitizer+UBSan into build-asan/bin/
#   make fuzz       build the libFuzzer targets into build-fuzz/
#   make fuzz-long  fuzz each target for FUZZ_SECONDS (default an hour)
#   make install    PREFIX=/usr/local DESTDIR=

.DEFAULT_GOAL := all
VERSION  := 0.1.0
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
PKGS     := libwebsockets libuv jansson librabbitmq hiredis libpq openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow \
            -Wstrict-prototypes -Wmissing-prototypes -D_GNU_SOURCE \
            -DCHAT_VERSION='"$(VERSION)"' -Ilib $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   := -Wl,--as-needed $(PKG_LIBS) -lm

PROGS    := $(notdir $(wildcard cmd/*))
LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBA     := $(BUILD)/libchat.a
UNIT_SRC := $(wildcard tests/unit/*.c)
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

# Objects of cmd/PROG other than main.o form build/cmd/PROG.a, so unit tests
# and fuzz targets can link what only one program uses.
define prog_rules
$(1)_SRC := $$(wildcard cmd/$(1)/*.c)
$(1)_OBJ := $$($(1)_SRC:%.c=$(BUILD)/%.o)
$(1)_MOD := $$(filter-out $(BUILD)/cmd/$(1)/main.o,$$($(1)_OBJ))
$(BUILD)/cmd/$(1).a: $$($(1)_MOD)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/bin/$(1): $$($(1)_OBJ) $(LIBA)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$($(1)_OBJ) $(LIBA) $$(LDLIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rules,$(p))))

PROG_ARCHIVES := $(PROGS:%=$(BUILD)/cmd/%.a)

all: $(PROGS:%=$(BUILD)/bin/%) bin
.PHONY: all bin check asan fuzz fuzz-long run install clean deps

# bin/ is the stable place scripts and tests call programs from.
bin: $(PROGS:%=$(BUILD)/bin/%)
	@mkdir -p bin
	@for p in $(PROGS); do ln -sf ../$(BUILD)/bin/$$p bin/$$p; done

$(BUILD)/%.o: %.c $(wildcard lib/*.h) $(wildcard cmd/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c tests/unit/testhelp.h $(PROG_ARCHIVES) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< \
		-Wl,--start-group $(PROG_ARCHIVES) $(LIBA) -Wl,--end-group $(LDLIBS)

units: $(UNITS)

# The sanitizer build: the whole suite runs against it in make check.
asan:
	$(MAKE) BUILD=build-asan CC=clang \
		SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		CFLAGS="-O1 -g" $(PROGS:%=build-asan/bin/%) build-asan-units

build-asan-units: $(UNITS)

# Each fuzz target links the sources its "links:" comment names.
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)

build-fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard lib/*.h) $(wildcard cmd/*/*.c) $(wildcard cmd/*/*.h)
	@mkdir -p build-fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE \
		-Ilib -Icmd/chat-gw $(PKG_CFLAGS) -o $@ $< \
		$$(sed -n 's|^/\* *links: *\(.*\) *\*/|\1|p' $<) $(PKG_LIBS) -lm

fuzz: $(FUZZ_BINS)

# Hours of fuzzing: FUZZ_SECONDS per target (default 3600), each target on
# its corpus copy, crashes kept under build-fuzz/crashes/.
fuzz-long: fuzz
	FUZZ_SECONDS=$${FUZZ_SECONDS:-3600} ONLY_FUZZ=1 tests/run

# check and run install what is missing first (scripts/deps), then build in
# a fresh make so pkg-config sees the new packages.
NPROC := $(shell nproc 2>/dev/null || echo 2)

check:
	scripts/deps
	$(MAKE) -j$(NPROC) all units
	$(MAKE) -j$(NPROC) asan
	$(MAKE) -j$(NPROC) fuzz
	tests/run

run:
	scripts/deps
	$(MAKE) all
	scripts/run

deps:
	scripts/deps

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man7
	for p in $(PROGS); do install -m 755 $(BUILD)/bin/$$p $(DESTDIR)$(PREFIX)/bin/; done
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/

clean:
	rm -rf build build-asan build-fuzz bin

# The browser client is embedded with .incbin (cmd/chat-gw/page.c).
$(BUILD)/cmd/chat-gw/page.o: cmd/chat-gw/page.html
