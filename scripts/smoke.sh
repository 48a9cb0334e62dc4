#!/usr/bin/env bash
# Smoke test of an imgtool build: the checks a user's first minutes make, run against any
# way of starting imgtool, from a fresh folder outside the repository (removed at the end).
#
#   scripts/smoke.sh ./dist/imgtool-x86_64-unknown-linux-gnu
#   scripts/smoke.sh qemu-aarch64-static ./dist/imgtool-aarch64-unknown-linux-gnu
#   scripts/smoke.sh deno run -A --config dist/js/deno.json dist/js/cli.js
#
# Every argument is the command that runs imgtool; arguments naming existing files by relative
# paths are made absolute, since the checks run elsewhere.
#
# Checks: --version is the version in deno.json (beside this script's folder); init in an
# empty folder, then validate, uri and dockerfile of that spec; a spec with a custom plugin
# (examples/plugins/non_root_user.ts) beside it; a spec with a mistake (exit 2, an error
# naming the spec file and line); and where a Docker engine answers and SMOKE_BASE_IMAGE names
# a base the engine can pull, a real build of a small image, run to check its file and env.
#
# Prints one line per check (ok: / FAIL: with the output / skip: with why), then
# "smoke: N passed, M failed". Exit 0 only when no check failed; 2 for a usage mistake.
#
# Environment:
#   SMOKE_BASE_IMAGE     base image for the build check (none: the build check is skipped)
#   SMOKE_REQUIRE_BUILD  1: a skipped build check is a failure (CI and releases set it)
#   DOCKER               the docker client (default docker); builds use --network=host
#   SMOKE_TIMEOUT        seconds one imgtool or docker command may take (default 300)
#   SMOKE_BUILD_TIMEOUT  seconds the build may take (default 900)
set -Eeuo pipefail
umask 022

usage() {
  echo "usage: scripts/smoke.sh IMGTOOL_COMMAND..." >&2
  echo "  e.g. scripts/smoke.sh ./dist/imgtool-x86_64-unknown-linux-gnu" >&2
  echo "       scripts/smoke.sh deno run -A --config dist/js/deno.json dist/js/cli.js" >&2
}
if [ "$#" -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  usage
  [ "$#" -eq 0 ] && exit 2
  exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
DOCKER=${DOCKER:-docker}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-300}
SMOKE_BUILD_TIMEOUT=${SMOKE_BUILD_TIMEOUT:-900}
SMOKE_BASE_IMAGE=${SMOKE_BASE_IMAGE:-}
SMOKE_REQUIRE_BUILD=${SMOKE_REQUIRE_BUILD:-}
PLUGIN="$REPO/examples/plugins/non_root_user.ts"

# The checks run in another folder: make relative paths in the command absolute. The
# program itself is looked up on PATH unless it has a "/"; a later argument is a path when
# it names an existing file or folder (and is not a flag).
IMGTOOL=()
for arg in "$@"; do
  if [[ "$arg" != /* && "$arg" != -* && -e "$arg" ]] &&
    { [ "${#IMGTOOL[@]}" -gt 0 ] || [[ "$arg" == */* ]]; }; then
    arg="$(cd "$(dirname "$arg")" && pwd -P)/$(basename "$arg")"
  fi
  IMGTOOL+=("$arg")
done
# Reports are read as text: no colour codes.
export NO_COLOR=1

# The version the build must report: deno.json beside this script (or its parent folder).
manifest=""
for candidate in "$HERE/deno.json" "$REPO/deno.json"; do
  if [ -f "$candidate" ]; then
    manifest=$candidate
    break
  fi
done
if [ -z "$manifest" ]; then
  echo "smoke.sh: no deno.json in $HERE or $REPO; run the script from an imgtool checkout" >&2
  exit 2
fi
if command -v python3 >/dev/null 2>&1; then
  VERSION=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$manifest")
else
  VERSION=$(sed -nE 's/^  "version": *"([^"]+)".*/\1/p' "$manifest" | head -1)
fi
if [ -z "$VERSION" ]; then
  echo "smoke.sh: $manifest has no \"version\"" >&2
  exit 2
fi
if [ ! -f "$PLUGIN" ]; then
  echo "smoke.sh: $PLUGIN is missing; run the script from an imgtool checkout" >&2
  exit 2
fi
# The base is written into a TypeScript string: only characters an image reference has.
if [ -n "$SMOKE_BASE_IMAGE" ] && [[ ! "$SMOKE_BASE_IMAGE" =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]]; then
  echo "smoke.sh: SMOKE_BASE_IMAGE=$SMOKE_BASE_IMAGE is not an image reference" \
    "(e.g. debian:bookworm-slim)" >&2
  exit 2
fi

WORK=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/imgtool-smoke.XXXXXX")" && pwd -P)
BUILT_URI=""
cleanup() {
  if [ -n "$BUILT_URI" ]; then
    timeout 60 "$DOCKER" image rm -f "$BUILT_URI" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [[ "$WORK/" == "$REPO/"* ]]; then
  echo "smoke.sh: the temporary folder $WORK is inside the repository; set TMPDIR elsewhere" >&2
  exit 2
fi

passed=0
failed=0
skipped=0
status=0
stdout=""
stderr=""
# A failure of this script itself (not of a check) still ends with a summary line.
trap 'echo "FAIL: scripts/smoke.sh stopped at line $LINENO"; echo "smoke: $passed passed, $((failed + 1)) failed"' ERR

# run LIMIT CMD...: run CMD (at most LIMIT seconds); sets $status, $stdout and $stderr.
run() {
  local limit=$1
  shift
  status=0
  stdout=$(timeout --kill-after=10 "$limit" "$@" 2>"$WORK/.stderr") || status=$?
  stderr=$(cat "$WORK/.stderr")
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    stderr+=$'\n'"(stopped after $limit s)"
  fi
}
imgtool() { run "$SMOKE_TIMEOUT" "${IMGTOOL[@]}" "$@"; }

pass() {
  passed=$((passed + 1))
  echo "ok: $1"
}
# fail WHAT: the check failed; show the last command's exit status and output.
fail() {
  failed=$((failed + 1))
  echo "FAIL: $1"
  echo "    exit status: $status"
  if [ -n "$stdout" ]; then
    echo "    stdout:"
    tail -n 60 <<<"$stdout" | sed 's/^/      /'
  fi
  if [ -n "$stderr" ]; then
    echo "    stderr:"
    tail -n 60 <<<"$stderr" | sed 's/^/      /'
  fi
}
skip() {
  if [ -n "$SMOKE_REQUIRE_BUILD" ]; then
    status=0 stdout="" stderr=""
    fail "$1 (SMOKE_REQUIRE_BUILD is set, so it must run)"
    return
  fi
  skipped=$((skipped + 1))
  echo "skip: $1"
}

check_version() {
  imgtool --version
  # Any word of the output may be the version ("imgtool 0.1.0").
  if [ "$status" -eq 0 ] && tr -s '[:blank:]' '\n' <<<"$stdout" | grep -qxF -- "$VERSION"; then
    pass "--version prints $VERSION, the version in deno.json"
  else
    fail "--version should print $VERSION, the version in $manifest"
  fi
}

check_init() {
  local dir="$WORK/init"
  mkdir "$dir"
  cd "$dir"
  imgtool init
  local missing=""
  for file in spec.ts imgtool.toml deno.json; do
    [ -f "$file" ] || missing+=" $file"
  done
  # The editor's import map must point at the API's sources, which must be there.
  local api
  api=$(sed -nE 's/^ *"imgtool": *"([^"]+)".*/\1/p' deno.json 2>/dev/null || true)
  if [ "$status" -ne 0 ] || [ -n "$missing" ]; then
    fail "init in an empty folder should write spec.ts, imgtool.toml and deno.json (missing:${missing:- none})"
  elif [ -z "$api" ] || [ ! -f "$api" ]; then
    fail "init: deno.json should map \"imgtool\" to the API's sources; it maps it to '${api}', which is not a file"
  else
    pass "init writes spec.ts, imgtool.toml and deno.json (\"imgtool\" -> $api) in an empty folder"
  fi

  imgtool validate spec.ts
  if [ "$status" -eq 0 ] && [ -f spec.ts ] && grep -q 'valid' <<<"$stdout"$'\n'"$stderr"; then
    pass "validate of the scaffolded spec exits 0 and says it is valid"
  else
    fail "validate of the scaffolded spec should exit 0 and say it is valid"
  fi

  imgtool uri spec.ts
  if [ "$status" -eq 0 ] && [[ "$stdout" =~ ^[a-z0-9][a-z0-9._/-]*(:[0-9]+/[a-z0-9._/-]+)?:[0-9a-f]{32}$ ]]; then
    pass "uri of the scaffolded spec is $stdout (a 32-hex tag)"
  else
    fail "uri of the scaffolded spec should print one NAME:TAG line with a 32-hex tag"
  fi

  imgtool dockerfile spec.ts
  if [ "$status" -eq 0 ] && [[ "$(head -n 1 <<<"$stdout")" == "# Generated by imgtool $VERSION "* ]] &&
    grep -qE '^FROM [^ ]+' <<<"$stdout"; then
    pass "dockerfile of the scaffolded spec starts with the generated header and has a FROM"
  else
    fail "dockerfile of the scaffolded spec should start with '# Generated by imgtool $VERSION' and have a FROM line"
  fi
  cd "$WORK"
}

check_plugin() {
  local dir="$WORK/plugin"
  mkdir "$dir"
  cp "$PLUGIN" "$dir/"
  cat >"$dir/spec.ts" <<'EOF'
import { Image } from "imgtool";
import { nonRootUser } from "./non_root_user.ts";

export default Image.fromBase("debian:bookworm-slim")
  .withLayer(nonRootUser("smoker", { uid: 10001 }));
EOF
  cd "$dir"
  imgtool dockerfile spec.ts
  if [ "$status" -eq 0 ] && grep -qE '^RUN groupadd --gid 10001 smoker' <<<"$stdout" &&
    grep -qx 'USER smoker' <<<"$stdout"; then
    pass "a spec with a custom plugin beside it ($(basename "$PLUGIN")): dockerfile has its groupadd/useradd and USER smoker"
  else
    fail "dockerfile of a spec using $(basename "$PLUGIN") should have 'RUN groupadd --gid 10001 smoker' and 'USER smoker'"
  fi
  cd "$WORK"
}

check_mistake() {
  local dir="$WORK/mistake"
  mkdir "$dir"
  # Line 4 names a requirements file that does not exist.
  cat >"$dir/spec.ts" <<'EOF'
import { Image } from "imgtool";

export default Image.fromBase("debian:bookworm-slim")
  .withRequirements("./requirements.txt");
EOF
  cd "$dir"
  imgtool validate spec.ts
  local output="$stdout"$'\n'"$stderr"
  if [ "$status" -eq 2 ] && grep -q '^error:' <<<"$output" &&
    grep -qF "$dir/spec.ts:4" <<<"$output" && grep -qF "requirements.txt" <<<"$output"; then
    pass "a spec naming a missing requirements file: validate exits 2 with an error at spec.ts:4"
  else
    fail "validate of a spec naming a missing requirements file should exit 2 with 'error:' and $dir/spec.ts:4"
  fi
  cd "$WORK"
}

check_build() {
  if [ -z "$SMOKE_BASE_IMAGE" ]; then
    skip "build: SMOKE_BASE_IMAGE names no base image the engine can pull"
    return
  fi
  local client
  if ! client=$(command -v "$DOCKER"); then
    skip "build: no docker client '$DOCKER' (set DOCKER to one)"
    return
  fi
  run 60 "$client" info
  if [ "$status" -ne 0 ]; then
    skip "build: the Docker engine does not answer ($client info exited $status)"
    return
  fi

  local dir="$WORK/build"
  # A value of this run's own: every step is built, not found from an earlier run.
  local run_id
  run_id="$(date +%s)-$$-$RANDOM"
  mkdir "$dir"
  cat >"$dir/imgtool.toml" <<EOF
# Written by scripts/smoke.sh: build with the Docker engine, on the host's network.
builder = "docker"
network = "host"

[docker]
client = "$client"
EOF
  cat >"$dir/spec.ts" <<EOF
import { Image } from "imgtool";

export default Image.fromBase("$SMOKE_BASE_IMAGE")
  .withCommands(["mkdir -p /opt/smoke && echo 'built by imgtool' > /opt/smoke/proof.txt"])
  .withEnvVars({ SMOKE_RUN: "$run_id", SMOKE_TEXT: "costs \$5, 'quoted'" })
  .clone({ name: "imgtool-smoke" });
EOF
  cd "$dir"
  imgtool uri spec.ts
  local uri="$stdout"
  run "$SMOKE_BUILD_TIMEOUT" "${IMGTOOL[@]}" build spec.ts
  local built
  built=$(tail -n 1 <<<"$stdout")
  if [ "$status" -ne 0 ] || [ "$built" != "$uri" ] || [[ ! "$uri" =~ ^imgtool-smoke:[0-9a-f]{32}$ ]]; then
    fail "build of fromBase($SMOKE_BASE_IMAGE).withCommands(...).withEnvVars(...) should exit 0 and print its uri ('$uri')"
    cd "$WORK"
    return
  fi
  BUILT_URI=$uri
  pass "build of a small image from $SMOKE_BASE_IMAGE: $uri"

  # shellcheck disable=SC2016 # expanded inside the container, not here
  run "$SMOKE_TIMEOUT" "$client" run --rm --network=host "$uri" \
    sh -c 'cat /opt/smoke/proof.txt; printf "%s\n" "$SMOKE_RUN" "$SMOKE_TEXT"'
  local expected
  expected=$(printf '%s\n' "built by imgtool" "$run_id" "costs \$5, 'quoted'")
  if [ "$status" -eq 0 ] && [ "$stdout" = "$expected" ]; then
    pass "docker run of $uri: the file the build wrote and its env values, byte for byte"
  else
    stderr+=$'\n'"expected stdout:"$'\n'"$expected"
    fail "docker run --rm --network=host $uri should print the file and the env values"
  fi
  cd "$WORK"
}

echo "smoke test of: ${IMGTOOL[*]}"
echo "on: $(uname -sm); expected version: $VERSION; folder: $WORK"
cd "$WORK"
check_version
check_init
check_plugin
check_mistake
check_build

summary="smoke: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary+=" ($skipped skipped)"
echo "$summary"
if [ "$failed" -ne 0 ]; then exit 1; fi
