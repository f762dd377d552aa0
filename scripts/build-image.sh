#!/usr/bin/env bash
# `npm run image`: build localhost/trustgate:dev with podman from the Dockerfile.
#
#   BASE_IMAGE          base for every stage (Dockerfile ARG; default node:20-bookworm-slim)
#   IMAGE               the tag to build (default localhost/trustgate:dev)
#   PODMAN_GLOBAL_ARGS  flags before the podman subcommand, e.g. the tests' temporary storage:
#                       "--root DIR --runroot DIR2 --storage-driver vfs --cgroup-manager cgroupfs --events-backend none"
#   BUILD_NETWORK       network for RUN steps (default host: npm ci needs the npm registry)
#   BUILD_CA_FILE       CA bundle npm inside the build trusts (default: npm's own `cafile` setting, if any),
#                       for egress that re-signs TLS; mounted read-only into the RUN steps, not copied
#   TRUSTGATE_IMAGE_CACHE  where the stand-in base's root tarball is kept between runs (default ~/.cache/trustgate)
#
# On a fresh machine the Debian packages it runs (podman; mmdebstrap for the stand-in base) are
# installed when missing, as `npm test` does (scripts/ensure-test-deps.sh): as root with apt-get. Without
# root or apt-get it prints the one command to run and fails. `--deps-only` stops after that step.
#
# When BASE_IMAGE is neither in podman's storage nor pullable (no route to Docker Hub), a local stand-in
# with the node image's layout is built instead — Debian bookworm (minbase, ca-certificates, libstdc++6)
# made with mmdebstrap from Debian's packages, plus this machine's node binary and npm in /usr/local and
# a user `node` (uid 1000) — tagged localhost/trustgate-base:node<version>-bookworm, and the script says so.
# It fails loudly, never falls back silently.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(build_standin) stops the script too
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE:-node:20-bookworm-slim}
IMAGE=${IMAGE:-localhost/trustgate:dev}
BUILD_NETWORK=${BUILD_NETWORK:-host}
CACHE=${TRUSTGATE_IMAGE_CACHE:-${HOME:-/root}/.cache/trustgate}
read -r -a G <<<"${PODMAN_GLOBAL_ARGS:-}"
pm() { podman "${G[@]}" "$@"; }

# TOOL... (each from the Debian package of the same name): install what is missing, or say how and fail.
ensure_tools() {
  local missing=() c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "build-image: ERROR: ${missing[*]} not found. Run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "build-image: ${missing[*]} not found: installing with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for c in "${missing[@]}"; do
    command -v "$c" >/dev/null 2>&1 || { echo "build-image: ERROR: $c still missing after apt-get install" >&2; exit 1; }
  done
}

command -v node >/dev/null || { echo "build-image: ERROR: node not found: install Node 20 (https://nodejs.org), the image is built from this machine's npm lockfile" >&2; exit 1; }
ensure_tools podman mmdebstrap
if [[ ${1:-} == --deps-only ]]; then
  echo "build-image: podman and mmdebstrap are installed"
  exit 0
fi

base_available() {
  pm image exists "$1" && return 0
  echo "build-image: pulling $1"
  # Bounded: with no route out, the pull fails after containers/image's retries.
  timeout 120 podman "${G[@]}" pull -q "$1" >/dev/null 2>&1
}

build_standin() {
  local node_bin node_version npm_dir tag tarball
  node_bin=$(readlink -f "$(command -v node)")
  node_version=$("$node_bin" -p 'process.versions.node')
  [[ ${node_version%%.*} == 20 ]] || { echo "build-image: ERROR: the stand-in needs Node 20, this machine has $node_version" >&2; exit 1; }
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [[ -f $npm_dir/package.json ]] || { echo "build-image: ERROR: npm not found next to node ($npm_dir)" >&2; exit 1; }
  tag="localhost/trustgate-base:node${node_version}-bookworm"
  if pm image exists "$tag"; then
    echo "build-image: using the local stand-in base $tag (already built)" >&2
    echo "$tag"
    return
  fi
  mkdir -p "$CACHE"
  tarball="$CACHE/base-node${node_version}-bookworm.tar"
  if [[ ! -s $tarball ]]; then
    echo "build-image: building the stand-in root with mmdebstrap (Debian bookworm + node $node_version from $node_bin)" >&2
    # ldd node: libc, libm, libdl, libpthread (libc6), libstdc++6, libgcc-s1 — all from Debian packages.
    mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates,libstdc++6,libgcc-s1 \
      --customize-hook="copy-in $node_bin /usr/local/bin" \
      --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\"" \
      --customize-hook="copy-in $npm_dir /usr/local/lib/node_modules" \
      --customize-hook="chroot \"\$1\" ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm" \
      --customize-hook="chroot \"\$1\" ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx" \
      --customize-hook="chroot \"\$1\" useradd --uid 1000 --user-group --create-home --shell /bin/bash node" \
      bookworm "$tarball.part"
    mv "$tarball.part" "$tarball"
  fi
  pm import --quiet --change 'CMD ["node"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tarball" "$tag" >/dev/null
  echo "build-image: using the local stand-in base $tag (node $node_version from this machine, Debian packages by mmdebstrap)" >&2
  echo "$tag"
}

ca_args=()
BUILD_CA_FILE=${BUILD_CA_FILE-$(npm config get cafile 2>/dev/null | grep -v '^null$' || true)}
if [[ -n $BUILD_CA_FILE ]]; then
  [[ -r $BUILD_CA_FILE ]] || { echo "build-image: ERROR: BUILD_CA_FILE $BUILD_CA_FILE is not readable" >&2; exit 1; }
  ca_args=(--volume "$(readlink -f "$BUILD_CA_FILE"):/run/trustgate-build-ca.pem:ro" --build-arg NPM_CONFIG_CAFILE=/run/trustgate-build-ca.pem)
  echo "build-image: npm in the build trusts $BUILD_CA_FILE"
fi

# --format docker: the OCI image format has no HEALTHCHECK (podman drops it with a warning).
build_args=(--format docker)
# vfs (no overlay in the sandbox) copies the whole root for every cached layer and deletes them after:
# minutes per step. Without intermediate layers each stage is committed once.
[[ $(pm info --format '{{.Store.GraphDriverName}}' 2>/dev/null) == vfs ]] && build_args+=(--layers=false)

start=$(date +%s)
base=$BASE_IMAGE
if ! base_available "$BASE_IMAGE"; then
  echo "build-image: $BASE_IMAGE cannot be pulled here" >&2
  base=$(build_standin)
  echo "build-image: NOTE: $IMAGE is built FROM the stand-in $base, not $BASE_IMAGE"
fi
# --pull=never: the base was checked or made above; never look for it on a registry.
pm build --pull=never --network "$BUILD_NETWORK" "${build_args[@]}" "${ca_args[@]}" --build-arg "BASE_IMAGE=$base" --tag "$IMAGE" --file Dockerfile .
echo "build-image: built $IMAGE from $base in $(($(date +%s) - start)) s"
