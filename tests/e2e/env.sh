#!/usr/bin/env bash
# imgtool end-to-end test environment.
#
#   tests/e2e/env.sh [up]    bring everything up (idempotent; a second run reuses what is up)
#   tests/e2e/env.sh status  show what is up
#   tests/e2e/env.sh verify  re-run the checks that `up` runs after a cold build
#   tests/e2e/env.sh down    stop the processes this script started (by their recorded pids)
#   tests/e2e/env.sh relock  regenerate env/fixtures/poetry_project/poetry.lock (index up)
#
# `up` writes KEY=value facts for the tests to tests/e2e/.work/env. All state (registry
# storage, logs, pid files, caches) lives in tests/e2e/.work/ (git-ignored), except the
# base images' build cache, which is buildah's local image store (see build_* below).
# See tests/e2e/README.md.
#
# Machine rules this script keeps: Docker never uses a bridge network (the engine is started
# with --bridge=none, every docker build/run passes --network=host); servers listen on
# 127.0.0.1 only; only processes this script started (recorded pids) are ever stopped.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_ASSETS=$E2E_DIR/env
WORK=${IMGTOOL_E2E_WORK:-$E2E_DIR/.work}
LOGS=$WORK/logs
RUN=$WORK/run
CACHE=$WORK/cache
ENV_FILE=$WORK/env
TIMINGS=$WORK/timings.log

# The 20.10 client from Debian's docker.io: /usr/local/bin/docker on this machine has no buildx
# and refuses BuildKit builds.
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=1
PYTHON=/usr/bin/python3 # Debian's python3, present on any fresh machine after step 1

# Overridable only to run a second, separate instance beside a running one (its own .work too).
REGISTRY=${IMGTOOL_E2E_REGISTRY:-127.0.0.1:5000}
AUTH_REGISTRY=${IMGTOOL_E2E_AUTH_REGISTRY:-127.0.0.1:5001}
AUTH_USER=imgtool
AUTH_PASSWORD=imgtool-pass
INDEX_ADDR=127.0.0.1:8765
PACKAGE_INDEX=http://$INDEX_ADDR/simple/

SUITE=bookworm
ARCHES=(amd64 arm64)
DEBIAN_BASE=$REGISTRY/imgtool-test/debian:bookworm
PYTHON_BASE=$REGISTRY/imgtool-test/python:3.11-bookworm
AUTH_PYTHON_BASE=$AUTH_REGISTRY/imgtool-test/python:3.11-bookworm
# amd64 only: the Python base with a user `app` it runs as (env/python-nonroot.Containerfile).
NONROOT_BASE=$REGISTRY/imgtool-test/python-nonroot:3.11-bookworm
RECIPE_LABEL=org.imgtool.e2e.recipe
# Two more Docker engines, on loopback TCP ports, for the pool-of-builders tests (each with
# its own data and exec roots under .work/engines/NAME): NAME:PORT.
POOL_ENGINES=(pool-a:2385 pool-b:2386)
# Bump DEBIAN_RECIPE_VERSION when build_debian_image changes, so cached images are rebuilt.
DEBIAN_RECIPE_VERSION=1

DEBIAN_PACKAGES=(
  docker.io containerd runc iptables docker-registry buildah skopeo debootstrap
  debian-archive-keyring apache2-utils qemu-user-static binfmt-support
  python3 python3-venv python3-pip python3-poetry curl ca-certificates util-linux
)

# ---------------------------------------------------------------------------------------------
# small helpers

# Set to 1 when this run started a server or pushed an image: `up` then runs the full checks.
CHANGED=0

log() { printf '    %s\n' "$*"; }
die() {
  printf 'env.sh: error: %s\n' "$*" >&2
  exit 1
}

# Print the last lines of a log file and fail: used when a quiet step breaks.
die_with_log() {
  local message=$1 logfile=$2
  printf 'env.sh: error: %s (last lines of %s):\n' "$message" "$logfile" >&2
  tail -n 30 "$logfile" >&2 || true
  exit 1
}

# Run one named step of `up`, printing and recording how long it took.
run_step() {
  local name=$1
  shift
  local start end
  printf '==> %s\n' "$name"
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  printf '<== %s: %ss\n' "$name" "$((end - start))"
  printf '%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$name" "$((end - start))" >>"$TIMINGS"
}

sha256_of() { sha256sum | cut -c1-12; }

# HTTP status code of a GET, or 000 when nothing answers.
http_status() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" || true; }

# ---------------------------------------------------------------------------------------------
# processes this script starts: pid file + a string its command line must contain

pid_file() { printf '%s/%s.pid' "$RUN" "$1"; }

# Print the recorded pid of NAME if that process is still alive and still ours.
our_pid() {
  local name=$1 file pid signature
  file=$(pid_file "$name")
  [[ -f $file ]] || return 1
  read -r pid signature <"$file" || return 1
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$signature" || return 1
  printf '%s' "$pid"
}

# Start a long-running server in its own session, detached from this shell, and record it.
start_background() {
  local name=$1 signature=$2
  shift 2
  # 9>&-: the server must not inherit (and so hold forever) the lock of prepare_work_dir.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  local pid=$!
  CHANGED=1
  printf '%s %s\n' "$pid" "$signature" >"$(pid_file "$name")"
  log "started $name (pid $pid), log: $LOGS/$name.log"
}

# A process counts as gone once it has exited, even if nobody has reaped it yet (zombie).
process_alive() {
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}

stop_recorded() {
  local name=$1 pid
  if ! pid=$(our_pid "$name"); then
    rm -f "$(pid_file "$name")"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    process_alive "$pid" || break
    sleep 0.5
  done
  if process_alive "$pid"; then
    log "$name (pid $pid) did not stop in 30s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pid_file "$name")"
}

wait_until() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@"; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.5
  done
  log "$what is ready"
}

# ---------------------------------------------------------------------------------------------
# step 1: Debian packages

# Keep package installs from starting services: a docker.io or docker-registry postinst would
# otherwise start dockerd with its default bridge or a registry on all interfaces.
install_debian_packages() {
  local missing=() package
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  if ((${#missing[@]} == 0)); then
    log "all ${#DEBIAN_PACKAGES[@]} packages already installed"
    return
  fi
  log "installing: ${missing[*]}"
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  local status=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  } >>"$LOGS/apt.log" 2>&1 || status=$?
  if ((made_policy)); then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
  ((status == 0)) || die_with_log "apt-get failed" "$LOGS/apt.log"
}

# arm64 binaries (debootstrap's second stage, RUN steps, `docker run --platform linux/arm64`)
# run through qemu-user-static; the kernel needs binfmt_misc mounted and the handler registered
# with the F flag (interpreter opened now, so it works inside containers and chroots).
register_arm64_emulation() {
  local binfmt=/proc/sys/fs/binfmt_misc
  if [[ ! -e $binfmt/register ]]; then
    mount -t binfmt_misc binfmt_misc "$binfmt"
  fi
  if [[ ! -e $binfmt/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 >>"$LOGS/binfmt.log" 2>&1 ||
      sed -n '/^:qemu-aarch64:/p' /usr/lib/binfmt.d/qemu-aarch64.conf >"$binfmt/register"
  fi
  grep -q '^enabled' "$binfmt/qemu-aarch64" || die "qemu-aarch64 binfmt handler is not enabled"
  grep -q '^flags:.*F' "$binfmt/qemu-aarch64" ||
    die "qemu-aarch64 binfmt handler lacks the F flag; containers cannot run arm64 binaries"
  log "qemu-aarch64 binfmt handler: $(grep '^flags' "$binfmt/qemu-aarch64")"
}

# ---------------------------------------------------------------------------------------------
# step 2: Docker engine

docker_answers() { timeout 10 "$DOCKER" version >/dev/null 2>&1; }

# Reuse a running engine (maybe started by someone else); start one only if none answers.
# --bridge=none --iptables=false: no docker0 bridge, no NAT; containers use the host network.
start_docker_engine() {
  if docker_answers; then
    if our_pid dockerd >/dev/null; then
      log "reusing dockerd started by this script (pid $(our_pid dockerd))"
    else
      rm -f "$(pid_file dockerd)"
      log "reusing a running Docker engine not started by this script (it will not be stopped)"
    fi
    return
  fi
  start_background dockerd "dockerd --iptables=false --bridge=none" \
    dockerd --iptables=false --bridge=none
  wait_until "docker engine" 90 docker_answers ||
    die_with_log "dockerd did not answer within 90s" "$LOGS/dockerd.log"
}

# The pool's engines: like the main one (no bridge, no iptables), each its own dockerd with its
# own containerd, listening on 127.0.0.1 only. Loopback registries need no insecure-registry
# setting: the engine treats 127.0.0.0/8 as insecure already.
pool_engine_dir() { printf '%s/engines/%s' "$WORK" "$1"; }
pool_engine_host() { printf 'tcp://127.0.0.1:%s' "$1"; }
pool_engine_answers() { timeout 10 "$DOCKER" -H "$(pool_engine_host "$1")" version >/dev/null 2>&1; }

start_pool_engine() {
  local name=$1 port=$2 dir
  dir=$(pool_engine_dir "$name")
  if pool_engine_answers "$port"; then
    if our_pid "$name" >/dev/null; then
      log "reusing $name on 127.0.0.1:$port (pid $(our_pid "$name"))"
    else
      rm -f "$(pid_file "$name")"
      log "WARNING: an engine not started by this script answers on 127.0.0.1:$port; reusing it"
    fi
    return
  fi
  mkdir -p "$dir/data" "$dir/exec"
  start_background "$name" "--pidfile $dir/dockerd.pid" \
    dockerd -H "$(pool_engine_host "$port")" --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" --iptables=false --bridge=none
  wait_until "$name on 127.0.0.1:$port" 90 pool_engine_answers "$port" ||
    die_with_log "$name did not answer within 90s" "$LOGS/$name.log"
}

start_pool_engines() {
  local engine
  for engine in "${POOL_ENGINES[@]}"; do
    start_pool_engine "${engine%%:*}" "${engine##*:}"
  done
}

# ---------------------------------------------------------------------------------------------
# step 3: registries

write_registry_config() {
  local dir=$1 addr=$2 auth=$3
  mkdir -p "$dir/storage"
  {
    printf 'version: 0.1\n'
    printf 'log:\n  level: info\n  fields:\n    service: registry-%s\n' "$addr"
    printf 'storage:\n  filesystem:\n    rootdirectory: %s/storage\n' "$dir"
    printf '  delete:\n    enabled: true\n'
    printf '  maintenance:\n    uploadpurging:\n      enabled: false\n'
    printf 'http:\n  addr: %s\n  secret: imgtool-e2e-not-a-secret\n' "$addr"
    printf '  headers:\n    X-Content-Type-Options: [nosniff]\n'
    if [[ $auth == htpasswd ]]; then
      printf 'auth:\n  htpasswd:\n    realm: imgtool-e2e\n    path: %s/htpasswd\n' "$dir"
    fi
  } >"$dir/config.yml"
}

registry_answers() {
  local addr=$1 expected=$2
  [[ $(http_status "http://$addr/v2/") == "$expected" ]]
}

# Distribution 2.8 answers GET /v2/ with 200 (open) or 401 (auth required).
start_registry() {
  local name=$1 addr=$2 auth=$3 expected=200
  [[ $auth == htpasswd ]] && expected=401
  local status
  status=$(http_status "http://$addr/v2/")
  if [[ $status != 000 ]]; then
    [[ $status == "$expected" ]] ||
      log "WARNING: $addr answers GET /v2/ with $status (expected $expected); reusing it anyway"
    log "reusing the registry on $addr"
    return
  fi
  local dir=$WORK/registry/$name
  write_registry_config "$dir" "$addr" "$auth"
  if [[ $auth == htpasswd ]] && ! htpasswd -vb "$dir/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" \
    >/dev/null 2>&1; then
    # Distribution accepts only bcrypt entries (-B).
    htpasswd -Bbc "$dir/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" 2>/dev/null
  fi
  start_background "$name" "$dir/config.yml" docker-registry serve "$dir/config.yml"
  wait_until "registry on $addr" 30 registry_answers "$addr" "$expected" ||
    die_with_log "registry on $addr did not start" "$LOGS/$name.log"
}

start_registries() {
  start_registry registry "$REGISTRY" none
  start_registry auth-registry "$AUTH_REGISTRY" htpasswd
}

# ---------------------------------------------------------------------------------------------
# step 4: base images
#
# Each arch's image is built into buildah's local store under a name that carries a hash of its
# recipe, and reused from there when the registry lacks it (a fresh clone, a wiped .work). Only
# a new recipe or a new machine pays for debootstrap and apt-get under qemu.

debian_recipe() {
  printf 'suite=%s variant=minbase version=%s\n' "$SUITE" "$DEBIAN_RECIPE_VERSION" | sha256_of
}
python_recipe() {
  { debian_recipe; cat "$ENV_ASSETS/python-base.Containerfile"; } | sha256_of
}
nonroot_recipe() {
  { python_recipe; cat "$ENV_ASSETS/python-nonroot.Containerfile"; } | sha256_of
}
debian_local_image() { printf 'localhost/imgtool-e2e/debian:%s-%s-%s' "$SUITE" "$1" "$(debian_recipe)"; }
python_local_image() { printf 'localhost/imgtool-e2e/python:3.11-%s-%s-%s' "$SUITE" "$1" "$(python_recipe)"; }

local_image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# True when REF in the registry is an index with both arches built from RECIPE.
registry_index_is_current() {
  local ref=$1 recipe=$2 raw arch label
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$ref" 2>/dev/null) || return 1
  printf '%s' "$raw" | "$PYTHON" -c '
import json, sys
index = json.load(sys.stdin)
arches = {m.get("platform", {}).get("architecture") for m in index.get("manifests", [])}
sys.exit(0 if set(sys.argv[1:]) <= arches else 1)' "${ARCHES[@]}" || return 1
  for arch in "${ARCHES[@]}"; do
    label=$(skopeo inspect --tls-verify=false --override-os linux --override-arch "$arch" \
      --format "{{index .Labels \"$RECIPE_LABEL\"}}" "docker://$ref" 2>/dev/null) || return 1
    [[ $label == "$recipe" ]] || return 1
  done
}

# debootstrap a minbase root file system for ARCH and commit it as a one-layer image.
# For arm64 the second stage runs through qemu (binfmt). buildah, not `docker import`, because
# the 20.10 engine's import ignores --platform and would label the arm64 tree amd64.
build_debian_image() {
  local arch=$1 image rootfs ctr mnt logfile
  image=$(debian_local_image "$arch")
  if local_image_exists "$image"; then
    log "debian $arch: cached in buildah's store ($image)"
    return
  fi
  rootfs=$WORK/build/debian-$arch
  logfile=$LOGS/debootstrap-$arch.log
  rm -rf "$rootfs"
  mkdir -p "$rootfs" "$CACHE/debootstrap-$arch"
  log "debootstrap --variant=minbase --arch=$arch $SUITE (log: $logfile)"
  debootstrap --variant=minbase --arch="$arch" --cache-dir="$CACHE/debootstrap-$arch" \
    "$SUITE" "$rootfs" >"$logfile" 2>&1 || die_with_log "debootstrap $arch failed" "$logfile"
  # Like Debian's official images: no device nodes (the runtime mounts /dev), no apt lists.
  find "$rootfs/dev" -mindepth 1 -delete
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb
  ctr=$(buildah from --arch "$arch" --os linux scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$rootfs" --numeric-owner -cpf - . | tar -C "$mnt" --numeric-owner -xpf -
  buildah umount "$ctr" >/dev/null
  buildah config --arch "$arch" --os linux \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["bash"]' --label "$RECIPE_LABEL=$(debian_recipe)" "$ctr"
  buildah commit --rm --quiet "$ctr" "$image" >/dev/null
  rm -rf "$rootfs"
  log "debian $arch: built $image"
}

# apt-get install python3 python3-venv python3-pip on top of the debian image (for arm64 the
# RUN step runs under qemu emulation; this is the slow one, hence the cache).
build_python_image() {
  local arch=$1 image logfile
  image=$(python_local_image "$arch")
  if local_image_exists "$image"; then
    log "python $arch: cached in buildah's store ($image)"
    return
  fi
  logfile=$LOGS/python-base-$arch.log
  log "buildah bud --platform linux/$arch (log: $logfile)"
  buildah bud --network=host --pull-never --platform "linux/$arch" \
    --build-arg "BASE=$(debian_local_image "$arch")" \
    --label "$RECIPE_LABEL=$(python_recipe)" \
    -f "$ENV_ASSETS/python-base.Containerfile" -t "$image" "$ENV_ASSETS" >"$logfile" 2>&1 ||
    die_with_log "python base $arch build failed" "$logfile"
  log "python $arch: built $image"
}

# Push each arch as REF-<arch>, then both together as one multi-arch index at REF.
# The index is pushed last, so its presence means the whole publication finished.
publish_multiarch() {
  local ref=$1 recipe=$2 local_image_of=$3 arch list
  list=localhost/imgtool-e2e/manifest-list-$recipe
  buildah manifest rm "$list" >/dev/null 2>&1 || true
  buildah manifest create "$list" >/dev/null
  for arch in "${ARCHES[@]}"; do
    buildah push --quiet --tls-verify=false "$("$local_image_of" "$arch")" "docker://$ref-$arch"
    buildah manifest add "$list" "containers-storage:$("$local_image_of" "$arch")" >/dev/null
  done
  buildah manifest push --quiet --all --tls-verify=false "$list" "docker://$ref"
  buildah manifest rm "$list" >/dev/null
  CHANGED=1
  log "pushed $ref (index: ${ARCHES[*]}) and $ref-<arch>"
}

ensure_debian_base() {
  if registry_index_is_current "$DEBIAN_BASE" "$(debian_recipe)"; then
    log "$DEBIAN_BASE is in the registry and current"
    return
  fi
  local arch
  for arch in "${ARCHES[@]}"; do
    run_step "debian base $arch" build_debian_image "$arch"
  done
  publish_multiarch "$DEBIAN_BASE" "$(debian_recipe)" debian_local_image
}

ensure_python_base() {
  if registry_index_is_current "$PYTHON_BASE" "$(python_recipe)"; then
    log "$PYTHON_BASE is in the registry and current"
    return
  fi
  local arch
  for arch in "${ARCHES[@]}"; do
    local_image_exists "$(python_local_image "$arch")" || build_debian_image "$arch"
    run_step "python base $arch" build_python_image "$arch"
  done
  publish_multiarch "$PYTHON_BASE" "$(python_recipe)" python_local_image
}

# The non-root base, from the Python base's amd64 image as the registry serves it (so that it
# builds whether or not buildah's store still has the Python base).
ensure_nonroot_base() {
  local label logfile=$LOGS/python-nonroot.log
  label=$(skopeo inspect --tls-verify=false --format "{{index .Labels \"$RECIPE_LABEL\"}}" \
    "docker://$NONROOT_BASE" 2>/dev/null) || true
  if [[ $label == "$(nonroot_recipe)" ]]; then
    log "$NONROOT_BASE is in the registry and current"
    return
  fi
  buildah bud --network=host --tls-verify=false --platform linux/amd64 \
    --build-arg "BASE=$PYTHON_BASE-amd64" --label "$RECIPE_LABEL=$(nonroot_recipe)" \
    -f "$ENV_ASSETS/python-nonroot.Containerfile" -t localhost/imgtool-e2e/python-nonroot \
    "$ENV_ASSETS" >"$logfile" 2>&1 || die_with_log "non-root base build failed" "$logfile"
  buildah push --quiet --tls-verify=false localhost/imgtool-e2e/python-nonroot \
    "docker://$NONROOT_BASE"
  CHANGED=1
  log "pushed $NONROOT_BASE (amd64, runs as app)"
}

# Tests of pulls with credentials need an image behind auth: copy the Python index there.
copy_python_base_to_auth_registry() {
  local source_raw target_raw
  source_raw=$(skopeo inspect --tls-verify=false --raw "docker://$PYTHON_BASE" | sha256sum)
  target_raw=$(skopeo inspect --tls-verify=false --creds "$AUTH_USER:$AUTH_PASSWORD" --raw \
    "docker://$AUTH_PYTHON_BASE" 2>/dev/null | sha256sum) || true
  if [[ $source_raw == "$target_raw" ]]; then
    log "$AUTH_PYTHON_BASE is current"
    return
  fi
  skopeo copy --quiet --all --src-tls-verify=false --dest-tls-verify=false \
    --dest-creds "$AUTH_USER:$AUTH_PASSWORD" "docker://$PYTHON_BASE" "docker://$AUTH_PYTHON_BASE"
  CHANGED=1
  log "copied $PYTHON_BASE to $AUTH_PYTHON_BASE"
}

# Docker 20.10 keeps one platform per tag: this leaves the amd64 variants loaded.
load_bases_into_docker() {
  local ref
  for ref in "$PYTHON_BASE" "$DEBIAN_BASE"; do
    "$DOCKER" pull -q --platform linux/amd64 "$ref" >/dev/null
    log "docker has $ref ($("$DOCKER" image inspect -f '{{.Os}}/{{.Architecture}}' "$ref"))"
  done
}

# ---------------------------------------------------------------------------------------------
# step 5: Python package index

build_package_index() {
  "$PYTHON" "$ENV_ASSETS/build_wheels.py" "$ENV_ASSETS/packages" "$WORK/pypi" >"$LOGS/wheels.log"
  log "$(grep -c '^wheel ' "$LOGS/wheels.log") wheels in $WORK/pypi (PEP 503 index under simple/)"
}

index_answers() { [[ $(http_status "http://$INDEX_ADDR/simple/") == 200 ]]; }

start_package_index() {
  build_package_index
  if [[ $(http_status "http://$INDEX_ADDR/simple/") != 000 ]]; then
    log "reusing the package index on $INDEX_ADDR"
    return
  fi
  start_background package-index "--directory $WORK/pypi" \
    "$PYTHON" -m http.server --bind 127.0.0.1 --directory "$WORK/pypi" "${INDEX_ADDR##*:}"
  wait_until "package index on $INDEX_ADDR" 30 index_answers ||
    die_with_log "package index did not start" "$LOGS/package-index.log"
}

# ---------------------------------------------------------------------------------------------
# step 6: the facts file

write_env_file() {
  local tmp=$ENV_FILE.tmp
  {
    printf '# written by tests/e2e/env.sh up at %s\n' "$(date -u +%FT%TZ)"
    printf 'E2E_WORK=%s\n' "$WORK"
    printf 'DOCKER=%s\n' "$DOCKER"
    printf 'DOCKER_BUILDKIT=1\n'
    printf 'REGISTRY=%s\n' "$REGISTRY"
    printf 'AUTH_REGISTRY=%s\n' "$AUTH_REGISTRY"
    printf 'AUTH_USER=%s\n' "$AUTH_USER"
    printf 'AUTH_PASSWORD=%s\n' "$AUTH_PASSWORD"
    printf 'DEBIAN_BASE=%s\n' "$DEBIAN_BASE"
    printf 'DEBIAN_BASE_AMD64=%s-amd64\n' "$DEBIAN_BASE"
    printf 'DEBIAN_BASE_ARM64=%s-arm64\n' "$DEBIAN_BASE"
    printf 'PYTHON_BASE=%s\n' "$PYTHON_BASE"
    printf 'PYTHON_BASE_AMD64=%s-amd64\n' "$PYTHON_BASE"
    printf 'PYTHON_BASE_ARM64=%s-arm64\n' "$PYTHON_BASE"
    printf 'AUTH_PYTHON_BASE=%s\n' "$AUTH_PYTHON_BASE"
    printf 'NONROOT_BASE=%s\n' "$NONROOT_BASE"
    printf 'PACKAGE_INDEX=%s\n' "$PACKAGE_INDEX"
    printf 'PACKAGE_FILES=http://%s/files/\n' "$INDEX_ADDR"
    printf 'POETRY_FIXTURE=%s\n' "$ENV_ASSETS/fixtures/poetry_project"
    printf 'DOCKERD_PID=%s\n' "$(our_pid dockerd || true)"
    printf 'REGISTRY_PID=%s\n' "$(our_pid registry || true)"
    printf 'AUTH_REGISTRY_PID=%s\n' "$(our_pid auth-registry || true)"
    printf 'PACKAGE_INDEX_PID=%s\n' "$(our_pid package-index || true)"
    local engine letter=A
    for engine in "${POOL_ENGINES[@]}"; do
      printf 'POOL_ENGINE_%s=%s\n' "$letter" "$(pool_engine_host "${engine##*:}")"
      printf 'POOL_ENGINE_%s_PID=%s\n' "$letter" "$(our_pid "${engine%%:*}" || true)"
      letter=B
    done
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
  log "wrote $ENV_FILE"
}

# ---------------------------------------------------------------------------------------------
# checks (run by `up` after it built something, and by `verify`)

# Run one check with errexit in force inside it (a function called from an `if` would run
# with errexit off), its output kept in logs/checks.log and shown on failure.
check() {
  local what=$1 status=0
  shift
  printf '\n### %s\n' "$what" >>"$LOGS/checks.log"
  set +e
  (
    set -e
    "$@"
  ) >"$LOGS/check.out" 2>&1
  status=$?
  set -e
  cat "$LOGS/check.out" >>"$LOGS/checks.log"
  if ((status != 0)); then
    tail -n 25 "$LOGS/check.out" >&2
    die "check failed: $what"
  fi
  log "ok: $what"
}

docker_run() { "$DOCKER" run --rm --network=host "$@"; }

# Digest of ARCH's manifest in the PYTHON_BASE index.
index_entry_digest() {
  skopeo inspect --tls-verify=false --raw "docker://$PYTHON_BASE" | "$PYTHON" -c '
import json, sys
index = json.load(sys.stdin)
print(next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == sys.argv[1]))
' "$1"
}

# Run IMAGE for PLATFORM; its `uname -m` must be EXPECTED and python3 must import venv.
check_arch_and_venv() {
  local platform=$1 expected=$2 image=$3 out
  out=$(docker_run --platform "$platform" "$image" \
    sh -c 'uname -m && python3 -c "import venv, sys; print(sys.version.split()[0])"')
  printf '%s\n' "$out"
  [[ $(printf '%s\n' "$out" | head -n1) == "$expected" ]]
}

check_pip_from_index() {
  docker_run -e PIP_DISABLE_PIP_VERSION_CHECK=1 "$PYTHON_BASE" sh -ec "
    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install --no-cache-dir --index-url $PACKAGE_INDEX imgtool-demo-b
    /tmp/venv/bin/python -c 'import imgtool_demo_b; print(imgtool_demo_b.describe())'
    /tmp/venv/bin/pip install --no-cache-dir --index-url $PACKAGE_INDEX imgtool-demo-hello
    /tmp/venv/bin/python -c 'import imgtool_demo_hello' | grep -qx 'imgtool-demo-hello 0.1.0'
    /tmp/venv/bin/imgtool-demo-hello"
}

poetry_env() {
  export POETRY_VIRTUALENVS_IN_PROJECT=true POETRY_CACHE_DIR=$1/.poetry-cache
  export PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring # no keyring prompts or D-Bus
}

copy_poetry_fixture() {
  rm -rf "$1"
  mkdir -p "$1"
  cp -r "$ENV_ASSETS/fixtures/poetry_project/." "$1/"
}

# The committed lock must still match the fixture, install from the index, and be exactly what
# poetry resolves against the index now (so the wheels' hashes have not drifted).
check_poetry_fixture() {
  local copy=$WORK/poetry-check
  copy_poetry_fixture "$copy"
  cd "$copy"
  poetry_env "$copy"
  poetry lock --check
  poetry install --no-interaction
  .venv/bin/python -c 'import imgtool_poetry_fixture as f; f.main()' |
    grep -x 'imgtool-demo-b 2.0.0 using imgtool-demo-a 1.1.0'
  rm -rf .poetry-cache
  poetry lock --no-interaction
  diff -u "$ENV_ASSETS/fixtures/poetry_project/poetry.lock" poetry.lock
}

# A pool engine answers, pulls from the loopback registry and runs a step on the host network.
check_pool_engine() {
  local port=$1 out
  out=$("$DOCKER" -H "$(pool_engine_host "$port")" run --rm --network=host "$DEBIAN_BASE-amd64" \
    uname -m)
  printf '%s\n' "$out"
  [[ $out == x86_64 ]]
}

verify_environment() {
  local engine
  for engine in "${POOL_ENGINES[@]}"; do
    check "pool engine ${engine%%:*} on 127.0.0.1:${engine##*:} pulls and runs" \
      check_pool_engine "${engine##*:}"
  done
  check "docker pull $PYTHON_BASE" "$DOCKER" pull -q "$PYTHON_BASE"
  check "amd64 python base: uname -m = x86_64, import venv" \
    check_arch_and_venv linux/amd64 x86_64 "$PYTHON_BASE"
  # arm64: the index's arm64 entry, by its digest. `docker run --platform linux/arm64 TAG`
  # works too, but re-points the engine's tag at arm64 (20.10 keeps one platform per tag) under
  # tests that may be running; pulling by the index digest clashes with the amd64 pull.
  check "arm64 python base: uname -m = aarch64, import venv (qemu)" \
    check_arch_and_venv linux/arm64 aarch64 "${PYTHON_BASE%:*}@$(index_entry_digest arm64)"
  check "pip install imgtool-demo-b from $PACKAGE_INDEX in the python base" check_pip_from_index
  check "auth registry refuses anonymous pulls" \
    test "$(http_status "http://$AUTH_REGISTRY/v2/imgtool-test/python/tags/list")" = 401
  check "auth registry serves $AUTH_USER" test "$(http_status -u "$AUTH_USER:$AUTH_PASSWORD" \
    "http://$AUTH_REGISTRY/v2/imgtool-test/python/tags/list")" = 200
  check "poetry lock --check / install / re-lock of the fixture" check_poetry_fixture
}

# ---------------------------------------------------------------------------------------------
# subcommands

prepare_work_dir() {
  mkdir -p "$WORK" "$LOGS" "$RUN" "$CACHE"
  # One env.sh at a time (parallel test jobs may all call `up`).
  exec 9>"$WORK/.lock"
  flock -w 3600 9 || die "timed out waiting for another env.sh"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "run as root (apt-get, dockerd, binfmt, buildah)"
  prepare_work_dir
  local start
  start=$(date +%s)
  run_step "debian packages" install_debian_packages
  run_step "arm64 emulation (binfmt)" register_arm64_emulation
  run_step "docker engine" start_docker_engine
  run_step "pool engines" start_pool_engines
  run_step "registries" start_registries
  run_step "debian base image" ensure_debian_base
  run_step "python base image" ensure_python_base
  run_step "non-root base image" ensure_nonroot_base
  run_step "auth registry copy" copy_python_base_to_auth_registry
  run_step "load bases into docker" load_bases_into_docker
  run_step "package index" start_package_index
  run_step "env file" write_env_file
  # The full checks (about 10s) run when this run started or pushed anything, or when asked
  # (IMGTOOL_E2E_VERIFY=1, or `env.sh verify`); a run that found everything up skips them.
  if ((CHANGED)) || [[ ${IMGTOOL_E2E_VERIFY:-0} == 1 ]]; then
    run_step "verify" verify_environment
  else
    log "everything was already up; skipped the full checks ('env.sh verify' runs them)"
  fi
  printf 'up: done in %ss; facts in %s\n' "$(($(date +%s) - start))" "$ENV_FILE"
}

cmd_verify() {
  prepare_work_dir
  [[ -f $ENV_FILE ]] || die "run 'env.sh up' first"
  run_step "verify" verify_environment
}

# Regenerate the committed fixtures/poetry_project/poetry.lock with the real poetry against the
# running local index (after changing the fixture or the test packages).
cmd_relock() {
  prepare_work_dir
  index_answers || die "the package index is not up: run 'env.sh up' first"
  local copy=$WORK/poetry-relock
  copy_poetry_fixture "$copy"
  rm -f "$copy/poetry.lock"
  (
    cd "$copy"
    poetry_env "$copy"
    poetry lock --no-interaction
  )
  cp "$copy/poetry.lock" "$ENV_ASSETS/fixtures/poetry_project/poetry.lock"
  log "wrote $ENV_ASSETS/fixtures/poetry_project/poetry.lock"
}

cmd_status() {
  local name pid status=0 engine
  for name in dockerd "${POOL_ENGINES[@]%%:*}" registry auth-registry package-index; do
    if pid=$(our_pid "$name"); then
      printf '%-14s running, started by env.sh (pid %s)\n' "$name" "$pid"
    else
      printf '%-14s not started by env.sh\n' "$name"
    fi
  done
  if docker_answers; then
    echo "docker engine  answers ($DOCKER)"
  else
    echo "docker engine  DOWN"
    status=1
  fi
  for engine in "${POOL_ENGINES[@]}"; do
    if pool_engine_answers "${engine##*:}"; then
      printf '%-14s answers (%s)\n' "${engine%%:*}" "$(pool_engine_host "${engine##*:}")"
    else
      printf '%-14s DOWN (%s)\n' "${engine%%:*}" "$(pool_engine_host "${engine##*:}")"
      status=1
    fi
  done
  printf 'registry       %s GET /v2/ -> %s\n' "$REGISTRY" "$(http_status "http://$REGISTRY/v2/")"
  printf 'auth registry  %s GET /v2/ -> %s\n' "$AUTH_REGISTRY" \
    "$(http_status "http://$AUTH_REGISTRY/v2/")"
  printf 'package index  %s -> %s\n' "$PACKAGE_INDEX" "$(http_status "$PACKAGE_INDEX")"
  registry_answers "$REGISTRY" 200 || status=1
  registry_answers "$AUTH_REGISTRY" 401 || status=1
  index_answers || status=1
  if ((status == 0)); then
    local ref
    for ref in "$DEBIAN_BASE" "$PYTHON_BASE" "$NONROOT_BASE"; do
      if skopeo inspect --tls-verify=false --raw "docker://$ref" >/dev/null 2>&1; then
        printf 'image          %s present\n' "$ref"
      else
        printf 'image          %s MISSING\n' "$ref"
        status=1
      fi
    done
  fi
  [[ -f $ENV_FILE ]] && printf 'facts          %s\n' "$ENV_FILE"
  return "$status"
}

cmd_down() {
  prepare_work_dir
  # Reverse order of start; dockerd only if this script started it.
  local name
  for name in package-index auth-registry registry "${POOL_ENGINES[@]%%:*}" dockerd; do
    stop_recorded "$name"
  done
  # A stopped engine leaves its network namespace mounted in its exec root, which keeps the
  # work folder from being removed: unmount it (only ours, under this work folder).
  for name in "${POOL_ENGINES[@]%%:*}"; do
    local netns
    netns="$(pool_engine_dir "$name")/exec/netns/default"
    if mountpoint -q "$netns" 2>/dev/null; then umount "$netns" || true; fi
  done
  rm -f "$ENV_FILE"
  log "stopped what env.sh had started; images, registry storage and caches are kept in $WORK"
}

main() {
  case ${1:-up} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  verify) cmd_verify ;;
  relock) cmd_relock ;;
  -h | --help | help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown subcommand '$1' (up, down, status, verify, relock)" ;;
  esac
}

main "$@"
