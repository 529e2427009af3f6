# EchoLink - top-level commands. See README.md.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PORT ?= 5000
CTEST_ARGS ?=

PREFIX ?= /usr/local

.PHONY: all deps deps-build build build-test run test bench fuzz check-long clean install uninstall

all: build

deps:
	@scripts/install-deps.sh

deps-build:
	@scripts/install-deps.sh --build

build/CMakeCache.txt:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEL_BUILD_TESTS=OFF

build: deps-build build/CMakeCache.txt
	cmake --build build -j$(JOBS)

build-test/CMakeCache.txt:
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DEL_SANITIZE=ON

build-test: build-test/CMakeCache.txt
	cmake --build build-test -j$(JOBS)

# Builds, then serves the web client and the signaling endpoint on
# http://localhost:$(PORT) with SQLite under ./data.
run: build
	@mkdir -p data
	./build/bin/echolinkd --port $(PORT) --db sqlite:data/echolink.db --web web

# ASan+UBSan build and every test through CTest.
test: deps build-test
	scripts/sweep-netns.sh
	cd build-test && ctest --output-on-failure -j2 $(CTEST_ARGS)

bench: deps build
	bench/run.sh

fuzz: deps
	scripts/fuzz.sh short

check-long: deps build build-test
	scripts/fuzz.sh long
	scripts/tsan.sh
	SOAK_JSON=build/soak.json scripts/soak.sh
	scripts/deb-build.sh
	cd build-test && ctest --output-on-failure -L long

# Installs programs, libecholink (shared + static), headers, pkg-config file,
# manuals, the web client and an example configuration under $(PREFIX)
# (DESTDIR honoured); uninstall removes exactly what was installed.
install: build
	cmake --install build --prefix $(PREFIX)

uninstall:
	scripts/uninstall.sh build/install_manifest.txt

clean:
	rm -rf build build-test build-fuzz
