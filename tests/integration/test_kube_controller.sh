#!/bin/bash
# test_kube_controller.sh: controller mode, `berth run --kube`, against the Kubernetes API test
# server (testdata/kubeapi) and a real docker-registry. The Flux CRDs of deploy/crds are applied
# with kubectl; a signed artifact is pushed; an OCIRepository (verified with a cosign key from a
# Secret) and a Kustomization are created with kubectl. Checks: the app objects appear in the
# API server; both CRs' status (kubectl get -o json) is Ready=True with observedGeneration equal
# to metadata.generation in the status and its conditions, and the Kustomization's inventory;
# a spec change (a new tag) re-applies and raises observedGeneration; a requestedAt annotation
# is honoured, and lastHandledReconcileAt appears only together with the status of the
# reconcile that handled it (a new artifact); a label selector leaves other objects alone; an
# edit of a postBuild.substituteFrom ConfigMap is applied within 5 s; a deleted cosign Secret
# makes the OCIRepository not ready with a message naming it; deleting the Kustomization CR
# prunes its objects. Watches (from the server's request log): cluster-wide watches of Secrets
# and ConfigMaps; over 6 s idle no LIST and no new watch of the Flux CRs, no status PATCH and no
# GET, LIST or watch of Secrets/ConfigMaps; a change reaches the store within 2 s, a 410 after a gap lists
# again (a change and a deletion made in the gap arrive), a dropped watch resumes with its
# resourceVersion and no LIST; SIGTERM stops the run within 2 s.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl

require_kubectl

make_pki
TOKEN=kube-ctrl-it-token
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE" --rollout-step-ms 50
KCFG=$T/kubeconfig
write_token_kubeconfig "$KCFG" "$TOKEN"
kc() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
kget() { kube_object "$@"; } # GROUP RESOURCE NS NAME: the stored object (JSON) or empty
cr() { # RESOURCE NAME: kubectl get -o json of a CR in flux-system
    kc -n flux-system get "$1" "$2" -o json 2>"$T/.kcerr" || true
}

it "the Flux CRDs and a signed artifact"
kc apply -f "$BERTH_SRC/deploy/crds/source.toolkit.fluxcd.io_ocirepositories.yaml" >/dev/null
kc apply -f "$BERTH_SRC/deploy/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml" >/dev/null
kc create namespace flux-system >/dev/null
start_registry plain
berth_ok generate-key-pair --output-key-prefix="$T/cosign"
push_signed() { # TAG DIR
    berth_ok push artifact "oci://$REG/app:$1" --path="$2" --source=https://example.com/app.git \
        --revision="$1@sha1:3333333333333333333333333333333333333333"
    berth_ok sign "oci://$REG/app:$1" --key="$T/cosign.key"
}
push_signed v1 "$TESTDATA/app"
APP2=$T/app2
cp -r "$TESTDATA/app" "$APP2"
rm -rf "$APP2/config"
push_signed v2 "$APP2"
kc -n flux-system create secret generic cosign-pub --from-file=cosign.pub="$T/cosign.pub" >/dev/null
cat >"$T/crs.yaml" <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: app, namespace: flux-system, labels: {shard: a}}
spec:
  url: oci://$REG/app
  interval: 10m
  insecure: true
  ref: {tag: v1}
  verify:
    provider: cosign
    secretRef: {name: cosign-pub}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: app, namespace: flux-system, labels: {shard: a}}
spec:
  interval: 10m
  timeout: 30s
  path: ./
  prune: true
  sourceRef: {kind: OCIRepository, name: app}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: other-shard, namespace: flux-system, labels: {shard: b}}
spec:
  interval: 10m
  path: ./
  prune: true
  sourceRef: {kind: OCIRepository, name: app}
  targetNamespace: nowhere
EOF
kc apply -f "$T/crs.yaml" >/dev/null

it "berth run --kube reconciles the CRs and writes their status back"
STATE=$T/state
spawn berth "$T/berth.log" "$BERTH" run --kube --kubeconfig="$KCFG" --state-dir="$STATE" \
    --watch-label-selector=shard=a --workers=2
BPID=$SPAWNED
ready_gen() { # RESOURCE NAME: "True GEN GEN GEN" when Ready=True (status, condition, metadata)
    local j
    j=$(cr "$1" "$2")
    [ -n "$j" ] || return 1
    jq -r '[(.status.conditions // [] | map(select(.type=="Ready"))[0].status // "none"),
            (.status.observedGeneration // -1), 
            (.status.conditions // [] | map(select(.type=="Ready"))[0].observedGeneration // -1),
            .metadata.generation] | map(tostring) | join(" ")' <<<"$j"
}
is_ready_at() { # RESOURCE NAME GEN
    local g=$3
    [ "$(ready_gen "$1" "$2")" = "True $g $g $g" ]
}
wait_until berth "$BPID" "$T/berth.log" is_ready_at ocirepositories app 1
wait_until berth "$BPID" "$T/berth.log" is_ready_at kustomizations app 1
# only the source and kustomize CRDs are installed here: the image kinds are left out, once each
not_served=$(grep -c 'event=kind-not-served' "$T/berth.log" || true)
assert_eq 3 "$not_served" "image kinds reported as not served (ImageRepository, ImagePolicy, ImageUpdateAutomation)"
_IT_CHECKS=$((_IT_CHECKS + 2))
dep=$(kget apps deployments berth-demo web)
[ -n "$dep" ] || fail "the Deployment web is not in the API server"
assert_eq app/flux-system "$(jq -r '.metadata.labels | "\(.["kustomize.toolkit.fluxcd.io/name"])/\(.["kustomize.toolkit.fluxcd.io/namespace"])"' <<<"$dep")" \
    "the Deployment's owner labels"
assert_ne "" "$(kget "" configmaps berth-demo web-config)" "the ConfigMap of v1"
KS=$(cr kustomizations app)
assert_contains "$(jq -c '.status.inventory.entries | map(.id)' <<<"$KS")" \
    '"berth-demo_web_apps_Deployment"' "the inventory in the Kustomization's status"
assert_eq "v1@sha256:" "$(jq -r '.status.lastAppliedRevision[0:10]' <<<"$KS")" \
    "lastAppliedRevision"
SRC=$(cr ocirepositories app)
assert_eq "v1@sha256:" "$(jq -r '.status.artifact.revision[0:10]' <<<"$SRC")" "the artifact"
# the shard-b object is not this replica's: no status, nothing applied
assert_eq "null" "$(jq -c '.status.conditions' <<<"$(cr kustomizations other-shard)")" \
    "a Kustomization outside the label selector has no status"
[ ! -e "$STATE/kube-store/kustomization_flux-system_other-shard.yaml" ] ||
    fail "the store holds an object outside the label selector"
assert_eq "600" "$(stat -c %a "$STATE/kube-store/secret_flux-system_cosign-pub.yaml")" \
    "the materialised Secret's mode"

# the engine's events as Kubernetes Events on the CR
ks_events() {
    kc -n flux-system get events -o json |
        jq -c '[.items[] | select(.involvedObject.kind == "Kustomization" and
            .involvedObject.name == "app" and .source.component == "berth") |
            {reason, type, message}]'
}
has_ks_event() { [ "$(jq length <<<"$(ks_events)")" -gt 0 ]; }
wait_until berth "$BPID" "$T/berth.log" has_ks_event
_IT_CHECKS=$((_IT_CHECKS + 1))
EVS=$(ks_events)
log "Kubernetes Events of the Kustomization: $EVS"
assert_contains "$EVS" '"reason":"ReconciliationSucceeded","type":"Normal"' "the Event's reason"
assert_contains "$EVS" 'Deployment/berth-demo/web created' "the Event's message"
assert_eq "$(jq -r '.metadata.uid' <<<"$KS")" "$(kc -n flux-system get events -o json |
    jq -r '[.items[] | select(.involvedObject.kind == "Kustomization")][0].involvedObject.uid')" \
    "the Event's involvedObject.uid"

it "a spec change re-applies and raises observedGeneration"
kc -n flux-system patch ocirepository app --type merge -p '{"spec":{"ref":{"tag":"v2"}}}' >/dev/null
wait_until berth "$BPID" "$T/berth.log" is_ready_at ocirepositories app 2
has_v2() { [ "$(jq -r '.status.lastAppliedRevision[0:3]' <<<"$(cr kustomizations app)")" = v2@ ]; }
wait_until berth "$BPID" "$T/berth.log" has_v2
cm_gone() { [ -z "$(kget "" configmaps berth-demo web-config)" ]; }
wait_until berth "$BPID" "$T/berth.log" cm_gone
_IT_CHECKS=$((_IT_CHECKS + 3))

it "reconcile.fluxcd.io/requestedAt is honoured"
kc -n flux-system annotate kustomization app --overwrite reconcile.fluxcd.io/requestedAt=req-1 >/dev/null
handled() { [ "$(jq -r '.status.lastHandledReconcileAt' <<<"$(cr kustomizations "$1")")" = "$2" ]; }
wait_until berth "$BPID" "$T/berth.log" handled app req-1
_IT_CHECKS=$((_IT_CHECKS + 1))
assert_contains "$(cat "$T/berth.log")" "reconcile-requested" "the log names the request"

it "lastHandledReconcileAt comes with the status of the reconcile that handled the request"
# v2 again under another revision: a new digest that only a reconcile can see (interval 10m)
OLDREV=$(jq -r '.status.artifact.revision' <<<"$(cr ocirepositories app)")
berth_ok push artifact "oci://$REG/app:v2" --path="$APP2" --source=https://example.com/app.git \
    --revision="v2@sha1:4444444444444444444444444444444444444444"
berth_ok sign "oci://$REG/app:v2" --key="$T/cosign.key"
kc -n flux-system annotate ocirepository app --overwrite reconcile.fluxcd.io/requestedAt=req-src >/dev/null
# read the object straight from the server, fast, so a lastHandledReconcileAt written before
# the reconcile's status would be seen
src_seen() {
    curl -fsS --cacert "$CA_FILE" -o "$T/.src" \
        "$KAPI/_kubeapi/objects?group=source.toolkit.fluxcd.io&resource=ocirepositories&namespace=flux-system" ||
        return 1
    jq -r '[.. | objects | select(.metadata?.name? == "app" and .kind? == "OCIRepository")] | first |
        "\(.status.lastHandledReconcileAt // "-") \(.status.artifact.revision)"' "$T/.src"
}
deadline=$(($(_now_us) + 10000000))
HANDLED=""
while [ "$(_now_us)" -lt "$deadline" ]; do
    read -r at rev <<<"$(src_seen)"
    if [ "$at" = req-src ]; then
        HANDLED=$rev
        break
    fi
    sleep 0.02
done
[ -n "$HANDLED" ] || fail "lastHandledReconcileAt req-src not written within 10 s"
log "lastHandledReconcileAt req-src came with the artifact $HANDLED (before: $OLDREV)"
assert_ne "$OLDREV" "$HANDLED" "the artifact in the same status as lastHandledReconcileAt"
_IT_CHECKS=$((_IT_CHECKS + 1))

it "a substituteFrom ConfigMap is watched: an edit reaches the applied object"
SUBST=$T/subst
mkdir -p "$SUBST"
cat >"$SUBST/cm.yaml" <<'EOF2'
apiVersion: v1
kind: ConfigMap
metadata: {name: greeting, namespace: berth-demo}
data: {text: "${greeting}"}
EOF2
berth_ok push artifact "oci://$REG/subst:v1" --path="$SUBST" --source=https://example.com/s.git \
    --revision="v1@sha1:5555555555555555555555555555555555555555"
kc -n flux-system create configmap vars --from-literal=greeting=hello >/dev/null
cat >"$T/subst.yaml" <<EOF2
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: subst, namespace: flux-system, labels: {shard: a}}
spec: {url: "oci://$REG/subst", interval: 10m, insecure: true, ref: {tag: v1}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: subst, namespace: flux-system, labels: {shard: a}}
spec:
  interval: 10m
  path: ./
  prune: true
  sourceRef: {kind: OCIRepository, name: subst}
  postBuild:
    substituteFrom:
    - {kind: ConfigMap, name: vars}
EOF2
kc apply -f "$T/subst.yaml" >/dev/null
greeting() { [ "$(jq -r '.data.text' <<<"$(kget "" configmaps berth-demo greeting)")" = "$1" ]; }
wait_until berth "$BPID" "$T/berth.log" greeting hello
_IT_CHECKS=$((_IT_CHECKS + 1))
t0=$(_now_us)
kc -n flux-system patch configmap vars --type merge -p '{"data":{"greeting":"bonjour"}}' >/dev/null
wait_until berth "$BPID" "$T/berth.log" greeting bonjour
took_ms=$((($(_now_us) - t0) / 1000))
log "the ConfigMap edit reached the applied object after $took_ms ms"
[ "$took_ms" -le 5000 ] || fail "the substituteFrom edit took $took_ms ms to be applied"
_IT_CHECKS=$((_IT_CHECKS + 1))

it "after start-up the store watches: no periodic LIST, watch or GET requests"
kapi() { # METHOD PATH [JSON]: the test server's control API, the reply in $T/.kapi
    curl -fsS --cacert "$CA_FILE" -X "$1" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} -o "$T/.kapi" "$KAPI$2" || fail "kubeapi control: $1 $2"
}
nreq() { kapi GET /_kubeapi/requests && jq '.items | length' "$T/.kapi"; }
cr_reqs() { # N: "LISTS WATCHES" of the Flux CRs in the request log since entry N
    kapi GET /_kubeapi/requests
    jq -r --argjson n "$1" '.items[$n:] | map(select(.method == "GET" and
        (.path | test("/(ocirepositories|kustomizations)$")))) |
        [(map(select((.query.watch // "") | test("^(1|true)$") | not)) | length),
         (map(select((.query.watch // "") | test("^(1|true)$"))) | length)] |
        map(tostring) | join(" ")' "$T/.kapi"
}
ref_reqs() { # N: "GETS LISTS WATCHES" of Secrets and ConfigMaps since entry N (any namespace)
    kapi GET /_kubeapi/requests
    jq -r --argjson n "$1" '.items[$n:] | map(select(.method == "GET" and
        (.path | test("^/api/v1/(namespaces/[^/]+/)?(secrets|configmaps)(/|$)")))) |
        [(map(select(.path | test("/(secrets|configmaps)/[^/]+$"))) | length),
         (map(select((.path | test("/(secrets|configmaps)$")) and
            ((.query.watch // "") | test("^(1|true)$") | not))) | length),
         (map(select((.query.watch // "") | test("^(1|true)$"))) | length)] |
        map(tostring) | join(" ")' "$T/.kapi"
}
kapi GET /_kubeapi/requests
assert_ne 0 "$(jq '[.items[] | select(.path == "/api/v1/secrets" and
    ((.query.watch // "") | test("^(1|true)$")))] | length' "$T/.kapi")" \
    "a cluster-wide watch of Secrets"
assert_ne 0 "$(jq '[.items[] | select(.path == "/api/v1/configmaps" and
    ((.query.watch // "") | test("^(1|true)$")))] | length' "$T/.kapi")" \
    "a cluster-wide watch of ConfigMaps"
sleep 1 # the substituteFrom edit's reconcile settles
N0=$(nreq)
sleep 6
read -r LISTS WATCHES <<<"$(cr_reqs "$N0")"
read -r RGETS RLISTS RWATCHES <<<"$(ref_reqs "$N0")"
log "over 6 s idle: Flux CRs $LISTS list, $WATCHES watch; Secrets/ConfigMaps $RGETS get, $RLISTS list, $RWATCHES watch requests"
assert_eq 0 "$LISTS" "LIST requests of the Flux CRs over 6 s idle"
assert_eq 0 "$WATCHES" "new watch requests of the Flux CRs over 6 s idle (watches last minutes)"
assert_eq "0 0 0" "$RGETS $RLISTS $RWATCHES" "GET, LIST and watch requests of Secrets/ConfigMaps over 6 s idle"
# a status the server keeps only in part (Flux's schema prunes inventory.prune) is not sent again
assert_eq 0 "$(jq --argjson n "$N0" '[.items[$n:][] | select(.method == "PATCH" and
    (.path | test("/status$")))] | length' "$T/.kapi")" "status PATCH requests over 6 s idle"
STOREKS=$STATE/kube-store/kustomization_flux-system_app.yaml

it "a change made while berth runs comes through the watch within 2 s"
store_has() { grep -q -- "$2" "$1" 2>/dev/null; }
t0=$(_now_us)
kc -n flux-system patch kustomization app --type merge -p '{"spec":{"interval":"11m"}}' >/dev/null
wait_until berth "$BPID" "$T/berth.log" store_has "$STOREKS" "\"interval\": \"11m\""
took_ms=$((($(_now_us) - t0) / 1000))
log "the change reached the store after $took_ms ms (kubectl's own time included)"
[ "$took_ms" -le 2000 ] || fail "the change took $took_ms ms to reach the store"
_IT_CHECKS=$((_IT_CHECKS + 1))

it "a watch that expired (410) lists again and sees the changes made in the gap"
cat >"$T/gap.yaml" <<EOF
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: gap, namespace: flux-system, labels: {shard: a}}
spec:
  interval: 10m
  suspend: true
  prune: false
  path: ./
  sourceRef: {kind: OCIRepository, name: app}
EOF
kc apply -f "$T/gap.yaml" >/dev/null
GAPF=$STATE/kube-store/kustomization_flux-system_gap.yaml
wait_until berth "$BPID" "$T/berth.log" test -e "$GAPF"
_IT_CHECKS=$((_IT_CHECKS + 1))
# the gap: berth may not watch Kustomizations; a change and a deletion happen, then the history
# that berth's resourceVersion points into is dropped
kapi POST /_kubeapi/forbid '{"verb": "watch", "resource": "kustomizations"}'
kapi POST /_kubeapi/close-watches
sleep 1.5
kc -n flux-system patch kustomization app --type merge -p '{"spec":{"interval":"12m"}}' >/dev/null
kc -n flux-system delete kustomization gap --wait=false >/dev/null
kapi POST /_kubeapi/compact
sleep 1
if store_has "$STOREKS" "\"interval\": \"12m\""; then
    fail "the change reached the store while watches were forbidden"
fi
N1=$(nreq)
kapi DELETE /_kubeapi/forbid
wait_until berth "$BPID" "$T/berth.log" store_has "$STOREKS" "\"interval\": \"12m\""
gap_gone() { [ ! -e "$GAPF" ]; }
wait_until berth "$BPID" "$T/berth.log" gap_gone
_IT_CHECKS=$((_IT_CHECKS + 2))
assert_contains "$(cat "$T/berth.log")" "store-relist" "the log says the watch listed again"
read -r LISTS WATCHES <<<"$(cr_reqs "$N1")"
[ "$LISTS" -ge 1 ] || fail "no LIST after the watch expired"

it "a dropped watch connection resumes from the last resourceVersion"
# the watches that outlived the compaction above still point before it: a bookmark moves
# them past it (a real server bookmarks about once a minute)
kapi POST /_kubeapi/bookmark
sleep 0.5
N2=$(nreq)
kapi POST /_kubeapi/close-watches
kc -n flux-system patch kustomization app --type merge -p '{"spec":{"interval":"13m"}}' >/dev/null
wait_until berth "$BPID" "$T/berth.log" store_has "$STOREKS" "\"interval\": \"13m\""
_IT_CHECKS=$((_IT_CHECKS + 1))
read -r LISTS WATCHES <<<"$(cr_reqs "$N2")"
assert_eq 0 "$LISTS" "LIST requests after a dropped watch"
kapi GET /_kubeapi/requests
assert_ne 0 "$(jq --argjson n "$N2" '[.items[$n:][] | select(.path | test("/kustomizations$")) |
    select((.query.resourceVersion // "") | length > 0)] | length' "$T/.kapi")" \
    "watches resumed with a resourceVersion"

it "a referenced Secret deleted: the OCIRepository is not ready and names the Secret"
# a new digest under v2, then the cosign key goes: the deletion alone makes berth reconcile the
# OCIRepository (interval 10m), which needs the key for the new digest
berth_ok push artifact "oci://$REG/app:v2" --path="$APP2" --source=https://example.com/app.git \
    --revision="v2@sha1:6666666666666666666666666666666666666666"
berth_ok sign "oci://$REG/app:v2" --key="$T/cosign.key"
kc -n flux-system delete secret cosign-pub >/dev/null
ready_msg() { jq -r '(.status.conditions // [] | map(select(.type=="Ready"))[0]) | "\(.status) \(.message)"' <<<"$(cr ocirepositories app)"; }
not_ready() { [[ "$(ready_msg)" == False* ]]; }
wait_until berth "$BPID" "$T/berth.log" not_ready
_IT_CHECKS=$((_IT_CHECKS + 1))
log "Ready of the OCIRepository without its Secret: $(ready_msg)"
assert_contains "$(ready_msg)" "cosign-pub" "the not-ready message names the Secret"
[ ! -e "$STATE/kube-store/secret_flux-system_cosign-pub.yaml" ] || fail "the deleted Secret is still in the store"
# created again: the watch brings it back and the OCIRepository is reconciled with it
kc -n flux-system create secret generic cosign-pub --from-file=cosign.pub="$T/cosign.pub" >/dev/null
src_ready() { [[ "$(ready_msg)" == True* ]]; }
wait_until berth "$BPID" "$T/berth.log" src_ready
_IT_CHECKS=$((_IT_CHECKS + 1))

it "deleting the Kustomization CR prunes its objects"
kc -n flux-system delete kustomization app >/dev/null
dep_gone() { [ -z "$(kget apps deployments berth-demo web)" ]; }
wait_until berth "$BPID" "$T/berth.log" dep_gone
_IT_CHECKS=$((_IT_CHECKS + 1))
t0=$(_now_us)
kill -TERM "$BPID"
wait "$BPID" || fail "berth run --kube did not stop cleanly on SIGTERM"
took_ms=$((($(_now_us) - t0) / 1000))
log "berth run --kube stopped $took_ms ms after SIGTERM"
[ "$took_ms" -le 2000 ] || fail "berth run --kube took $took_ms ms to stop on SIGTERM"
assert_not_contains "$(cat "$T/berth.log")" "$(sed -n 2p "$T/cosign.pub")" "the Secret in the log"

it "leader election: two replicas, only the Lease holder reconciles; the other takes over"
kc apply -f "$T/crs.yaml" >/dev/null
holder() { kc -n flux-system get lease berth-leader -o json 2>/dev/null | jq -r '.spec.holderIdentity // ""'; }
spawn berth-a "$T/a.log" "$BERTH" run --kube --kubeconfig="$KCFG" --state-dir="$T/state-a" \
    --watch-label-selector=shard=a --leader-election-namespace=flux-system
APID=$SPAWNED
holds() { [[ "$(holder)" == *"_$1" ]]; }
wait_until berth-a "$APID" "$T/a.log" holds "$APID"
_IT_CHECKS=$((_IT_CHECKS + 1))
spawn berth-b "$T/b.log" "$BERTH" run --kube --kubeconfig="$KCFG" --state-dir="$T/state-b" \
    --watch-label-selector=shard=a --leader-election-namespace=flux-system
BPID2=$SPAWNED
wait_until berth-a "$APID" "$T/a.log" test -s "$T/state-a/status/kustomization/flux-system/app.json"
wait_until berth-b "$BPID2" "$T/b.log" grep -q leader-waiting "$T/b.log"
_IT_CHECKS=$((_IT_CHECKS + 2))
sleep 3
assert_not_contains "$(cat "$T/b.log")" "leader-elected" "the second replica while the first leads"
[ ! -e "$T/state-b/status" ] || fail "the follower reconciled: $(ls -R "$T/state-b/status")"
[ -n "$(kget apps deployments berth-demo web)" ] || fail "the leader did not apply the app"
t0=$(_now_us)
kill -KILL "$APID"
wait "$APID" 2>/dev/null || true
BERTH_IT_WAIT=25 wait_until berth-b "$BPID2" "$T/b.log" holds "$BPID2" # lease 15 s + retry 2 s
took_ms=$((($(_now_us) - t0) / 1000))
log "the follower took over after $took_ms ms"
[ "$took_ms" -le $((15000 + 2000 + 3000)) ] || fail "takeover took $took_ms ms (lease 15 s)"
wait_until berth-b "$BPID2" "$T/b.log" test -s "$T/state-b/status/kustomization/flux-system/app.json"
_IT_CHECKS=$((_IT_CHECKS + 3))
assert_eq 1 "$(kc -n flux-system get lease berth-leader -o json | jq -r .spec.leaseTransitions)" \
    "leaseTransitions after one takeover"
kill -TERM "$BPID2"
wait "$BPID2" || fail "the new leader did not stop cleanly on SIGTERM"

it "usage errors"
assert_fails --rc 2 "exclude" berth run --kube --config="$T/crs.yaml" --state-dir="$T/s2"
assert_fails --rc 2 "needs --kube" berth run --config="$T/crs.yaml" --watch-label-selector=a=b
finish
