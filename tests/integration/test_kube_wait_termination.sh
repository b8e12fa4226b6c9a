#!/bin/bash
# test_kube_wait_termination.sh: deletionPolicy WaitForTermination against the Kubernetes API
# test server (its finalizers hold a deleted object until they are removed) and a real
# docker-registry. Three Kustomizations each apply a ConfigMap carrying a finalizer; then all
# three leave the config and `berth run --once` garbage-collects them: the one with
# deletionPolicy Delete is collected at once (its ConfigMap still terminating); the one with
# WaitForTermination stays listed, and the run goes on, until the finalizer is removed; the one
# whose timeout passes first (30 s, the least berth allows) fails naming the object still
# terminating, keeps it in its inventory, and is collected by a later run once the object is gone.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl
require_kubectl

make_pki
TOKEN=kube-wait-it-token
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE"
KCFG=$T/kubeconfig
write_token_kubeconfig "$KCFG" "$TOKEN"
kc() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
start_registry plain
STATE=$T/state
mkdir -p "$T/cfg"
for d in wait nowait short; do
    mkdir -p "$T/art/$d"
    cat >"$T/art/$d/held.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: held-$d
  namespace: default
  finalizers: [example.com/hold]
data: {k: v}
EOF
done
berth_ok push artifact "oci://$REG/held:v1" --path="$T/art" --source=https://example.com/held.git \
    --revision="v1@sha1:4444444444444444444444444444444444444444"
cat >"$T/cfg/source.yaml" <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: held, namespace: flux-system}
spec:
  url: oci://$REG/held
  interval: 10m
  ref: {tag: v1}
EOF
ks() { # NAME POLICY TIMEOUT
    cat >"$T/cfg/ks-$1.yaml" <<EOF
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: $1, namespace: flux-system}
spec:
  interval: 10m
  timeout: $3
  path: ./$1
  prune: true
  deletionPolicy: $2
  sourceRef: {kind: OCIRepository, name: held}
EOF
}
ks wait WaitForTermination 5m
ks nowait Delete 5m
ks short WaitForTermination 30s
run_once() { bt run --once --config="$T/cfg" --state-dir="$STATE" --target=kube --kubeconfig="$KCFG"; }
listed() { "$BERTH" get kustomizations --state-dir="$STATE" -o json 2>/dev/null | jq -e --arg n "$1" 'any(.[]; .name == $n)' >/dev/null; }
terminating() { [ "$(kube_object "" configmaps default "held-$1" | jq -r '.metadata.deletionTimestamp // empty')" != "" ]; }
unhold() { kc -n default patch configmap "held-$1" --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null; }

it "three Kustomizations apply their held ConfigMaps"
run_once
[ "$RC" = 0 ] || fail "first run failed: $ERR"
for d in wait nowait short; do
    [ -n "$(kube_object "" configmaps default "held-$d")" ] || fail "held-$d was not applied"
done

it "removed: Delete is collected at once, WaitForTermination waits for the finalizer"
rm "$T/cfg/ks-wait.yaml" "$T/cfg/ks-nowait.yaml" "$T/cfg/ks-short.yaml"
spawn berth-once "$T/once.log" "$BERTH" run --once --config="$T/cfg" --state-dir="$STATE" \
    --target=kube --kubeconfig="$KCFG"
ONCE=$SPAWNED
nowait_collected() { grep -F 'event=garbage-collected' "$T/once.log" | grep -qF 'flux-system/nowait'; }
wait_until berth-once "$ONCE" "$T/once.log" nowait_collected
terminating nowait || fail "held-nowait is not terminating (its finalizer should hold it)"
terminating wait || fail "held-wait is not terminating"
sleep 3
kill -0 "$ONCE" 2>/dev/null || fail "the run ended while held-wait was still terminating"
listed wait || fail "the WaitForTermination Kustomization is no longer listed while its object terminates"
listed nowait && fail "the Delete Kustomization is still listed"
unhold wait
wait_collected() { grep -F 'event=garbage-collected' "$T/once.log" | grep -qF 'flux-system/wait '; }
wait_until berth-once "$ONCE" "$T/once.log" wait_collected
# the short one still waits for its 30 s; then the run ends
for ((i = 0; i < 450; i++)); do kill -0 "$ONCE" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$ONCE" 2>/dev/null || fail "the run did not end after the short Kustomization's timeout"
wait "$ONCE" && once_rc=0 || once_rc=$?
log "$(cat "$T/once.log")"
assert_ne 0 "$once_rc" "exit status with the short Kustomization's collection failed"
assert_contains "$(cat "$T/once.log")" "still terminating at the timeout: ConfigMap/default/held-short"
listed wait && fail "the WaitForTermination Kustomization is still listed after its object went"
[ -z "$(kube_object "" configmaps default held-wait)" ] || fail "held-wait is still there"
listed short || fail "the timed-out Kustomization is not listed any more"

it "the timed-out one is collected by a later run once its object is gone"
unhold short
run_once
[ "$RC" = 0 ] || fail "the later run failed: $ERR"
listed short && fail "the short Kustomization is still listed"
unhold nowait

finish
