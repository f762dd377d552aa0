#!/usr/bin/env bash
# Run by `npm test` before anything else. On a fresh Debian machine (root) it installs what the
# integration tests start for real, and the npm dependencies from the lockfile. It never skips: if a
# dependency cannot be had, it says which and fails, and so does the test run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(notary notary-server notary-signer docker-registry redis-server skopeo containerd ctr dockerd docker openssl curl)
missing=()
for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
if ((${#missing[@]} > 0)); then
  echo "ensure-test-deps: missing ${missing[*]}; installing Debian packages"
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "ensure-test-deps: ERROR: need root and apt-get to install: notary docker-registry redis-server skopeo containerd docker.io openssl curl" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends notary docker-registry redis-server skopeo containerd docker.io openssl curl ca-certificates >/dev/null
  still=()
  for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || still+=("$c"); done
  if ((${#still[@]} > 0)); then
    echo "ensure-test-deps: ERROR: still missing after apt-get install: ${still[*]}" >&2
    exit 1
  fi
fi

# Deployment tests (issue 16): podman and podman-compose (clients-podman, container-image, compose),
# mmdebstrap (the image's stand-in base when node:20-bookworm-slim cannot be pulled), redis-cli for
# Cluster creation and Sentinel queries (store-redis-topologies). Same rule: install or fail loudly.
deploy_need=(podman podman-compose mmdebstrap redis-cli faketime)
deploy_missing=()
for c in "${deploy_need[@]}"; do command -v "$c" >/dev/null 2>&1 || deploy_missing+=("$c"); done
if ((${#deploy_missing[@]} > 0)); then
  echo "ensure-test-deps: missing ${deploy_missing[*]}; installing Debian packages"
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "ensure-test-deps: ERROR: need root and apt-get to install: podman podman-compose mmdebstrap redis-tools faketime" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman podman-compose mmdebstrap redis-tools containernetworking-plugins faketime >/dev/null
  for c in "${deploy_need[@]}"; do
    command -v "$c" >/dev/null 2>&1 || { echo "ensure-test-deps: ERROR: $c still missing after apt-get install" >&2; exit 1; }
  done
fi

# Observability and Kubernetes tests (issue 24): prometheus and promtool (the alert rules' unit test and
# the live-scrape observability test), catatonit (the pause binary of the pods `podman kube play` makes:
# kubernetes-manifests test). Same rule: install or fail loudly.
ops_need=(prometheus promtool catatonit)
ops_missing=()
for c in "${ops_need[@]}"; do command -v "$c" >/dev/null 2>&1 || ops_missing+=("$c"); done
if ((${#ops_missing[@]} > 0)); then
  echo "ensure-test-deps: missing ${ops_missing[*]}; installing Debian packages"
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "ensure-test-deps: ERROR: need root and apt-get to install: prometheus catatonit" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus catatonit >/dev/null
  for c in "${ops_need[@]}"; do
    command -v "$c" >/dev/null 2>&1 || { echo "ensure-test-deps: ERROR: $c still missing after apt-get install" >&2; exit 1; }
  done
fi

# npm ci when node_modules is absent or older than the lockfile.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "ensure-test-deps: npm ci"
  npm ci --no-audit --no-fund
fi
echo "ensure-test-deps: ok ($(notary version 2>/dev/null | grep -m1 -o 'Version: *[^ ]*' || echo notary), $(docker-registry --version 2>/dev/null | head -1), $(skopeo --version), $(containerd --version | cut -d' ' -f1-3))"
