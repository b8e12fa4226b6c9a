#!/bin/bash
# test_engine.sh: the engine's first slice (issue 4) against a real docker-registry, through the
# fault proxy so every request is counted: `berth run --once` reconciles a signed OCIRepository
# and a Kustomization into a directory target; a second run costs one manifest HEAD and rewrites
# nothing; a new tag updates a changed file and prunes a removed one; an unsigned artifact under
# verify is not applied (SourceVerified=False, the last good files stay); dependsOn order;
# suspend; an invalid object is Stalled with file:line.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid

SRC=https://example.com/berth/app.git
export BERTH_PASSWORD=engine-it-password
KD=$T/keys
mkdir -p "$KD" "$T/cfg"
STATE=$T/state
TGT=$T/target

start_registry plain
start_faultproxy "$REG"

berth_ok generate-key-pair --output-key-prefix="$KD/cosign"
push_signed() { # TAG DIR [unsigned]
    berth_ok push artifact "oci://$REG/app:$1" --path="$2" --source="$SRC" \
        --revision="$1@sha1:1111111111111111111111111111111111111111"
    [ "${3:-}" = unsigned ] || berth_ok sign "oci://$REG/app:$1" --key="$KD/cosign.key"
}
# write_config REF [EXTRA_KS_YAML]: the OCIRepository (verified, through the proxy) and the
# Kustomization "app"; REF is a tag, or "semver:EXPR[:FILTER]"; EXTRA is appended verbatim to the
# "app" spec.
write_config() {
    local ref="    tag: $1"
    case $1 in semver:*)
        ref="    semver: \"$(echo "$1" | cut -d: -f2)\""
        [ -z "$(echo "$1" | cut -d: -f3)" ] || ref="$ref
    semverFilter: \"$(echo "$1" | cut -d: -f3)\""
        ;;
    esac
    cat >"$T/cfg/config.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: cosign-pub
  namespace: flux-system
stringData:
  cosign.pub: |
$(sed 's/^/    /' "$KD/cosign.pub")
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
  namespace: flux-system
spec:
  url: oci://$PROXY/app
  interval: 10m
  ref:
$ref
  verify:
    provider: cosign
    secretRef:
      name: cosign-pub
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: app
  namespace: flux-system
spec:
  interval: 10m
  path: ./
  prune: true
  targetNamespace: demo
  sourceRef:
    kind: OCIRepository
    name: app
${2:-}
EOF
}
run_once() { # sets RUN_ERR (the logs) besides OUT, ERR, RC
    bt run --once --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT"
    RUN_ERR=$ERR
}
tree_sig() { (cd "$TGT" && find . -type f -printf '%p %i %T@\n' | sort); }
ready_json() { # KIND NAME COND: status of condition COND
    bt get all --state-dir="$STATE" -o json
    echo "$OUT" | jq -r --arg k "$1" --arg n "$2" --arg c "$3" \
        '.[] | select(.kind==$k and .name==$n) | .status.conditions[] | select(.type==$c) | .status'
}

it "first sync: signed v1 is verified, pulled and applied to the directory target"
push_signed v1 "$APP_DIR"
write_config v1
run_once
[ "$RC" = 0 ] || fail "run --once failed (rc=$RC): $ERR"
for f in _cluster/core_Namespace_demo.yaml demo/core_ConfigMap_web-config.yaml \
    demo/apps_Deployment_web.yaml demo/core_Service_web.yaml; do
    [ -f "$TGT/$f" ] || fail "target file $f missing: $(cd "$TGT" && find . -type f)"
done
assert_contains "$(cat "$TGT/demo/apps_Deployment_web.yaml")" "namespace: demo"
berth_ok get all --state-dir="$STATE"
assert_match "$OUT" "ocirepository/app +v1@sha256:[0-9a-f]{64} +False +True +stored artifact"
assert_match "$OUT" "kustomization/app +v1@sha256:[0-9a-f]{64} +False +True +Applied revision: v1@"
assert_eq True "$(ready_json OCIRepository app SourceVerified)" "SourceVerified"
assert_contains "$RUN_ERR" "event=verified"

it "a second run with nothing changed is one manifest HEAD and rewrites nothing"
before=$(tree_sig)
: >"$PROXY_LOG"
run_once
[ "$RC" = 0 ] || fail "second run failed: $ERR"
assert_eq 1 "$(grep -c '^HEAD /v2/app/manifests/v1 ' "$PROXY_LOG")" "manifest HEADs"
assert_eq 1 "$(wc -l <"$PROXY_LOG")" "requests in a no-change reconcile: $(cat "$PROXY_LOG")"
assert_eq "$before" "$(tree_sig)" "target files rewritten"

it "v2 (one file changed, one removed): the change is applied and the removed object pruned"
cp -r "$APP_DIR" "$T/app2"
rm "$T/app2/workloads/web/service.yaml"
sed -i "s/hello from berth/changed-in-v2/" "$T/app2/config/configmap.yaml"
push_signed v2 "$T/app2"
write_config v2
run_once
[ "$RC" = 0 ] || fail "v2 run failed: $ERR"
[ ! -e "$TGT/demo/core_Service_web.yaml" ] || fail "the removed Service was not pruned"
assert_eq 1 "$(grep -c 'msg="Service/demo/web deleted"' <<<"$RUN_ERR")" "prune log lines"
assert_contains "$RUN_ERR" 'msg="ConfigMap/demo/web-config configured"'
assert_contains "$(cat "$TGT/demo/core_ConfigMap_web-config.yaml")" "changed-in-v2"
berth_ok get kustomizations --state-dir="$STATE"
assert_match "$OUT" "^app +v2@sha256:[0-9a-f]{64} +False +True"
assert_eq 1 "$(find "$STATE/artifacts/ocirepository/flux-system/app" -mindepth 1 -maxdepth 1 | wc -l)" \
    "artifact dirs after GC"

it "an unsigned v3 under verify is not stored or applied; SourceVerified=False says why"
good=$(tree_sig)
cp -r "$T/app2" "$T/app3"
echo "# v3" >>"$T/app3/workloads/web/deployment.yaml"
push_signed v3 "$T/app3" unsigned
write_config v3
: >"$PROXY_LOG"
run_once
assert_eq 1 "$RC" "exit status with an unverified source"
assert_not_contains "$(cat "$PROXY_LOG")" "/blobs/sha256" "no blob of the unverified artifact fetched"
assert_eq False "$(ready_json OCIRepository app SourceVerified)" "SourceVerified"
bt get sources oci --state-dir="$STATE"
assert_contains "$OUT" "failed to verify the signature"
assert_match "$OUT" "^app +v2@sha256"
assert_eq "$good" "$(tree_sig)" "target files changed by an unverified artifact"

it "an artifact signed with another key is refused as well"
berth_ok generate-key-pair --output-key-prefix="$KD/other"
berth_ok push artifact "oci://$REG/app:v4" --path="$T/app3" --source="$SRC" --revision=v4
berth_ok sign "oci://$REG/app:v4" --key="$KD/other.key"
write_config v4
run_once
assert_eq 1 "$RC" "exit status with a foreign signature"
assert_eq False "$(ready_json OCIRepository app SourceVerified)" "SourceVerified"
assert_eq "$good" "$(tree_sig)" "target files changed by a foreign-signed artifact"

it "back to v2: re-verified, and its stored files are reused (no layer download)"
write_config v2
: >"$PROXY_LOG"
run_once
[ "$RC" = 0 ] || fail "back-to-v2 run failed: $RUN_ERR"
assert_eq True "$(ready_json OCIRepository app SourceVerified)" "SourceVerified"
v2_layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/app/manifests/v2" | jq -r '.layers[0].digest')
assert_match "$v2_layer" "^sha256:[0-9a-f]{64}$" "v2 layer digest"
assert_not_contains "$(cat "$PROXY_LOG")" "GET /v2/app/blobs/$v2_layer" "v2 layer downloaded again"
assert_eq "$good" "$(tree_sig)" "target files rewritten"

it "semver picks the highest matching tag; semverFilter narrows the candidates"
push_signed 1.0.0 "$APP_DIR"
push_signed 1.1.0 "$T/app2"
push_signed 2.0.0 "$T/app2"
write_config "semver:>=1.0.0 <2.0.0"
run_once
[ "$RC" = 0 ] || fail "semver run failed: $RUN_ERR"
berth_ok get sources oci --state-dir="$STATE"
assert_match "$OUT" "^app +1[.]1[.]0@sha256:[0-9a-f]{64} "
write_config "semver:>=1.0.0:^1[.]0"
run_once
[ "$RC" = 0 ] || fail "semverFilter run failed: $RUN_ERR"
berth_ok get sources oci --state-dir="$STATE"
assert_match "$OUT" "^app +1[.]0[.]0@sha256:[0-9a-f]{64} "
[ -f "$TGT/demo/core_Service_web.yaml" ] || fail "1.0.0 (with the Service) not applied"

it "dependsOn: a Kustomization waits for its dependency (applied first even if named later)"
write_config v2 "  dependsOn:
    - name: zz-infra
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: zz-infra
  namespace: flux-system
spec:
  interval: 10m
  path: ./config
  prune: true
  targetNamespace: infra
  sourceRef:
    kind: OCIRepository
    name: app"
rm -rf "$STATE" "$TGT"
run_once
[ "$RC" = 0 ] || fail "dependsOn run failed: $ERR"
infra_line=$(echo "$ERR" | grep -n 'event=ready kind=Kustomization name=flux-system/zz-infra' | cut -d: -f1)
app_line=$(echo "$ERR" | grep -n 'event=ready kind=Kustomization name=flux-system/app' | cut -d: -f1)
[ -n "$infra_line" ] && [ -n "$app_line" ] && [ "$infra_line" -lt "$app_line" ] ||
    fail "zz-infra was not reconciled before app: $ERR"
[ -f "$TGT/infra/core_ConfigMap_web-config.yaml" ] || fail "zz-infra not applied"

it "dependsOn a missing Kustomization: DependencyNotReady, exit 1"
write_config v2 "  dependsOn:
    - name: nope"
run_once
assert_eq 1 "$RC" "exit status"
berth_ok get kustomizations --state-dir="$STATE"
assert_contains "$OUT" "dependency 'flux-system/nope' not found"

it "suspend: a suspended Kustomization is not reconciled (drift stays), resume restores it"
write_config v2 "  suspend: true"
rm "$TGT/demo/apps_Deployment_web.yaml"
run_once
[ "$RC" = 0 ] || fail "suspended run failed: $ERR"
[ ! -e "$TGT/demo/apps_Deployment_web.yaml" ] || fail "a suspended Kustomization was applied"
berth_ok get kustomizations --state-dir="$STATE"
assert_match "$OUT" "^app +v2@sha256:[0-9a-f]{64} +True "
write_config v2
run_once
[ "$RC" = 0 ] || fail "resumed run failed: $ERR"
[ -f "$TGT/demo/apps_Deployment_web.yaml" ] || fail "drift not restored after resume"
assert_contains "$RUN_ERR" "event=drift"

it "an invalid object is Stalled with file:line, the others still reconcile"
write_config v2
cat >>"$T/cfg/config.yaml" <<EOF
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: broken
  namespace: flux-system
spec:
  interval: 10m
  prune: true
  bogus: 1
  sourceRef:
    kind: OCIRepository
    name: app
EOF
run_once
assert_eq 1 "$RC" "exit status with an invalid object"
assert_eq True "$(ready_json Kustomization broken Stalled)" "Stalled"
assert_eq True "$(ready_json Kustomization app Ready)" "app Ready"
bt get kustomizations --state-dir="$STATE"
assert_match "$OUT" "broken .*config.yaml:[0-9]+"

it "without --once: a new artifact wakes its Kustomization at once; SIGTERM exits 0"
push_signed live "$T/app2"
write_config live
sed -i '0,/interval: 10m/s//interval: 1s/' "$T/cfg/config.yaml" # the source polls every second
rm -rf "$STATE" "$TGT"
"$BERTH" run --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT" \
    >"$T/loop.out" 2>"$T/loop.err" &
loop_pid=$!
for _ in $(seq 100); do
    [ -f "$TGT/demo/apps_Deployment_web.yaml" ] && break
    sleep 0.1
done
[ -f "$TGT/demo/apps_Deployment_web.yaml" ] || fail "the loop applied nothing: $(cat "$T/loop.err")"
[ ! -e "$TGT/demo/core_Service_web.yaml" ] || fail "the Service of v1 is there already"
push_signed live "$APP_DIR"
for _ in $(seq 100); do
    [ -f "$TGT/demo/core_Service_web.yaml" ] && break
    sleep 0.1
done
[ -f "$TGT/demo/core_Service_web.yaml" ] ||
    fail "the new artifact was not applied within 10s (Kustomization interval 10m): $(cat "$T/loop.err")"
kill -0 "$loop_pid" 2>/dev/null || fail "berth run exited without --once: $(cat "$T/loop.err")"
kill -TERM "$loop_pid"
loop_rc=0
wait "$loop_pid" || loop_rc=$?
assert_eq 0 "$loop_rc" "exit status after SIGTERM"
assert_contains "$(cat "$T/loop.err")" "event=stop"

it "secretRef (dockerconfigjson) and certSecretRef (ca.crt) reach a TLS registry with auth"
start_registry tls reg-tls
berth_ok push artifact "oci://$REG/app:v1" --path="$APP_DIR" --source="$SRC" --revision=v1 \
    "${BERTH_REG_ARGS[@]}"
auth=$(printf '%s:%s' "$TEST_USER" "$TEST_PASS" | base64 -w0)
cat >"$T/cfg/config.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: regcred
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"$REG":{"auth":"$auth"}}}'
---
apiVersion: v1
kind: Secret
metadata:
  name: ca
stringData:
  ca.crt: |
$(sed 's/^/    /' "$CA_FILE")
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: tls
spec:
  url: oci://$REG/app
  interval: 10m
  ref:
    tag: v1
  secretRef:
    name: regcred
  certSecretRef:
    name: ca
EOF
rm -rf "$STATE"
run_once
[ "$RC" = 0 ] || fail "TLS registry run failed: $RUN_ERR"
assert_eq 0 "$(find "$STATE" -name '.creds-*' | wc -l)" "credential temp dirs left behind"
sed -i '/^  secretRef:/,+1d' "$T/cfg/config.yaml"
run_once
assert_eq 1 "$RC" "exit status without credentials"
berth_ok get sources oci --state-dir="$STATE"
assert_match "$OUT" "^tls +v1@sha256:[0-9a-f]{64} +False +False +.*authentication required"

finish
