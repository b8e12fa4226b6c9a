#!/bin/bash
# test_engine_restart.sh: the engine's crash and restart scenarios (issue 4) against a real
# docker-registry behind testdata/faultproxy.py (every request counted):
#   - a restart keeps status and re-applies nothing: a second `berth run --once` process leaves
#     every target file's inode and mtime alone, reports the same status, and sends exactly one
#     manifest HEAD per source;
#   - kill -9 during the layer download, and at two points of the apply of a 1,200-object
#     artifact, leaves no partial file (every target file is byte-equal to a clean sync's, every
#     state JSON parses, no artifact is stored before its layer arrived), and a fresh run
#     converges to the clean sync's tree with no temp file left over;
#   - drift: a file edited and another deleted out of band are both restored and reported;
#   - a broken kustomization.yaml after a good artifact: exit 1, BuildFailed, the last good
#     files stay and nothing is pruned;
#   - a second concurrent `berth run` on the same state dir is refused, naming the dir.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid

SRC=https://example.com/berth/restart.git
mkdir -p "$T/cfg"
STATE=$T/state
TGT=$T/target
N_CM=1200

start_registry plain
# The layer of "big" is paced over 1 s so a kill can land while it is in flight.
start_faultproxy "$REG" --delay-regex '^GET /v2/big/blobs/' --delay-ms 1000

push() { # REPO:TAG DIR
    berth_ok push artifact "oci://$REG/$1" --path="$2" --source="$SRC" \
        --revision="${1#*:}@sha1:3333333333333333333333333333333333333333"
}
# write_config NAME:TAG...: one OCIRepository + Kustomization pair per argument (name = repo).
write_config() {
    local f=$T/cfg/config.yaml a name tag
    : >"$f"
    for a in "$@"; do
        name=${a%%:*}
        tag=${a#*:}
        cat >>"$f" <<EOF
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: $name
  namespace: flux-system
spec:
  url: oci://$PROXY/$name
  interval: 10m
  ref:
    tag: $tag
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: $name
  namespace: flux-system
spec:
  interval: 10m
  path: ./
  prune: true
  targetNamespace: $name
  sourceRef:
    kind: OCIRepository
    name: $name
EOF
    done
}
# run_once [STATE TARGET]: berth run --once; sets RUN_ERR (the logs) besides OUT, ERR, RC.
run_once() {
    bt run --once --config="$T/cfg" --state-dir="${1:-$STATE}" --target="dir:${2:-$TGT}"
    RUN_ERR=$ERR
}
tree_sig() { (cd "$1" && find . -type f -printf '%p %i %T@ %s\n' | sort); }
# status_sig: every object's status without timestamps (lastTransitionTime, lastUpdateTime...).
status_sig() {
    berth_ok get all --state-dir="$STATE" -o json
    jq -S 'walk(if type == "object" then with_entries(select(.key | test("Time$|At$") | not)) else . end)' <<<"$OUT"
}
cond() { # KIND NAME TYPE FIELD: a condition's field (status, reason, message)
    bt get all --state-dir="$STATE" -o json
    jq -r --arg k "$1" --arg n "$2" --arg c "$3" --arg f "$4" \
        '.[] | select(.kind==$k and .name==$n) | .status.conditions[] | select(.type==$c) | .[$f]' <<<"$OUT"
}
# no_partial_files TARGET REF STATE: every target file (leftover "*.tmp-*" aside) is byte-equal
# to the clean sync's copy in REF; every state JSON file and every event line parses.
no_partial_files() {
    local tgt=$1 ref=$2 st=$3 f bad="" n=0
    _IT_CHECKS=$((_IT_CHECKS + 1))
    while IFS= read -r f; do
        n=$((n + 1))
        if [ ! -f "$ref/$f" ] || ! cmp -s "$tgt/$f" "$ref/$f"; then bad="$bad $f"; fi
    done < <(cd "$tgt" && find . -type f ! -name '*.tmp-*' | sed 's|^\./||')
    [ -z "$bad" ] || fail "target files that are not the artifact's objects:$(echo "$bad" | head -c 600)"
    while IFS= read -r f; do
        jq -e . "$f" >/dev/null 2>&1 || fail "state file $f does not parse as JSON: $(head -c 300 "$f")"
    done < <(find "$st" -name '*.json' ! -path '*/artifacts/*')
    [ ! -f "$st/events.jsonl" ] || jq -e . "$st/events.jsonl" >/dev/null 2>&1 ||
        fail "a line of $st/events.jsonl does not parse: $(tail -c 300 "$st/events.jsonl")"
    TARGET_FILES=$n
}
temp_files() { find "$@" -name '*.tmp-*' 2>/dev/null; }
# same_tree_no_temp REF TARGET: the trees are equal, and no temp file of an interrupted atomic
# write survives the restart (the directory target sweeps ".NAME.tmp-XXXXXX" leftovers when it
# opens; a kubelet static-pod dir would otherwise read them).
same_tree_no_temp() {
    assert_same_tree "$1" "$2"
    local d
    d=$(temp_files "$2")
    [ -z "$d" ] || fail "temp files left after the restart: $(echo "$d" | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------- fixtures
# "big": the sample app plus N_CM small ConfigMaps; "app": the sample app.
mkdir -p "$T/big/many"
cp -R "$APP_DIR/." "$T/big/"
"$PYTHON" - "$T/big/many" "$N_CM" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "cm-%04d.yaml" % i), "w") as f:
        f.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n"
                "  index: \"%d\"\n  payload: %s\n" % (i, i, os.urandom(48).hex()))
PY
push big:v1 "$T/big"
push app:v1 "$APP_DIR"
BIG_LAYER=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/big/manifests/v1" | jq -r '.layers[0].digest')
assert_match "$BIG_LAYER" '^sha256:[0-9a-f]{64}$' "big layer digest"

it "reference: a clean sync of big (1,200 ConfigMaps) and app"
write_config big:v1 app:v1
t0=$(_now_us)
run_once "$T/ref-state" "$T/ref"
[ "$RC" = 0 ] || fail "clean sync failed (rc=$RC): $RUN_ERR"
log "clean sync took $((($(_now_us) - t0) / 1000)) ms"
[ "$(find "$T/ref/big" -name 'core_ConfigMap_cm-*.yaml' | wc -l)" = "$N_CM" ] ||
    fail "the clean sync wrote $(find "$T/ref/big" -name 'core_ConfigMap_cm-*.yaml' | wc -l) ConfigMaps, want $N_CM"
REF_COUNT=$(find "$T/ref" -type f | wc -l)
assert_eq "" "$(temp_files "$T/ref" "$T/ref-state")" "temp files after a clean sync"

# kill_when DESCRIPTION COMMAND...: start `berth run --once` on $STATE/$TGT, SIGKILL it as soon as
# COMMAND succeeds (polled every 10 ms), then check nothing partial was left.
kill_when() {
    local what=$1 pid
    shift
    : >"$PROXY_LOG"
    "$BERTH" run --once --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT" \
        >"$T/killed.out" 2>"$T/killed.err" </dev/null &
    pid=$!
    for _ in $(seq 3000); do
        "$@" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    kill -0 "$pid" 2>/dev/null || fail "berth finished before the kill point ($what): $(tail -5 "$T/killed.err")"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    log "killed ($what); $(find "$TGT" -type f 2>/dev/null | wc -l) target files"
    mkdir -p "$TGT"
    no_partial_files "$TGT" "$T/ref" "$STATE"
}
blob_in_flight() { grep -q "^GET /v2/big/blobs/$BIG_LAYER " "$PROXY_LOG"; }
configmaps_at_least() { [ "$(find "$TGT/big" -name 'core_ConfigMap_cm-*' 2>/dev/null | head -"$1" | wc -l)" -ge "$1" ]; }

it "kill -9 during the layer download: nothing partial, and a restart converges"
kill_when "blob download" blob_in_flight
assert_eq 0 "$(find "$TGT/big" -type f 2>/dev/null | wc -l)" "big files applied before its layer arrived"
assert_eq 0 "$(find "$STATE/artifacts" -mindepth 4 -maxdepth 4 -path '*/big/[0-9a-f]*' | wc -l)" \
    "a stored artifact of big before its layer arrived"
run_once
[ "$RC" = 0 ] || fail "run after the kill failed (rc=$RC): $RUN_ERR"
same_tree_no_temp "$T/ref" "$TGT"
assert_eq 0 "$(find "$STATE" -name '.pull-*' | wc -l)" "staging dirs after the restart"

for at in 150 1000; do
    it "kill -9 during the apply of 1,200 objects (after $at files): nothing partial, a restart converges"
    rm -rf "$STATE" "$TGT"
    kill_when "apply" configmaps_at_least "$at"
    [ "$TARGET_FILES" -lt "$REF_COUNT" ] || fail "the kill came after the apply ($TARGET_FILES files)"
    run_once
    [ "$RC" = 0 ] || fail "run after the kill failed (rc=$RC): $RUN_ERR"
    same_tree_no_temp "$T/ref" "$TGT"
done

it "a restart keeps status and re-applies nothing: one manifest HEAD per source"
before=$(tree_sig "$TGT")
status_before=$(status_sig)
# (jq, not assert_match: grep -q on 8,000 lines would SIGPIPE printf under pipefail)
assert_eq 2 "$(jq '[.[] | select(.kind == "Kustomization") | .status.lastAppliedRevision |
    select(test("^v1@sha256:[0-9a-f]{64}$"))] | length' <<<"$status_before")" "applied revisions before"
: >"$PROXY_LOG"
run_once
[ "$RC" = 0 ] || fail "no-change run failed (rc=$RC): $RUN_ERR"
assert_eq 1 "$(grep -c '^HEAD /v2/big/manifests/v1 ' "$PROXY_LOG")" "manifest HEADs for big"
assert_eq 1 "$(grep -c '^HEAD /v2/app/manifests/v1 ' "$PROXY_LOG")" "manifest HEADs for app"
assert_eq 2 "$(wc -l <"$PROXY_LOG")" "requests in a no-change restart: $(cat "$PROXY_LOG")"
assert_eq "$before" "$(tree_sig "$TGT")" "target files (path inode mtime size) after a restart"
assert_eq "$status_before" "$(status_sig)" "status after a restart"
assert_not_contains "$RUN_ERR" "event=drift"

it "drift: a file edited and another deleted out of band are restored and reported"
write_config app:v1
rm -rf "$STATE" "$TGT"
run_once
[ "$RC" = 0 ] || fail "app sync failed (rc=$RC): $RUN_ERR"
echo "  injected: by-hand" >>"$TGT/app/core_ConfigMap_web-config.yaml"
rm "$TGT/app/apps_Deployment_web.yaml"
run_once
[ "$RC" = 0 ] || fail "drift run failed (rc=$RC): $RUN_ERR"
assert_same_file "$T/ref/app/core_ConfigMap_web-config.yaml" "$TGT/app/core_ConfigMap_web-config.yaml"
assert_same_file "$T/ref/app/apps_Deployment_web.yaml" "$TGT/app/apps_Deployment_web.yaml"
assert_match "$RUN_ERR" "event=drift .*name=flux-system/app.*2 object" "drift log line"
# the event log records the restore: the edited object configured, the deleted one created
last_event=$(tail -n 1 "$STATE/events.jsonl")
jq -e . <<<"$last_event" >/dev/null || fail "the last event does not parse: $last_event"
assert_contains "$last_event" "ConfigMap/app/web-config configured" "last event"
assert_contains "$last_event" "Deployment/app/web created" "last event"

it "a broken kustomization.yaml after a good artifact: BuildFailed, last good files stay"
good=$(tree_sig "$TGT")
mkdir -p "$T/broken"
cp -R "$APP_DIR/." "$T/broken/"
rm "$T/broken/workloads/web/service.yaml" # would be pruned if the build went through
printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - missing.yaml\n' \
    >"$T/broken/kustomization.yaml"
push app:v2 "$T/broken"
write_config app:v2
run_once
assert_eq 1 "$RC" "exit status with a broken build"
assert_eq BuildFailed "$(cond Kustomization app Ready reason)" "Ready reason"
assert_eq False "$(cond Kustomization app Ready status)" "Ready status"
assert_contains "$(cond Kustomization app Ready message)" "missing.yaml" "Ready message"
berth_ok get kustomizations --state-dir="$STATE"
assert_match "$OUT" "^app +v1@sha256:[0-9a-f]{64} +False +False +.*missing.yaml"
assert_eq "$good" "$(tree_sig "$TGT")" "target files after a failed build"
[ -f "$TGT/app/core_Service_web.yaml" ] || fail "the Service was pruned by a failed build"

it "a second berth run on the same state dir is refused, naming the dir"
write_config app:v1
"$BERTH" run --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT" \
    >"$T/loop.out" 2>"$T/loop.err" </dev/null &
loop_pid=$!
for _ in $(seq 500); do
    grep -q 'event=ready kind=Kustomization' "$T/loop.err" && break
    kill -0 "$loop_pid" 2>/dev/null || break
    sleep 0.02
done
kill -0 "$loop_pid" 2>/dev/null || fail "the first berth run exited: $(cat "$T/loop.err")"
bt run --once --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT"
assert_ne 0 "$RC" "exit status of the second run"
assert_contains "$ERR" "state directory \"$STATE\" is in use" "second run's error"
kill -TERM "$loop_pid"
loop_rc=0
wait "$loop_pid" || loop_rc=$?
assert_eq 0 "$loop_rc" "exit status of the first run after SIGTERM"
# once the holder is gone the lock is free again
run_once
[ "$RC" = 0 ] || fail "run after the lock holder stopped failed (rc=$RC): $RUN_ERR"

finish
