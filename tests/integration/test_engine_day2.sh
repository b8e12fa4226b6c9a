#!/bin/bash
# test_engine_day2.sh: the day-2 verbs (issue 4, "Loop and CLI") against a real docker-registry
# and a running `berth run` loop: `berth reconcile` over the control socket applies a new artifact
# pushed under the same tag at once (the interval is 1h); `berth suspend kustomization` keeps the
# applied revision while the source moves on and `berth get` shows SUSPENDED True; `berth resume`
# applies it; the socket is owner-only; without a loop, `berth reconcile kustomization
# --with-source` runs once in-process and the suspend override persists in the state dir.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry jq setsid

STATE=$T/state
TGT=$T/target
mkdir -p "$T/cfg"
start_registry plain

push_live() { # DIR: push DIR under the tag "live"
    berth_ok push artifact "oci://$REG/app:live" --path="$1" --source=https://example.com/app.git \
        --revision="live@sha1:2222222222222222222222222222222222222222"
}
cat >"$T/cfg/config.yaml" <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
  namespace: flux-system
spec:
  url: oci://$REG/app
  interval: 1h
  ref:
    tag: live
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: app
  namespace: flux-system
spec:
  interval: 1h
  path: ./
  prune: true
  targetNamespace: demo
  sourceRef:
    kind: OCIRepository
    name: app
EOF
status_of() { # KIND NAME JQ-EXPR-ON-STATUS
    "$BERTH" get all --state-dir="$STATE" -o json 2>/dev/null |
        jq -r --arg k "$1" --arg n "$2" ".[] | select(.kind==\$k and .name==\$n) | .status | $3"
}
src_rev() { status_of OCIRepository app '.artifact.revision // ""'; }
ks_rev() { status_of Kustomization app '.lastAppliedRevision // ""'; }
both_ready() {
    [ "$(status_of OCIRepository app '.conditions[] | select(.type=="Ready") | .status')" = True ] &&
        [ "$(status_of Kustomization app '.conditions[] | select(.type=="Ready") | .status')" = True ]
}
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
    cat "$T/loop.log" >&2 || true
    fail "$what: not within 20 s"
}
ks_applied() { [ -n "$(src_rev)" ] && [ "$(ks_rev)" = "$(src_rev)" ]; }
src_is_not() { [ -n "$(src_rev)" ] && [ "$(src_rev)" != "$1" ]; }

it "berth run in loop mode gets everything Ready and listens on an owner-only socket"
push_live "$APP_DIR"
spawn berth-run "$T/loop.log" "$BERTH" run --config="$T/cfg" --state-dir="$STATE" \
    --target="dir:$TGT"
LOOP=$SPAWNED
poll "first sync Ready" both_ready
poll "control socket" test -S "$STATE/berth.sock"
assert_eq 600 "$(stat -c %a "$STATE/berth.sock")" "socket mode"
rev1=$(ks_rev)
assert_match "$rev1" "^live@sha256:[0-9a-f]{64}$" "first applied revision"

it "reconcile source oci: a new artifact under the same tag is applied at once"
cp -r "$APP_DIR" "$T/app2"
sed -i "s/hello from berth/changed-in-v2/" "$T/app2/config/configmap.yaml"
push_live "$T/app2"
berth_ok reconcile source oci app -n flux-system --state-dir="$STATE"
assert_contains "$OUT" "reconcile requested for OCIRepository flux-system/app"
poll "v2 applied" src_is_not "$rev1"
poll "v2 applied by the Kustomization" ks_applied
rev2=$(ks_rev)
assert_ne "$rev1" "$rev2" "revision after reconcile"
assert_contains "$(cat "$TGT/demo/core_ConfigMap_web-config.yaml")" "changed-in-v2"

it "reconcile of an object the loop does not have fails and names it"
bt reconcile kustomization nope -n flux-system --state-dir="$STATE"
assert_eq 1 "$RC" "exit code"
assert_contains "$ERR" "Kustomization \"flux-system/nope\" is not in the config"

it "suspend kustomization: the source moves on, the applied revision stays, SUSPENDED True"
berth_ok suspend kustomization app -n flux-system --state-dir="$STATE"
suspended_shown() { "$BERTH" get kustomizations --state-dir="$STATE" | grep -Eq "^app +live@sha256:[0-9a-f]+ +True"; }
poll "SUSPENDED True" suspended_shown
[ -f "$STATE/suspend/kustomization/flux-system/app" ] || fail "no suspend override in the state dir"
cp -r "$T/app2" "$T/app3"
sed -i "s/changed-in-v2/changed-in-v3/" "$T/app3/config/configmap.yaml"
push_live "$T/app3"
berth_ok reconcile source oci app -n flux-system --state-dir="$STATE"
poll "v3 stored by the source" src_is_not "$rev2"
sleep 1
assert_eq "$rev2" "$(ks_rev)" "applied revision while suspended"
assert_contains "$(cat "$TGT/demo/core_ConfigMap_web-config.yaml")" "changed-in-v2"

it "resume kustomization: v3 is applied"
berth_ok resume kustomization app -n flux-system --state-dir="$STATE"
poll "v3 applied after resume" ks_applied
assert_contains "$(cat "$TGT/demo/core_ConfigMap_web-config.yaml")" "changed-in-v3"
[ ! -e "$STATE/suspend/kustomization/flux-system/app" ] || fail "override left after resume"
bt get kustomizations --state-dir="$STATE"
assert_match "$OUT" "^app +live@sha256:[0-9a-f]{64} +False +True"

it "events --for=Kustomization/app lists its applies, oldest first"
berth_ok events --for=Kustomization/app --state-dir="$STATE"
assert_match "$(head -n1 <<<"$OUT")" "^TIME +OBJECT +REASON +MESSAGE"
assert_not_contains "$OUT" "OCIRepository/"
applies=$(grep -c "Kustomization/flux-system/app" <<<"$OUT" || true)
[ "$applies" -ge 3 ] || fail "want at least 3 Kustomization events (v1, v2, v3), got: $OUT"
assert_eq 2 "$(grep -c "ConfigMap/demo/web-config configured" <<<"$OUT" || true)" "v2 and v3 applies"
berth_ok events --for=kustomization/app --state-dir="$STATE" -o json
assert_eq "$applies" "$(jq length <<<"$OUT")" "JSON events"
assert_eq Kustomization "$(jq -r '[.[].involvedObject.kind] | unique | .[]' <<<"$OUT")" "kinds"
berth_ok events --for=OCIRepository/app -n other --state-dir="$STATE" -o json
assert_eq 0 "$(jq length <<<"$OUT")" "events of another namespace"
bt events --for=app --state-dir="$STATE"
assert_eq 2 "$RC" "--for without a kind"

it "tree kustomization lists the applied objects under the Kustomization"
berth_ok tree kustomization app -n flux-system --state-dir="$STATE"
assert_eq "Kustomization/flux-system/app" "$(head -n1 <<<"$OUT")" "tree root"
assert_contains "$OUT" "Namespace/demo"
assert_contains "$OUT" "ConfigMap/demo/web-config"
assert_contains "$OUT" "Deployment/demo/web"
assert_contains "$(tail -n1 <<<"$OUT")" "└── "
berth_ok tree kustomization app -n flux-system --state-dir="$STATE" -o json
assert_eq apps "$(jq -r '.[] | select(.kind=="Deployment") | .group' <<<"$OUT")" "Deployment group"
bt tree kustomization nope -n flux-system --state-dir="$STATE"
assert_eq 1 "$RC" "tree of an unknown Kustomization"
assert_contains "$ERR" "has no inventory"

it "SIGTERM stops the loop and removes the socket"
kill -TERM "$LOOP"
for ((i = 0; i < 100; i++)); do kill -0 "$LOOP" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$LOOP" 2>/dev/null || fail "the loop did not stop on SIGTERM"
loop_rc=0
wait "$LOOP" || loop_rc=$?
assert_eq 0 "$loop_rc" "exit status of the stopped loop: $(tail -n 5 "$T/loop.log")"
[ ! -e "$STATE/berth.sock" ] || fail "socket left after stop"

it "without a loop: reconcile kustomization --with-source runs once in-process"
cp -r "$T/app3" "$T/app4"
sed -i "s/changed-in-v3/changed-in-v4/" "$T/app4/config/configmap.yaml"
push_live "$T/app4"
bt reconcile kustomization app -n flux-system --state-dir="$STATE"
assert_eq 1 "$RC" "reconcile without a loop or --config"
assert_contains "$ERR" "give --config"
berth_ok reconcile kustomization app -n flux-system --with-source --state-dir="$STATE" \
    --config="$T/cfg" --target="dir:$TGT"
assert_match "$OUT" "kustomization/app +live@sha256:[0-9a-f]{64} +False +True"
assert_contains "$(cat "$TGT/demo/core_ConfigMap_web-config.yaml")" "changed-in-v4"

it "without a loop: suspend writes the override, which the next run honours"
berth_ok suspend kustomization app -n flux-system --state-dir="$STATE"
assert_contains "$OUT" "suspended Kustomization flux-system/app"
berth_ok reconcile kustomization app -n flux-system --state-dir="$STATE" --config="$T/cfg" \
    --target="dir:$TGT"
assert_match "$OUT" "kustomization/app +live@sha256:[0-9a-f]{64} +True +True"
berth_ok resume kustomization app -n flux-system --state-dir="$STATE"
[ ! -e "$STATE/suspend/kustomization/flux-system/app" ] || fail "override left after resume"

it "every day-2 verb has --help"
for v in "reconcile source" "reconcile kustomization" "suspend source" "suspend kustomization" \
    "resume source" "resume kustomization" "events" "tree kustomization"; do
    # shellcheck disable=SC2086
    berth_ok $v --help
    assert_contains "$OUT" "berth $v"
done
bt reconcile source git app
assert_eq 2 "$RC" "source type other than oci"
finish
