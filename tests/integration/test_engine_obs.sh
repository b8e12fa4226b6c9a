#!/bin/bash
# test_engine_obs.sh: observability and the remaining OCIRepository fields (issue 4) against a
# real docker-registry, with skopeo as the independent reader of what was pushed:
#   - `berth run --log-format=json`: every stderr line is one JSON object with ts (RFC 3339, ms),
#     level, event, kind, name, msg; a bad format is a usage error;
#   - spec.ignore: the stored tree lacks what the patterns exclude (and Flux's VCS set), keeps the
#     rest, and status.observedIgnore says which patterns; a changed ignore stores anew;
#   - spec.layerSelector.operation copy: the stored file is byte-identical to the layer blob
#     skopeo copied out of the registry, and a Kustomization on it applies its objects;
#   - spec.timeout: a registry answering its manifest after 3 s fails a source with timeout 1s in
#     about a second (FetchFailed, a message naming the timeout), and the same source with
#     timeout 10s succeeds;
#   - drift: a target file edited out of band is restored and shown by
#     `berth get kustomization NAME -o json` as status.lastDriftCorrection.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid skopeo

SRC=https://example.com/berth/obs.git
mkdir -p "$T/cfg" "$T/app/docs" "$T/app/.git"
STATE=$T/state
TGT=$T/target

start_registry plain
# the manifest of "slow" (and only it) is answered after 3 s
start_faultproxy "$REG" --delay-regex '^(HEAD|GET) /v2/slow/manifests/' --delay-ms 3000

cat >"$T/app/cm.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: obs
  namespace: demo
data:
  k: v
EOF
echo "notes" >"$T/app/docs/readme.md"
echo "scratch" >"$T/app/notes.txt"
echo "keep me" >"$T/app/keep.txt"
echo "[core]" >"$T/app/.git/config"
for repo in app slow; do
    berth_ok push artifact "oci://$REG/$repo:v1" --path="$T/app" --source="$SRC" \
        --revision="v1@sha1:4444444444444444444444444444444444444444" --ignore-paths="#none"
done

ocirepo() { # NAME URL TIMEOUT EXTRA_SPEC_YAML
    cat <<EOF
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: $1
  namespace: flux-system
spec:
  url: oci://$2
  interval: 10m
  timeout: $3
  ref:
    tag: v1
$4
EOF
}
kustomization() { # NAME SOURCE [EXTRA_SPEC_YAML]
    cat <<EOF
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: $1
  namespace: flux-system
spec:
  interval: 10m
  path: ./
  prune: true
  sourceRef:
    kind: OCIRepository
    name: $2
${3:-}
EOF
}
run_once() { # [berth run flags]; sets RUN_ERR besides OUT, ERR, RC
    bt run --once --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT" "$@"
    RUN_ERR=$ERR
}
status_of() { # KIND NAME: the status document
    berth_ok get all --state-dir="$STATE" -o json
    jq -c --arg k "$1" --arg n "$2" '.[] | select(.kind==$k and .name==$n) | .status' <<<"$OUT"
}
artifact_dir() { # NAME: the stored artifact's path under STATE/artifacts
    jq -r '.artifact.path' <<<"$(status_of OCIRepository "$1")"
}

it "ignore and copy: one run stores a filtered tree and a verbatim layer, JSON logs throughout"
{
    ocirepo ign "$REG/app" 30s "  ignore: |
    # docs and scratch files
    docs/
    *.txt
    !keep.txt"
    ocirepo cp "$REG/app" 30s "  layerSelector:
    mediaType: application/vnd.cncf.flux.content.v1.tar+gzip
    operation: copy"
    kustomization ks-ign ign
    kustomization ks-cp cp "  targetNamespace: demo-cp"
} >"$T/cfg/config.yaml"
run_once --log-format=json
[ "$RC" = 0 ] || fail "run failed (rc=$RC): $RUN_ERR"

# every stderr line is a JSON object with the documented fields
[ -n "$RUN_ERR" ] || fail "no log lines"
n_lines=0
while IFS= read -r line; do
    n_lines=$((n_lines + 1))
    jq -e 'type == "object" and (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))
           and (.level | type == "string") and (.event | type == "string")
           and (.msg | type == "string")' <<<"$line" >/dev/null ||
        fail "not a JSON log line with ts, level, event, msg: $line"
done <<<"$RUN_ERR"
assert_eq "$n_lines" "$(jq -s 'length' <<<"$RUN_ERR")" "one JSON object per line"
stored=$(jq -c 'select(.event == "stored" and .name == "flux-system/ign")' <<<"$RUN_ERR")
assert_eq OCIRepository "$(jq -r .kind <<<"$stored")" "kind of the stored record"
assert_eq info "$(jq -r .level <<<"$stored")" "level of the stored record"
assert_contains "$(jq -r .msg <<<"$stored")" "stored artifact with revision 'v1@sha256:"
assert_eq 1 "$(jq -s '[.[] | select(.event == "start")] | length' <<<"$RUN_ERR")" "start records"

# ignore: the tree keeps cm.yaml and keep.txt only
IGN=$STATE/artifacts/$(artifact_dir ign)
[ -f "$IGN/cm.yaml" ] || fail "cm.yaml missing from the ignore artifact: $(cd "$IGN" && find .)"
[ -f "$IGN/keep.txt" ] || fail "keep.txt (re-included by !keep.txt) missing: $(cd "$IGN" && find .)"
for gone in docs notes.txt .git; do
    [ ! -e "$IGN/$gone" ] || fail "$gone was not removed by spec.ignore: $(cd "$IGN" && find .)"
done
assert_contains "$(jq -r .observedIgnore <<<"$(status_of OCIRepository ign)")" '!keep.txt'
[ -f "$TGT/demo/core_ConfigMap_obs.yaml" ] || fail "ks-ign did not apply the ConfigMap"

# copy: the stored file is the layer blob, byte for byte, as skopeo reads it from the registry
skopeo copy --src-tls-verify=false "docker://$REG/app:v1" "oci:$T/layout:v1" >/dev/null 2>&1 ||
    fail "skopeo copy failed"
LAYER=$(jq -r '.layers[0].digest' <"$(layout_blob "$T/layout" "$(layout_manifest_digest "$T/layout" v1)")")
CP_PATH=$(artifact_dir cp)
assert_match "$CP_PATH" '^ocirepository/flux-system/cp/[0-9a-f]{64}-[0-9a-f]{12}/artifact\.tgz$'
assert_same_file "$(layout_blob "$T/layout" "$LAYER")" "$STATE/artifacts/$CP_PATH"
assert_eq copy "$(jq -r .observedLayerSelector.operation <<<"$(status_of OCIRepository cp)")" \
    "observedLayerSelector"
ks_cp=$(status_of Kustomization ks-cp)
assert_eq True "$(jq -r '.conditions[] | select(.type=="Ready") | .status' <<<"$ks_cp")" \
    "ks-cp Ready ($(jq -c . <<<"$ks_cp"))"
assert_eq 1 "$(jq '[.inventory.entries[] | select(.id == "demo-cp_obs__ConfigMap")] | length' \
    <<<"$ks_cp")" "ks-cp inventory"
[ -f "$TGT/demo-cp/core_ConfigMap_obs.yaml" ] || fail "ks-cp did not apply the ConfigMap"

it "a second run stores nothing anew (no stored event, the same artifact files)"
before=$(cd "$STATE/artifacts" && find . | sort)
run_once
[ "$RC" = 0 ] || fail "second run failed: $RUN_ERR"
assert_not_contains "$RUN_ERR" "event=stored"
assert_eq "$before" "$(cd "$STATE/artifacts" && find . | sort)" "artifact files after a no-change run"

it "a changed spec.ignore stores the artifact anew under the new patterns"
sed -i 's/^    !keep.txt$/    keep.txt/' "$T/cfg/config.yaml"
run_once
[ "$RC" = 0 ] || fail "run after the ignore change failed: $RUN_ERR"
assert_contains "$RUN_ERR" "event=stored kind=OCIRepository name=flux-system/ign"
IGN2=$STATE/artifacts/$(artifact_dir ign)
assert_ne "$IGN" "$IGN2" "artifact dir after the ignore change"
[ -f "$IGN2/cm.yaml" ] && [ ! -e "$IGN2/keep.txt" ] || fail "new patterns not applied: $(cd "$IGN2" && find .)"
[ ! -e "$IGN" ] || fail "the old artifact dir was not garbage-collected"

it "drift: an edited target file is restored and shown in status.lastDriftCorrection"
echo "edited: by hand" >"$TGT/demo/core_ConfigMap_obs.yaml"
run_once
[ "$RC" = 0 ] || fail "drift run failed: $RUN_ERR"
assert_contains "$(cat "$TGT/demo/core_ConfigMap_obs.yaml")" "name: obs"
berth_ok get kustomization ks-ign -n flux-system --state-dir="$STATE" -o json
drift=$(jq -c '.[0].status.lastDriftCorrection' <<<"$OUT")
assert_eq 1 "$(jq '.count' <<<"$drift")" "drift count ($drift)"
assert_eq "demo_obs__ConfigMap modified" "$(jq -r '.objects[0] | .id + " " + .drift' <<<"$drift")"
assert_eq "$(jq -r '.[0].status.lastAppliedRevision' <<<"$OUT")" "$(jq -r .revision <<<"$drift")"
assert_contains "$(jq -r '.[0].status.conditions[] | select(.type=="Ready") | .message' <<<"$OUT")" \
    "drift corrected at $(jq -r .time <<<"$drift")"
assert_fails --rc 1 "not found" berth get kustomization nope --state-dir="$STATE"

it "timeout: a source whose registry answers after 3 s fails at its 1s timeout"
{
    ocirepo slow "$PROXY/slow" 1s ""
} >"$T/cfg/config.yaml"
t0=$(_now_us)
run_once --log-format=json
took_ms=$((($(_now_us) - t0) / 1000))
assert_eq 1 "$RC" "exit status of a run with a failed source"
slow=$(status_of OCIRepository slow)
assert_eq "True OCIArtifactPullFailed" \
    "$(jq -r '.conditions[] | select(.type=="FetchFailed") | .status + " " + .reason' <<<"$slow")"
assert_contains "$(jq -r '.conditions[] | select(.type=="Ready") | .message' <<<"$slow")" \
    "timeout of 1s (spec.timeout) exceeded"
[ "$took_ms" -lt 2800 ] || fail "the run took ${took_ms} ms: the 1s timeout did not cut the 3 s wait"
log "run with a 1s timeout took ${took_ms} ms"
assert_eq 1 "$(jq -s '[.[] | select(.level == "error" and .kind == "OCIRepository" and
    .name == "flux-system/slow")] | length' <<<"$RUN_ERR")" "error records for slow"

it "the same source with timeout 10s waits the 3 s out and stores the artifact"
sed -i 's/^  timeout: 1s$/  timeout: 10s/' "$T/cfg/config.yaml"
run_once
[ "$RC" = 0 ] || fail "run with timeout 10s failed: $RUN_ERR"
assert_eq True "$(jq -r '.conditions[] | select(.type=="Ready") | .status' \
    <<<"$(status_of OCIRepository slow)")" "slow Ready"

it "a long-running loop gives each reconcile a fresh timeout: a source with timeout 1s and interval 1s stays Ready for 4 s"
# The workers keep their registry clients across reconciles; a budget counted from the client's
# creation would fail every reconcile after the first second.
ocirepo app "$REG/app" 1s "" | sed 's/^  interval: 10m$/  interval: 1s/' >"$T/cfg/config.yaml"
rm -rf "$STATE"
heads_before=$(cat "$T"/reg-*/registry.log | grep -c 'method=HEAD .*uri=/v2/app/manifests/v1' || true)
"$BERTH" run --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT" --log-format=json \
    2>"$T/loop.log" &
loop_pid=$!
sleep 4.5
kill -TERM "$loop_pid"
wait "$loop_pid" || fail "berth run exited $? after SIGTERM: $(cat "$T/loop.log")"
n_head=$(cat "$T"/reg-*/registry.log | grep -c 'method=HEAD .*uri=/v2/app/manifests/v1' || true)
[ "$((n_head - heads_before))" -ge 3 ] ||
    fail "only $((n_head - heads_before)) manifest HEADs of app in 4.5 s: $(cat "$T/loop.log")"
assert_eq 0 "$(jq -s '[.[] | select(.level == "error")] | length' "$T/loop.log")" \
    "error records in the loop's log ($(cat "$T/loop.log"))"
assert_eq True "$(jq -r '.conditions[] | select(.type=="Ready") | .status' \
    <<<"$(status_of OCIRepository app)")" "app Ready after 4.5 s of 1 s reconciles"

it "a bad --log-format is a usage error"
assert_fails --rc 2 'must be "logfmt" or "json"' berth run --once --config="$T/cfg" \
    --state-dir="$STATE" --log-format=yaml

finish
