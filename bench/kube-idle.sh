#!/bin/bash
# bench/kube-idle.sh: requests an idle `berth run --kube` sends to the API server, and its
# SIGTERM-to-exit time. Uses the integration harness (tests/integration/lib.sh): the Kubernetes
# API test server over HTTPS, a docker-registry, a signed artifact; 2 CRs (an OCIRepository
# verified with a cosign key from a Secret, and a Kustomization), leader election on. Once both
# are Ready it counts, from the server's request log, the requests made during IDLE_S seconds
# (default 60), by verb and resource, and prints them per minute; then it sends SIGTERM and
# times the exit.
#   BERTH=/path/to/berth BERTH_SRC=$PWD bash bench/kube-idle.sh
# Needs kubectl (scripts/get-kubectl.sh), docker-registry, curl, jq, python3.
IDLE_S=${IDLE_S:-60}
KUBECTL_CACHE=${BERTH_KUBECTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubectl}
source "$(dirname "$0")/../tests/integration/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl
KUBECTL=${KUBECTL:-$(bash "$BERTH_SRC/scripts/get-kubectl.sh" "$KUBECTL_CACHE" 2>/dev/null)}
[ -n "$KUBECTL" ] || skip "kubectl not available"
make_pki
start_kubeapi_tls tok --client-ca "$CA_FILE"
write_token_kubeconfig "$T/kubeconfig" tok
kc() { "$KUBECTL" --kubeconfig "$T/kubeconfig" "$@"; }
kc apply -f "$BERTH_SRC/deploy/crds/source.toolkit.fluxcd.io_ocirepositories.yaml" >/dev/null
kc apply -f "$BERTH_SRC/deploy/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml" >/dev/null
kc create namespace flux-system >/dev/null
start_registry plain
berth_ok generate-key-pair --output-key-prefix="$T/cosign"
berth_ok push artifact "oci://$REG/app:v1" --path="$TESTDATA/app" --source=https://e.com/a.git \
    --revision="v1@sha1:3333333333333333333333333333333333333333"
berth_ok sign "oci://$REG/app:v1" --key="$T/cosign.key"
kc -n flux-system create secret generic cosign-pub --from-file=cosign.pub="$T/cosign.pub" >/dev/null
kc apply -f - >/dev/null <<EOF2
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: app, namespace: flux-system}
spec:
  url: oci://$REG/app
  interval: 10m
  insecure: true
  ref: {tag: v1}
  verify: {provider: cosign, secretRef: {name: cosign-pub}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: app, namespace: flux-system}
spec: {interval: 10m, path: ./, prune: true, sourceRef: {kind: OCIRepository, name: app}}
EOF2
spawn berth "$T/berth.log" "$BERTH" run --kube --kubeconfig="$T/kubeconfig" --state-dir="$T/state"
BPID=$SPAWNED
ready() {
    [ "$(kc -n flux-system get "$1" app -o json 2>/dev/null |
        jq -r '.status.conditions // [] | map(select(.type=="Ready"))[0].status // ""')" = True ]
}
wait_until berth "$BPID" "$T/berth.log" ready ocirepositories
wait_until berth "$BPID" "$T/berth.log" ready kustomizations
sleep 3 # the last status write-backs and Events
reqs() { curl -fsS --cacert "$CA_FILE" "$KAPI/_kubeapi/requests" -o "$T/.reqs"; jq '.items | length' "$T/.reqs"; }
N0=$(reqs)
sleep "$IDLE_S"
reqs >/dev/null
jq -r --argjson n "$N0" --argjson s "$IDLE_S" '.items[$n:] |
    map(select((.userAgent // "") | test("^berth"))) |
    "requests by berth over \($s) s idle: \(length) (\(length * 60 / $s) per minute)",
    (map(.method + " " + .path + (if (.query.watch // "") | test("^(1|true)$") then " (watch)"
        else "" end)) | group_by(.) | map("  \(length)\t\(.[0])") | .[])' "$T/.reqs"
t0=$(_now_us)
kill -TERM "$BPID"
wait "$BPID" || true
echo "SIGTERM to exit: $((($(_now_us) - t0) / 1000)) ms"
