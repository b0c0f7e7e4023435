#!/usr/bin/env bash
# Set up, build and run backplane from a fresh clone: the README's quick start and CI both
# call this script, so what the README promises is what CI checks.
#
#   ./scripts/bootstrap.sh example     install missing packages, build, run the main example
#   ./scripts/bootstrap.sh test        the same set-up, then build and run the whole test suite
#   ./scripts/bootstrap.sh test-uring  the whole test suite again, built with Asio's io_uring
#                                      backend (-DBACKPLANE_ASIO_IO_URING=ON); skipped, saying
#                                      so, when this kernel or container refuses io_uring
#   ./scripts/bootstrap.sh sanitize    the test suite under ASan+UBSan, then under TSan
#                                      (`sanitize address` or `sanitize thread` for one of them)
#   ./scripts/bootstrap.sh clang       build the libraries, tests and examples with clang++
#                                      (Debian 12: clang 14), warnings as errors; runs nothing
#   ./scripts/bootstrap.sh consumer    install into a scratch prefix and build and run
#                                      tests/consumer against it, through find_package only;
#                                      then tests/consumer_subdir, which adds the source tree
#                                      with add_subdirectory
#   ./scripts/bootstrap.sh bench [args] optimised build, then bench/report.py (or, without
#                                      python3, every benchmark binary with [args])
#   ./scripts/bootstrap.sh fuzz [secs] build the libFuzzer target with clang 14 (ASan+UBSan)
#                                      and fuzz for [secs] seconds (default 60) from the
#                                      corpus in tests/fuzz/corpus; see docs/reliability.md
#
# Environment:
#   BACKPLANE_BUILD_ROOT  where build trees go (default: <repo>/build)
#   BACKPLANE_JOBS        parallel compile and test jobs (default: 2)
#   BACKPLANE_NO_APT=1    never call apt-get, even when packages are missing
#
# Every build tree is configured from the CMakePresets.json preset of the same name, with
# warnings as errors (BACKPLANE_WERROR=ON): `release` is the Release build a user makes with
# `cmake -S . -B build -DCMAKE_BUILD_TYPE=Release`, so CI proves that one warning-clean.
#
# Package installation needs root (or sudo) and happens only when a package is missing, so
# the script also works offline on a machine that already has everything.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_root="${BACKPLANE_BUILD_ROOT:-${repo}/build}"
jobs="${BACKPLANE_JOBS:-2}"

# What a fresh Debian 12 needs. Boost 1.81 is Debian 12's own; Asio is used header-only.
# backplane::service needs libboost-json1.81-dev (also the supervisor's); libsystemd-dev and
# pkg-config give it sd_notify (it builds without them, and says so). liburing-dev (with
# pkg-config): the io_uring build (test-uring) and the configuration check's test.
packages=(libboost1.81-dev libboost-json1.81-dev libspdlog-dev libfmt-dev libgtest-dev
          libbenchmark-dev libsystemd-dev pkg-config cmake g++ clang ninja-build liburing-dev)

# The test step's extras: the live page's test loads it in headless Chromium (skipped without),
# driven over the DevTools pipe by a python3 script (tests/service/page_live.py).
test_packages=(chromium python3)
# Only for `fuzz`: clang with libFuzzer and its sanitizer runtimes.
fuzz_packages=(clang-14 libclang-rt-14-dev)

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

# ensure_packages [extra packages...]: `packages` and the extras.
ensure_packages() {
  local wanted=("${packages[@]}" "$@")
  if ! command -v dpkg-query >/dev/null; then
    say "not a Debian system: make sure these (or their equivalents) are installed: ${wanted[*]}"
    return
  fi
  local missing=() p
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return
  fi
  [[ "${BACKPLANE_NO_APT:-0}" == 1 ]] && die "missing packages: ${missing[*]} (BACKPLANE_NO_APT=1)"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "missing packages: ${missing[*]}; run as root to install them"
    sudo=(sudo)
  fi
  say "installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${wanted[@]}"
}

generator() {
  if command -v ninja >/dev/null; then echo Ninja; else echo "Unix Makefiles"; fi
}

# configure <name> [cmake args...]: a build tree at $build_root/<name>, from the preset of
# that name in CMakePresets.json (the dev preset for a name that is not a preset).
configure() {
  local name="$1" preset=dev
  shift
  case "$name" in
    dev | release | clang | asan | tsan | bench) preset="$name" ;;
  esac
  cmake --preset "$preset" -S "$repo" -B "${build_root}/${name}" -G "$(generator)" \
    -DBACKPLANE_WERROR=ON "$@"
}

build() {
  local name="$1"
  shift
  cmake --build "${build_root}/${name}" -j "$jobs" "$@"
}

# run_ctest <name> [launcher...]: the tests of a build tree, run through `launcher` if given.
run_ctest() {
  local name="$1"
  shift
  (cd "${build_root}/${name}" && "$@" ctest --output-on-failure -j "$jobs")
}

cmd_example() {
  ensure_packages
  say "configuring ${build_root}/release"
  configure release
  say "building the main example"
  build release --target supervision_tree
  say "running examples/supervision_tree"
  "${build_root}/release/examples/supervision_tree"
}

cmd_test() {
  ensure_packages "${test_packages[@]}"
  say "configuring ${build_root}/release"
  configure release
  say "building everything (library, tests, examples, benchmarks)"
  build release
  say "running the test suite"
  run_ctest release
}

# Succeeds when this machine lets a program set up an io_uring instance. Containers and
# hardened kernels often refuse io_uring_setup (seccomp, kernel.io_uring_disabled); Asio's
# io_uring backend cannot run there at all. Prints why on failure.
io_uring_usable() {
  local dir="${build_root}/uring-probe"
  mkdir -p "$dir"
  cat >"${dir}/probe.c" <<'PROBE'
#include <liburing.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  struct io_uring ring;
  int e = io_uring_queue_init(8, &ring, 0);
  if (e < 0) {
    fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-e));
    return 1;
  }
  io_uring_queue_exit(&ring);
  return 0;
}
PROBE
  # shellcheck disable=SC2046
  gcc "${dir}/probe.c" -o "${dir}/probe" $(pkg-config --cflags --libs liburing) >&2 \
    || die "cannot build an io_uring program (is liburing-dev installed?)"
  "${dir}/probe"
}

cmd_test_uring() {
  ensure_packages
  local why
  if ! why="$(io_uring_usable 2>&1)"; then
    say "io_uring: SKIPPED, this kernel or container refuses io_uring (${why}); the epoll build is the one tested here"
    return 0
  fi
  say "io_uring: configuring ${build_root}/uring (-DBACKPLANE_ASIO_IO_URING=ON)"
  configure uring -DBACKPLANE_ASIO_IO_URING=ON -DBACKPLANE_BUILD_BENCH=OFF -DBACKPLANE_INSTALL=OFF
  say "io_uring: building the tests and examples"
  build uring
  say "io_uring: running the test suite"
  run_ctest uring
}

# A TSan binary cannot start when the kernel randomises mmap more than TSan expects (recent
# kernels with vm.mmap_rnd_bits > 28). Running with ASLR off (setarch -R) avoids it. Prints the
# command prefix to use, or fails when TSan cannot run here at all.
tsan_launcher() {
  local dir="${build_root}/tsan-probe"
  mkdir -p "$dir"
  printf '#include <thread>\nint main() { int x = 0; std::thread t([&] { x = 1; }); t.join(); return x - 1; }\n' \
    >"${dir}/probe.cpp"
  g++ -std=c++20 -fsanitize=thread -O1 "${dir}/probe.cpp" -o "${dir}/probe" \
    || die "cannot build a ThreadSanitizer program"
  if "${dir}/probe" >/dev/null 2>&1; then
    return
  fi
  local norandom=(setarch "$(uname -m)" -R)
  if "${norandom[@]}" "${dir}/probe" >/dev/null 2>&1; then
    echo "${norandom[*]}"
    return
  fi
  "${dir}/probe" >&2 || true
  die "ThreadSanitizer programs cannot run on this machine, even with ASLR off"
}

sanitize_address() {
  say "ASan+UBSan: configuring ${build_root}/asan"
  configure asan
  say "ASan+UBSan: building the tests"
  build asan
  say "ASan+UBSan: running the test suite"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:strict_init_order=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    run_ctest asan
}

sanitize_thread() {
  local prefix launcher=()
  prefix="$(tsan_launcher)"
  if [[ -n "$prefix" ]]; then
    read -r -a launcher <<<"$prefix"
    say "TSan: this kernel needs ASLR off; running under '${prefix}'"
  fi
  say "TSan: configuring ${build_root}/tsan"
  configure tsan
  say "TSan: building the tests"
  # The build runs the test binaries to discover their tests, so it needs the launcher too.
  "${launcher[@]}" cmake --build "${build_root}/tsan" -j "$jobs"
  say "TSan: running the test suite"
  TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
    run_ctest tsan "${launcher[@]}"
}

cmd_sanitize() {
  ensure_packages
  case "${1:-all}" in
    address) sanitize_address ;;
    thread) sanitize_thread ;;
    all) sanitize_address; sanitize_thread ;;
    *) die "sanitize: expected 'address', 'thread' or nothing, got '$1'" ;;
  esac
}

# The distribution's other compiler: a build only (the test suite runs in `test`), so that
# code that only g++ accepts, or a warning only clang gives, fails CI.
cmd_clang() {
  ensure_packages
  say "configuring ${build_root}/clang ($(clang++ --version | head -n 1))"
  configure clang
  say "building the libraries, tests and examples with clang++"
  build clang
}

cmd_consumer() {
  ensure_packages
  local prefix="${build_root}/install"
  say "building and installing backplane into ${prefix}"
  configure release -DBACKPLANE_INSTALL=ON
  build release
  rm -rf "$prefix"
  cmake --install "${build_root}/release" --prefix "$prefix"
  say "building tests/consumer against ${prefix}"
  rm -rf "${build_root}/consumer"
  cmake -S "${repo}/tests/consumer" -B "${build_root}/consumer" -G "$(generator)" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  # Found anywhere else (an old install in /usr/local, say), the check would prove nothing.
  local found
  found="$(sed -n 's/^backplane_DIR:PATH=//p' "${build_root}/consumer/CMakeCache.txt")"
  [[ "$found" == "$prefix"/* ]] || die "the consumer found backplane in '${found}', not in ${prefix}"
  cmake --build "${build_root}/consumer" -j "$jobs"
  say "running the consumer"
  run_ctest consumer
  # A user who vendors the source tree: add_subdirectory, the same targets, no install.
  say "building tests/consumer_subdir, which adds ${repo} with add_subdirectory"
  rm -rf "${build_root}/consumer_subdir"
  cmake -S "${repo}/tests/consumer_subdir" -B "${build_root}/consumer_subdir" -G "$(generator)" \
    -DCMAKE_BUILD_TYPE=Release -DBACKPLANE_SOURCE_DIR="$repo"
  cmake --build "${build_root}/consumer_subdir" -j "$jobs"
  say "running the add_subdirectory consumer"
  run_ctest consumer_subdir
}

cmd_bench() {
  ensure_packages
  say "configuring ${build_root}/bench (Release, -O2: the flags of bench/README.md's figures)"
  configure bench
  build bench
  if [[ -f "${repo}/bench/report.py" ]] && command -v python3 >/dev/null; then
    say "running the benchmarks through bench/report.py"
    python3 "${repo}/bench/report.py" "${build_root}/bench/bench" "$@"
    return
  fi
  local b
  for b in "${build_root}"/bench/bench/*; do
    [[ -f "$b" && -x "$b" ]] || continue
    say "running ${b#"${build_root}"/}"
    "$b" "$@"
  done
}

cmd_fuzz() {
  local seconds="${1:-60}"
  [[ "$seconds" =~ ^[0-9]+$ ]] || die "fuzz: expected a number of seconds, got '${seconds}'"
  ensure_packages "${fuzz_packages[@]}"
  local cxx
  cxx="$(command -v clang++-14 || command -v clang++ || true)"
  [[ -n "$cxx" ]] || die "fuzz: no clang++ found; install clang-14 and libclang-rt-14-dev"
  say "fuzz: configuring ${build_root}/fuzz with ${cxx} (libFuzzer, ASan+UBSan)"
  configure fuzz -DCMAKE_CXX_COMPILER="$cxx" -DBACKPLANE_FUZZ=ON \
    -DBACKPLANE_BUILD_EXAMPLES=OFF -DBACKPLANE_BUILD_BENCH=OFF -DBACKPLANE_INSTALL=OFF
  build fuzz --target backplane_fuzz
  # New inputs go to a scratch directory; the repo's corpus is only read. To keep a find,
  # copy it into tests/fuzz/corpus/backplane (or merge: see docs/reliability.md).
  local scratch="${build_root}/fuzz/corpus"
  mkdir -p "$scratch"
  say "fuzz: fuzzing for ${seconds}s"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "${build_root}/fuzz/tests/fuzz/backplane_fuzz" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "$scratch" "${repo}/tests/fuzz/corpus/backplane"
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    example) cmd_example ;;
    test) cmd_test ;;
    test-uring) cmd_test_uring ;;
    sanitize) cmd_sanitize "$@" ;;
    clang) cmd_clang ;;
    consumer) cmd_consumer ;;
    bench) cmd_bench "$@" ;;
    fuzz) cmd_fuzz "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
