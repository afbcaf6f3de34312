# Thin wrapper over meson. `make demo` and `make test` do all set-up on a
# fresh Debian 12 machine (installing missing packages when run as root) and
# are safe to run again.
BUILD      ?= build
ASAN_BUILD ?= build-asan
SUITES     ?= --suite unit --suite integration --suite fuzz

.PHONY: all deps build asan test test-debug test-asan demo bench clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# Every test, in the normal build and again under ASan+UBSan; the last line
# is "N passed, N failed".
test: build asan
	@rc=0; \
	meson test -C $(BUILD) $(SUITES) --print-errorlogs --num-processes 2 || rc=1; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C $(ASAN_BUILD) $(SUITES) --print-errorlogs --num-processes 2 \
	    --timeout-multiplier 3 || rc=1; \
	python3 scripts/test-summary.py $(BUILD)/meson-logs/testlog.json \
	    $(ASAN_BUILD)/meson-logs/testlog.json || rc=1; \
	exit $$rc

demo: build
	@scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
