#!/bin/bash
# test_kube_scenarios.sh: two Kubernetes scenarios of issue 5 against the Kubernetes API test
# server (testdata/kubeapi) and a real docker-registry, with `berth run --target=kube`:
# (1) a Deployment that never becomes ready fails HealthCheckFailed naming the Deployment and its
# state: early once its progress deadline passes (kstatus Failed), else at the Kustomization's
# timeout (InProgress), not much later; (2) Kustomization b dependsOn a (wait: true on a
# Deployment whose rollout takes seconds): b is not applied before a is Ready, then it is.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl

make_pki
TOKEN=kube-scen-it-token
mkdir -p "$T/cfg"
start_kubeapi_tls "$TOKEN" --rollout-step-ms 50 --time-scale 0.01
KCFG=$T/kubeconfig
write_token_kubeconfig "$KCFG" "$TOKEN"

start_registry plain
STATE=$T/state
ctl() { curl -fsS --cacert "$CA_FILE" "$@"; }
kget() { # GROUP RESOURCE NS NAME: the stored object (JSON) or empty
    ctl -o "$T/.kget" "$KAPI/_kubeapi/objects?group=$1&resource=$2&namespace=$3"
    jq -c --arg n "$4" '[.. | objects | select(.metadata?.name? == $n)] | first // empty' "$T/.kget"
}
push() { berth_ok push artifact "oci://$REG/$1:$2" --path="$3" --source=https://example.com/app.git \
    --revision="$2@sha1:3333333333333333333333333333333333333333"; }
source_yaml() { # NAME TAG
    cat <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: $1, namespace: flux-system}
spec:
  url: oci://$REG/$1
  interval: 10m
  insecure: true
  ref: {tag: $2}
---
EOF
}
run_once() {
    bt run --once --config="$T/cfg" --state-dir="$STATE" --target=kube --kubeconfig="$KCFG" "$@"
    RUN_ERR=$ERR
}
ready_of() { # KUSTOMIZATION FIELD: .status/.reason/.message of its Ready condition
    bt get kustomizations --state-dir="$STATE" -o json
    jq -r --arg k "$1" ".[] | select(.name==\$k) | .status.conditions[] | select(.type==\"Ready\") | .$2" <<<"$OUT"
}
deployment() { # DIR NAME REPLICAS [METADATA_LINES]
    local meta=${4:-}
    [ -n "$meta" ] || meta="labels: {app: $2}"
    mkdir -p "$1"
    cat >"$1/ns.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: scen}
EOF
    cat >"$1/$2.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $2
  namespace: scen
  $meta
spec:
  replicas: $3
  selector: {matchLabels: {app: $2}}
  template:
    metadata: {labels: {app: $2}}
    spec:
      containers:
      - {name: app, image: docker.io/library/nginx:1.27}
EOF
}

stuck_config() { # the Kustomization of the stuck Deployment (timeout 30 s, Flux's minimum)
    {
        source_yaml stuck v1
        cat <<EOF
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: stuck, namespace: flux-system}
spec:
  interval: 10m
  timeout: 30s
  path: ./
  prune: true
  wait: true
  sourceRef: {kind: OCIRepository, name: stuck}
EOF
    } >"$T/cfg/config.yaml"
}

it "a Deployment past its progress deadline fails HealthCheckFailed early, before the timeout"
# progressDeadlineSeconds 600 x time-scale 0.01: ProgressDeadlineExceeded after ~6 s, well
# within the 30 s timeout: kstatus says Failed and the wait ends at once (as Flux's "failed
# early due to stalled resources").
deployment "$T/stuck" stuck 2 'annotations:
    kubeapi.berth.dev/fail-rollout: "true"'
push stuck v1 "$T/stuck"
stuck_config
t0=$(_now_us)
run_once
elapsed=$((($(_now_us) - t0) / 1000))
assert_eq 1 "$RC" "exit status of a failed health check"
[ -n "$(kget apps deployments scen stuck)" ] || fail "the Deployment was not applied"
assert_eq "False" "$(ready_of stuck status)" "Ready status"
assert_eq "HealthCheckFailed" "$(ready_of stuck reason)" "Ready reason"
msg=$(ready_of stuck message)
assert_contains "$msg" "failed early due to stalled resources: [Deployment/scen/stuck status: 'Failed'"
assert_contains "$msg" "Progress deadline exceeded"
log "Deployment past its deadline: run ended after ${elapsed} ms: $msg"
[ "$elapsed" -ge 5000 ] || fail "the run ended after ${elapsed} ms, before the 6 s progress deadline"
[ "$elapsed" -lt 15000 ] || fail "the failure came ${elapsed} ms after the start, long after the 6 s deadline"
assert_eq "ProgressDeadlineExceeded" "$(kget apps deployments scen stuck |
    jq -r '.status.conditions[] | select(.type=="Progressing") | .reason')" "the Deployment's Progressing reason"

it "a Deployment that never becomes ready fails HealthCheckFailed at the timeout (30 s)"
ctl -X POST "$KAPI/_kubeapi/reset" >/dev/null
ctl -X POST "$KAPI/_kubeapi/settings" -d '{"timeScale": 1.0}' >/dev/null # deadline 600 s
rm -rf "$STATE"
t0=$(_now_us)
run_once
elapsed=$((($(_now_us) - t0) / 1000))
assert_eq 1 "$RC" "exit status of a timed-out health check"
assert_eq "HealthCheckFailed" "$(ready_of stuck reason)" "Ready reason"
msg=$(ready_of stuck message)
assert_contains "$msg" "timeout waiting for: [Deployment/scen/stuck status: 'InProgress'"
log "Deployment never ready: run ended after ${elapsed} ms: $msg"
[ "$elapsed" -ge 30000 ] || fail "the run ended after ${elapsed} ms, before the 30 s timeout"
[ "$elapsed" -lt 38000 ] || fail "the failure came ${elapsed} ms after the start, long after the 30 s timeout"
assert_eq "False" "$(kget apps deployments scen stuck |
    jq -r '.status.conditions[] | select(.type=="Available") | .status')" "the Deployment's Available"

it "dependsOn: b waits for a (wait: true on a slow rollout) to be Ready, then applies"
ctl -X POST "$KAPI/_kubeapi/reset" >/dev/null
rm -rf "$STATE"
ctl -X POST "$KAPI/_kubeapi/settings" -d '{"rolloutStepMs": 400}' >/dev/null
deployment "$T/a" slow 3 # 6 steps of 400 ms: ~2.4 s
mkdir -p "$T/b"
cat >"$T/b/cm.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: after-slow, namespace: scen}
data: {k: v}
EOF
push a v1 "$T/a"
push b v1 "$T/b"
{
    source_yaml a v1
    source_yaml b v1
    # b first in the file: the order must come from dependsOn, not from the file
    cat <<EOF
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: b, namespace: flux-system}
spec:
  interval: 10m
  retryInterval: 1s
  timeout: 30s
  path: ./
  prune: true
  dependsOn: [{name: a}]
  sourceRef: {kind: OCIRepository, name: b}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: a, namespace: flux-system}
spec:
  interval: 10m
  timeout: 30s
  path: ./
  prune: true
  wait: true
  sourceRef: {kind: OCIRepository, name: a}
EOF
} >"$T/cfg/config.yaml"
( # watcher: in one snapshot of the server, the ConfigMap of b never exists before a is rolled out
    for _ in $(seq 1 600); do
        ctl -o "$T/.snap" "$KAPI/_kubeapi/objects" || continue
        jq -r '[.. | objects | select(.kind?=="ConfigMap" and .metadata?.name?=="after-slow")] | length' \
            "$T/.snap" >"$T/.cm"
        if [ "$(cat "$T/.cm")" != 0 ]; then
            jq -r '[.. | objects | select(.kind?=="Deployment" and .metadata?.name?=="slow")] | first |
                "\(.status.readyReplicas // 0)/\(.spec.replicas)"' "$T/.snap" >"$T/watch.result"
            exit 0
        fi
        sleep 0.05
    done
    echo "never" >"$T/watch.result"
) &
watcher=$!
t0=$(_now_us)
run_once
elapsed=$((($(_now_us) - t0) / 1000))
wait "$watcher"
[ "$RC" = 0 ] || fail "dependsOn run failed (rc=$RC): $RUN_ERR"
assert_eq "True" "$(ready_of a status)" "a Ready"
assert_eq "True" "$(ready_of b status)" "b Ready"
assert_eq "3/3" "$(cat "$T/watch.result")" "a's Deployment ready replicas when b's ConfigMap first existed"
log "dependsOn run: ${elapsed} ms"
[ "$elapsed" -ge 2000 ] || fail "the run took ${elapsed} ms: it did not wait for the rollout"
# the request log: every apply of a comes before the first apply of b
ctl "$KAPI/_kubeapi/requests" | jq -r '.items[] | select(.method=="PATCH" and
    .contentType=="application/apply-patch+yaml" and (.query.dryRun // "") == "") | .path' >"$T/applies"
a_last=$(grep -n 'deployments/slow$' "$T/applies" | tail -n1 | cut -d: -f1)
b_first=$(grep -n 'configmaps/after-slow$' "$T/applies" | head -n1 | cut -d: -f1)
[ -n "$a_last" ] && [ -n "$b_first" ] || fail "applies missing: $(cat "$T/applies")"
[ "$a_last" -lt "$b_first" ] || fail "b was applied before a: $(cat "$T/applies")"
assert_eq 3 "$(kget apps deployments scen slow | jq -r .status.readyReplicas)" "ready replicas of a's Deployment"
finish
