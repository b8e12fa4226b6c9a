#!/bin/bash
# test_engine_reload_busy.sh: config reloads while reconciles are in flight on the worker pool
# (issue 4). 120 OCIRepository+Kustomization pairs (each Kustomization depending on the one
# before it in its file) are synced by `berth run --workers=4` while the config changes under
# it: half the pairs change their targetNamespace, then their file is removed, the other half's
# sources get an error, SIGHUP twice, everything comes back, a broken file is added and removed.
# Whatever the timing, the loop must end on the final config: every object Ready, exactly the
# final namespaces in the target (what the intermediate configs applied is pruned), and exit 0
# on SIGTERM. Under ASan/TSan builds this is the test that exercises specs freed by a reload
# while a job still uses them.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry jq setsid

N=60 # pairs per file, two files
STATE=$T/state
TGT=$T/target
CFG=$T/cfg
mkdir -p "$CFG"
start_registry plain
berth_ok push artifact "oci://$REG/app:v1" --path="$APP_DIR" --source=https://example.com/app.git \
    --revision="v1@sha1:1111111111111111111111111111111111111111"

gen() { # FROM TO NS_SUFFIX FILE [EXTRA_SOURCE_SPEC]
    local i
    for ((i = $1; i < $2; i++)); do
        cat <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: app-$i, namespace: flux-system}
spec: {interval: 60m, url: "oci://$REG/app", ref: {tag: v1}${5:-}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: app-$i, namespace: flux-system}
spec:
  interval: 60m
  prune: true
  path: ./
  targetNamespace: app-$i$3
  sourceRef: {kind: OCIRepository, name: app-$i}
EOF
        if ((i != $1)); then printf '  dependsOn: [{name: app-%d}]\n' $((i - 1)); fi
        echo ---
    done >"$4"
}
ready_count() {
    "$BERTH" get all --state-dir="$STATE" -o json 2>/dev/null |
        jq '[.[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}
all_ready() { [ "$(ready_count)" = $((4 * N)) ]; }

gen 0 $N "" "$CFG/a.yaml"
gen $N $((2 * N)) "" "$CFG/b.yaml"

it "reloads while jobs are in flight"
spawn berth-run "$T/loop.log" "$BERTH" run --config="$CFG" --state-dir="$STATE" \
    --target="dir:$TGT" --workers=4
LOOP=$SPAWNED
sleep 1
gen $N $((2 * N)) "-x" "$CFG/b.yaml" # change half
sleep 2.5
rm "$CFG/b.yaml" # remove half
sleep 2.5
gen 0 $N "" "$CFG/a.yaml" ", bogus: 1" # the other half's sources now have an error
kill -HUP "$LOOP"
sleep 0.3
kill -HUP "$LOOP"
sleep 2.5
gen 0 $N "" "$CFG/a.yaml" # everything back
gen $N $((2 * N)) "" "$CFG/b.yaml"
sleep 2.5
echo 'kind: [' >"$CFG/c.yaml" # a broken file: refused, nothing removed
sleep 2.5
rm "$CFG/c.yaml"
for ((i = 0; i < 1200; i++)); do
    all_ready && break
    kill -0 "$LOOP" 2>/dev/null || fail "the loop died: $(tail -n 5 "$T/loop.log")"
    sleep 0.25
done
all_ready || fail "only $(ready_count) of $((4 * N)) objects Ready after the reloads"
_IT_CHECKS=$((_IT_CHECKS + 1))
assert_contains "$(cat "$T/loop.log")" "event=reload-refused"
assert_contains "$(cat "$T/loop.log")" "(SIGHUP)"

it "the target holds exactly what the final config applies"
assert_eq $((2 * N)) "$(find "$TGT" -mindepth 1 -maxdepth 1 -type d -name 'app-*' | wc -l)" \
    "namespace directories"
assert_eq 0 "$(find "$TGT" -mindepth 1 -maxdepth 1 -name 'app-*-x' | wc -l)" \
    "namespaces of the intermediate config left"
assert_eq $((2 * N)) "$(find "$TGT/_cluster" -name 'core_Namespace_*' | wc -l)" "Namespace objects"
assert_eq $((4 * N)) "$("$BERTH" get all --state-dir="$STATE" -o json | jq length)" "objects listed"

it "SIGTERM: exit 0"
kill -TERM "$LOOP"
loop_rc=0
wait "$LOOP" || loop_rc=$?
assert_eq 0 "$loop_rc" "exit status: $(tail -n 5 "$T/loop.log")"
finish
