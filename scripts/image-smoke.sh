#!/usr/bin/env bash
# image-smoke.sh: run the berth of a built image (scripts/build-image.sh) as its pod would, in
# controller mode, against the Kubernetes API test server and a loopback docker-registry.
#
# Design: the image's root filesystem (umoci unpack of the OCI layout) is bind-mounted
# read-only in a private mount namespace, with tmpfs on /tmp and /var/lib/berth (the
# Deployment's emptyDir volumes), and berth runs there as uid 65532 (`chroot --userspec`):
# `berth run --kube --once` with a kubeconfig copied into /tmp. The harness of the integration
# tests (tests/integration/lib.sh) starts the servers; the Flux CRDs of deploy/ and a
# Kustomization are applied with kubectl; the check is that its ConfigMap reaches the API server
# and the Kustomization's status says Ready=True.
#
# Usage: BERTH=build/berth scripts/image-smoke.sh [OCI_LAYOUT:TAG]   (default build-image/oci:VERSION)
# Needs root (unshare, mount, chroot). Not part of the test suite (it needs a built image).
set -euo pipefail
export BERTH_SRC=${BERTH_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
version=$(sed -n 's/^project(berth VERSION \([0-9.]*\).*/\1/p' "$BERTH_SRC/CMakeLists.txt")
image=${1:-$BERTH_SRC/build-image/oci:$version}
source "$BERTH_SRC/tests/integration/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl umoci unshare
require_kubectl

it "the image unpacked"
umoci unpack --image "$image" "$T/bundle" >/dev/null
ROOT=$T/bundle/rootfs
[ -x "$ROOT/usr/local/bin/berth" ] || fail "no /usr/local/bin/berth in $image"

it "servers, CRDs, an artifact and a Kustomization"
make_pki
TOKEN=image-smoke-token
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE"
write_token_kubeconfig "$T/kubeconfig" "$TOKEN"
kc() { "$KUBECTL" --kubeconfig "$T/kubeconfig" "$@"; }
kc apply -f "$BERTH_SRC/deploy/crds/source.toolkit.fluxcd.io_ocirepositories.yaml" >/dev/null
kc apply -f "$BERTH_SRC/deploy/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml" >/dev/null
kc create namespace flux-system >/dev/null
start_registry plain
mkdir -p "$T/app"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-image, namespace: default}\ndata: {k: v}\n' \
    >"$T/app/cm.yaml"
berth_ok push artifact "oci://$REG/smoke:v1" --path="$T/app" --source=https://example.com/s.git \
    --revision=v1@sha1:5555555555555555555555555555555555555555
kc apply -f - >/dev/null <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: smoke, namespace: flux-system}
spec: {url: "oci://$REG/smoke", interval: 10m, ref: {tag: v1}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: smoke, namespace: flux-system}
spec: {interval: 10m, path: ./, prune: true, sourceRef: {kind: OCIRepository, name: smoke}}
EOF

it "berth of the image, read-only root, uid 65532: berth run --kube --once"
cp "$T/kubeconfig" "$T/kubeconfig.pod"
chmod 644 "$T/kubeconfig.pod"
# shellcheck disable=SC2016
unshare -m bash -c '
    set -e
    mount --make-rprivate /
    mount --bind "$1" "$1"
    mount -o remount,bind,ro "$1"
    mount -t tmpfs -o mode=1777 tmpfs "$1/tmp"
    mount -t tmpfs -o uid=65532,gid=65532,mode=700 tmpfs "$1/var/lib/berth"
    cp "$2" "$1/tmp/kubeconfig"
    mkdir -p "$1/proc" 2>/dev/null || true
    exec chroot --userspec=65532:65532 "$1" /usr/local/bin/berth run --kube --once \
        --kubeconfig=/tmp/kubeconfig --state-dir=/var/lib/berth --leader-elect=false
' smoke "$ROOT" "$T/kubeconfig.pod" >"$T/pod.log" 2>&1 || {
    cat "$T/pod.log" >&2
    fail "berth run in the image failed"
}
log "$(tail -n 5 "$T/pod.log")"
[ -n "$(kube_object "" configmaps default from-image)" ] || fail "the ConfigMap did not reach the API server"
ready=$(kc -n flux-system get kustomization smoke -o json | jq -r '.status.conditions[] | select(.type=="Ready") | .status')
assert_eq True "$ready" "the Kustomization's Ready condition, written by the image's berth"
finish
