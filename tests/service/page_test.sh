#!/usr/bin/env bash
# The live page in a real browser: runs examples/service.cpp (tree_service) on an ephemeral
# port, loads `/` in headless Chromium and reads the tree's rows from the DOM; makes `web` crash
# (SIGUSR1) while a page stays open (page_live.py, over the DevTools pipe) and checks that the
# /events report changed web's row (incarnation, crashes) and listed the crash without a reload;
# loads it again and checks the same; then SIGTERM and exit status 0.
#
#   page_test.sh <tree_service binary>      (ctest runs it; exit 77 = skipped: no chromium)
set -euo pipefail

service="$1"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]] || ! command -v python3 >/dev/null; then
  echo "page_test: chromium or python3 is not installed (Debian: apt-get install chromium python3): skipped"
  exit 77
fi

work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "page_test: $*" >&2; exit 1; }

"$service" 0 >"${work}/out.txt" 2>&1 &
pid=$!

# Bounded waits on another process (the only waits here): 10 s each, in 0.1 s steps.
wait_for() {
  local i
  for ((i = 0; i < 100; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  return 1
}
wait_for grep -q '^listening on ' "${work}/out.txt" || fail "the service did not listen: $(cat "${work}/out.txt")"
url="$(sed -n 's/^listening on //p' "${work}/out.txt")"
port="${url##*:}"
port="${port%/}"

# GET with bash alone (no curl on a fresh Debian).
get() {
  exec 3<>"/dev/tcp/127.0.0.1/${port}"
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
  cat <&3
  exec 3<&-
}
web_incarnation() { get /tree | grep -q "\"id\":\"web\",\"path\":\"app/web\",\"kind\":\"worker\",\"restart\":\"permanent\",\"status\":\"running\",\"incarnation\":$1,"; }

dom() {
  timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="${work}/profile-$1" --dump-dom "$url" 2>"${work}/chromium-$1.log"
}
row() { grep -o "<tr data-path=\"app/web\"[^>]*>" "$1" || true; }

# web fails twice at start and runs as incarnation 3.
wait_for web_incarnation 3 || fail "web did not reach incarnation 3: $(get /tree)"
dom 1 >"${work}/dom1.html"
before="$(row "${work}/dom1.html")"
echo "before: ${before}"
[[ "$before" == *'data-status="running" data-incarnation="3" data-restarts="2" data-crashes="2"'* ]] \
  || fail "web's row before the crash is wrong: '${before}'"
grep -q '<tr data-path="app/db"' "${work}/dom1.html" || fail "no row for app/db"

# The live update, in one page load: page_live.py opens the page over the DevTools pipe, stops
# its periodic /tree refresh, makes web crash (SIGUSR1) and waits until the /events report has
# changed web's row (incarnation 4) and listed the crash, in the same document.
python3 "$(dirname "$0")/page_live.py" "$browser" "$url" "$pid" "${work}/profile-live" \
  || fail "the page did not update itself from /events"

# And a fresh load shows the same.
wait_for web_incarnation 4 || fail "web did not restart after SIGUSR1: $(get /tree)"
dom 2 >"${work}/dom2.html"
after="$(row "${work}/dom2.html")"
echo "after:  ${after}"
[[ "$after" == *'data-status="running" data-incarnation="4" data-restarts="3" data-crashes="3"'* ]] \
  || fail "web's row did not change with its crash: '${after}'"
grep -q 'crash requested (SIGUSR1)' "${work}/dom2.html" || fail "the crash report is not on the page"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[[ "$status" == 0 ]] || fail "exit status ${status} after SIGTERM, expected 0: $(cat "${work}/out.txt")"
echo "page_test: passed"
