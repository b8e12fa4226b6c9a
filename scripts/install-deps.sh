#!/usr/bin/env bash
# Install what berth needs from Debian packages, and only what is missing (idempotent).
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   build + test dependencies (registry, skopeo, ...)
#   scripts/install-deps.sh --bench  build + test + benchmark tools
set -euo pipefail

build_pkgs=(cmake make gcc pkg-config ca-certificates
  libcurl4-openssl-dev libssl-dev libarchive-dev libjansson-dev libyaml-dev libsodium-dev
  libisal-dev libpcre2-dev libcmocka-dev)
test_pkgs=(docker-registry skopeo umoci apache2-utils openssl curl jq python3 isal git clang-format
  procps tar gzip)
bench_pkgs=(time hyperfine)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_pkgs[@]}") ;;
    --bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

# node + npm drive the sigstore-js cross-check of signed bundles (tests/integration/
# test_signing.sh); a node/npm already on PATH (e.g. from nodesource) is used as it is.
if [ "${#want[@]}" -gt "${#build_pkgs[@]}" ] &&
  { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  want+=(nodejs npm)
fi

# Debian's kubectl (kubernetes-client, extracted into a cache, never installed over /usr/bin)
# checks the Kubernetes API test server; fetched after the packages below.
want_kubectl=false
for arg in "$@"; do [ "$arg" = --test ] || [ "$arg" = --bench ] && want_kubectl=true; done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi
if $want_kubectl; then
  here=$(dirname "$0")
  if ! bash "$here/get-kubectl.sh" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    bash "$here/get-kubectl.sh" >/dev/null
  fi
fi
