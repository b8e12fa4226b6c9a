#!/bin/bash
# test_engine_reload.sh: config reload and status GC (issue 4) against a real docker-registry and
# a running `berth run` loop (config checked for changes every 2 s): a Kustomization added to
# the config is applied without a restart; a changed one is re-applied; a removed one with
# prune: true has its objects pruned from the target and `berth get` no longer lists it; one with
# prune: false leaves its objects; a file that fails to parse as a whole prunes nothing, keeps
# its objects listed and `berth get` warns naming the file until it is fixed; SIGHUP reloads;
# SIGTERM exits 0; and at start-up (`--once`) the state of
# objects the config no longer has is collected the same way.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry jq setsid

STATE=$T/state
TGT=$T/target
CFG=$T/cfg
mkdir -p "$CFG"
start_registry plain
berth_ok push artifact "oci://$REG/app:v1" --path="$APP_DIR" --source=https://example.com/app.git \
    --revision="v1@sha1:1111111111111111111111111111111111111111"

cat >"$CFG/source.yaml" <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
  namespace: flux-system
spec:
  url: oci://$REG/app
  interval: 1h
  ref:
    tag: v1
EOF
ks_yaml() { # NAME TARGET_NAMESPACE PRUNE
    cat <<EOF
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: $1
  namespace: flux-system
spec:
  interval: 1h
  path: ./
  prune: $3
  targetNamespace: $2
  sourceRef:
    kind: OCIRepository
    name: app
EOF
}
ks_yaml a ns-a true >"$CFG/ks-a.yaml"

names() { # the Kustomizations `berth get` lists, one per line
    "$BERTH" get kustomizations --state-dir="$STATE" -o json 2>/dev/null | jq -r '.[].name'
}
ready() { # NAME: Kustomization NAME is Ready=True
    [ "$("$BERTH" get kustomizations --state-dir="$STATE" -o json 2>/dev/null |
        jq -r --arg n "$1" '.[] | select(.name==$n) | .status.conditions[] | select(.type=="Ready") | .status')" = True ]
}
listed() { grep -qx "$1" <<<"$(names)"; }
not_listed() { ! grep -qx "$1" <<<"$(names)"; }
applied_in() { [ -f "$TGT/$1/core_ConfigMap_web-config.yaml" ]; }
gone_from() { [ ! -e "$TGT/$1" ] && [ ! -e "$TGT/_cluster/core_Namespace_$1.yaml" ]; }
log_has() { grep -qF -- "$1" "$T/loop.log"; }
poll() { # WHAT COMMAND...: poll COMMAND every 100 ms, at most 20 s
    local what=$1 i
    shift
    for ((i = 0; i < 200; i++)); do
        if "$@" >/dev/null 2>&1; then
            _IT_CHECKS=$((_IT_CHECKS + 1))
            return 0
        fi
        sleep 0.1
    done
    printf -- '--- loop log:\n' >&2
    tail -n 30 "$T/loop.log" >&2 || true
    fail "$what: not within 20 s"
}

it "berth run applies the first config"
spawn berth-run "$T/loop.log" "$BERTH" run --config="$CFG" --state-dir="$STATE" \
    --target="dir:$TGT" --workers=2
LOOP=$SPAWNED
poll "a Ready" ready a
applied_in ns-a || fail "a's objects are not in the target"
[ -f "$TGT/_cluster/core_Namespace_ns-a.yaml" ] || fail "a's Namespace is not in the target"

it "a Kustomization added to the config is applied without a restart"
ks_yaml b ns-b true >"$CFG/ks-b.yaml"
poll "b applied" applied_in ns-b
poll "b Ready" ready b
assert_contains "$(cat "$T/loop.log")" "event=reloaded"

it "a changed Kustomization is re-applied (and prunes what its new spec no longer makes)"
ks_yaml a ns-a2 true >"$CFG/ks-a.yaml"
poll "a re-applied into ns-a2" applied_in ns-a2
poll "a's old objects pruned" gone_from ns-a
listed a || fail "a is not listed after its change"

it "a removed Kustomization with prune: true: objects pruned, no longer listed"
rm "$CFG/ks-b.yaml"
poll "b's objects pruned" gone_from ns-b
poll "b not listed" not_listed b
[ ! -e "$STATE/inventory/flux-system/b.json" ] || fail "b's inventory is left"
[ ! -e "$STATE/status/kustomization/flux-system/b.json" ] || fail "b's status is left"
applied_in ns-a2 || fail "a's objects went with b's"
poll "GC logged" log_has "kind=Kustomization name=flux-system/b"
assert_match "$(grep 'event=garbage-collected kind=Kustomization name=flux-system/b' "$T/loop.log")" \
    "4 object\(s\) deleted" "GC log line"
berth_ok events --for=Kustomization/b --state-dir="$STATE" -o json
assert_eq GarbageCollected "$(jq -r '.[-1].reason' <<<"$OUT")" "last event of b"

it "a removed Kustomization with prune: false: objects stay, no longer listed"
ks_yaml c ns-c false >"$CFG/ks-c.yaml"
poll "c applied" applied_in ns-c
poll "c Ready" ready c
rm "$CFG/ks-c.yaml"
poll "c not listed" not_listed c
applied_in ns-c || fail "c's objects were deleted although prune is false"
[ -f "$TGT/_cluster/core_Namespace_ns-c.yaml" ] || fail "c's Namespace was deleted"
[ ! -e "$STATE/inventory/flux-system/c.json" ] || fail "c's inventory is left"

it "a file that fails to parse as a whole prunes nothing and keeps its objects listed"
ks_yaml d ns-d true >"$CFG/ks-d.yaml"
poll "d applied" applied_in ns-d
printf 'apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: [name: d\n' \
    >"$CFG/ks-d.yaml"
poll "reload refused" log_has "event=reload-refused"
sleep 3 # two more config polls: nothing may be collected meanwhile
applied_in ns-d || fail "d's objects were pruned while its file was broken"
listed d || fail "d is no longer listed while its file is broken"
listed a || fail "a is no longer listed while another file is broken"
assert_not_contains "$(cat "$T/loop.log")" "name=flux-system/d msg=\"removed from the config"
berth_ok get kustomizations --state-dir="$STATE" -o json
assert_contains "$ERR" "warning: a config file failed as a whole" "berth get says the config was not reloaded"
assert_contains "$ERR" "ks-d.yaml:4:1: invalid YAML" "berth get names the broken file and line"
assert_eq 1 "$(grep -c 'ks-d.yaml:4:1' <<<"$ERR")" "the error is listed once"
jq -e . <<<"$OUT" >/dev/null || fail "-o json is not one JSON document with the warning"
reloads=$(grep -c "event=reloaded" "$T/loop.log" || true)
more_reloads() { [ "$(grep -c "event=reloaded" "$T/loop.log" || true)" -gt "$reloads" ]; }
ks_yaml d ns-d true >"$CFG/ks-d.yaml"
poll "config accepted again" more_reloads
assert_contains "$(grep "event=reloaded" "$T/loop.log" | tail -n 1)" "0 to garbage-collect"
ready d || fail "d is not Ready after its file was fixed"
berth_ok get kustomizations --state-dir="$STATE"
assert_not_contains "$ERR" "warning" "the warning is gone once the file is fixed"

it "SIGHUP reloads the config"
kill -HUP "$LOOP"
poll "SIGHUP reload" log_has "(SIGHUP)"
kill -0 "$LOOP" || fail "the loop died on SIGHUP"

it "SIGTERM: the loop exits 0"
kill -TERM "$LOOP"
for ((i = 0; i < 100; i++)); do kill -0 "$LOOP" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$LOOP" 2>/dev/null || fail "the loop did not stop on SIGTERM"
loop_rc=0
wait "$LOOP" || loop_rc=$?
assert_eq 0 "$loop_rc" "exit status of the stopped loop: $(tail -n 5 "$T/loop.log")"
assert_contains "$(cat "$T/loop.log")" "event=stopped"

it "at start-up, state of objects the config no longer has is collected (--once)"
rm "$CFG/ks-d.yaml"
berth_ok run --once --config="$CFG" --state-dir="$STATE" --target="dir:$TGT"
not_listed d || fail "d is still listed after a --once run without it"
gone_from ns-d || fail "d's objects were not pruned at start-up"
applied_in ns-a2 || fail "a's objects went"
assert_match "$OUT" "kustomization/a +v1@sha256:[0-9a-f]{64} +False +True"

it "--workers is checked"
bt run --once --config="$CFG" --state-dir="$STATE" --workers=0
assert_eq 2 "$RC" "--workers=0"
assert_contains "$ERR" "--workers"
bt run --once --config="$CFG" --state-dir="$STATE" --workers=65
assert_eq 2 "$RC" "--workers=65"
finish
