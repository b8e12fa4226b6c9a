#!/bin/bash
# test_kube_bootstrap.sh: `berth bootstrap --kube` against the Kubernetes API test server
# (testdata/kubeapi, simulated rollouts) and a real docker-registry (issue 6, "What it must
# show"). bootstrap pushes DIR plus berth-system/ (berth's own install from deploy/, the
# OCIRepository and the Kustomization), signed, and installs it: the CRDs are Established, the
# berth Deployment rolls out Ready, the sync CRs and the key Secret exist. Then `berth run --kube`
# starts: that process stands in for the pod the berth Deployment would run (the test server
# runs no containers), with the same kubeconfig. It takes over: both CRs Ready=True, every
# object bootstrap applied kept (uid unchanged, generation unchanged). Then berth is upgraded by
# a push (`bootstrap --kube --push-only --image=NEW`): the running controller applies it to its
# own Deployment (image NEW, generation up, the simulated rollout completes, the Kustomization's
# status shows the new revision). Also: re-running bootstrap reports every object unchanged and
# pushes nothing new; a wrong --verify-key fails before anything is installed, naming the key;
# an unreachable API server fails clearly; a Deployment that never gets ready times out naming
# it; `berth uninstall --kube` removes berth and keeps the workloads and the CRDs; an install
# without --path (CI pushed, the cluster side holds only the public key) verifies and pulls by
# digest, pushes nothing, and refuses a wrong key, an artifact mirrored to another repository
# (its sync objects follow the original) and an artifact not made by bootstrap --kube.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl
require_kubectl

export BERTH_PASSWORD=kube-bootstrap-it
make_pki
TOKEN=kube-boot-it-token
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE" --rollout-step-ms 50
KCFG=$T/kubeconfig
write_token_kubeconfig "$KCFG" "$TOKEN"
kc() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
cr() { # RESOURCE: kubectl get -o json of the CR berth-system/berth-system
    kc -n berth-system get "$1" berth-system -o json 2>"$T/.kcerr" || true
}
start_registry plain
mkdir -p "$T/keys"
berth_ok generate-key-pair --output-key-prefix="$T/keys/cosign"
BERTH_PASSWORD= berth_ok generate-key-pair --output-key-prefix="$T/keys/other"
cp -r "$APP_DIR" "$T/fleet"
URL=oci://$REG/fleet
# --interval=2s: the controller looks at the registry every 2 s, so the upgrade is seen quickly
BOOT=(bootstrap "$URL:prod" --path="$T/fleet" --sign-key="$T/keys/cosign.key" --interval=2s
    --kube --kubeconfig="$KCFG")

it "a wrong --verify-key fails before anything is installed or pushed, naming the key"
assert_fails --rc 2 "$T/keys/other.pub" berth "${BOOT[@]}" --verify-key="$T/keys/other.pub"
assert_contains "$ERR" "is not the public half"
assert_fails --rc 1 "not found" berth list artifacts "$URL"
# an artifact signed with cosign.key, then a bootstrap that trusts other.pub only (refused: it
# would push an artifact that other.pub cannot verify)
berth_ok "${BOOT[@]}" --push-only --image=berth:1.0.0
assert_contains "$OUT" "artifact  created"
assert_fails --rc 2 "$T/keys/other.pub" berth bootstrap "$URL:prod" --path="$T/fleet" \
    --interval=2s --verify-key="$T/keys/other.pub" --kube --kubeconfig="$KCFG" --image=berth:1.0.0
assert_contains "$ERR" "needs --sign-key"
assert_eq "" "$(kube_object apiextensions.k8s.io customresourcedefinitions "" ocirepositories.source.toolkit.fluxcd.io)" \
    "no CRD after a failed verification"
assert_eq "" "$(kube_object "" namespaces "" berth-system)" "no namespace after a failed verification"

it "an unreachable API server fails clearly, before anything is pushed"
berth_ok list artifacts "$URL" -o json
TAGS_BEFORE=$OUT
sed "s#server: $KAPI/#server: https://127.0.0.1:9/#" "$KCFG" >"$T/kubeconfig.down"
assert_fails --rc 1 "Kubernetes API server https://127.0.0.1:9" berth bootstrap "$URL:prod" \
    --path="$T/fleet" --sign-key="$T/keys/cosign.key" --interval=2s --kube \
    --kubeconfig="$T/kubeconfig.down" --image=berth:1.1.0
assert_contains "$ERR" "connection refused"
assert_contains "$ERR" "$T/kubeconfig.down" "names the kubeconfig"
berth_ok list artifacts "$URL" -o json
assert_eq "$TAGS_BEFORE" "$OUT" "nothing pushed"
assert_fails --rc 1 "$T/no-such-kubeconfig" berth bootstrap "$URL:prod" --path="$T/fleet" \
    --sign-key="$T/keys/cosign.key" --kube --kubeconfig="$T/no-such-kubeconfig"

it "bootstrap --kube (sign and verify keys) installs berth and waits until it is Ready"
berth_ok "${BOOT[@]}" --verify-key="$T/keys/cosign.pub" --image=berth:1.0.0 --timeout=60s
log "$OUT"
assert_match "$OUT" "^artifact +unchanged +$URL:prod@sha256:"
assert_match "$OUT" "^artifact +verified +$URL:prod@sha256:.* with $T/keys/cosign.pub$"
D1=$(sed -n 's/^artifact *unchanged *[^@]*@//p' <<<"$OUT")
for s in CustomResourceDefinition/ocirepositories.source.toolkit.fluxcd.io \
    CustomResourceDefinition/kustomizations.kustomize.toolkit.fluxcd.io Namespace/berth-system \
    ClusterRole/berth-controller ServiceAccount/berth-system/berth \
    Secret/berth-system/berth-system-verify Deployment/berth-system/berth \
    OCIRepository/berth-system/berth-system Kustomization/berth-system/berth-system \
    Deployment/berth-demo/web; do
    assert_match "$OUT" "^object +created +$s$"
done
assert_match "$OUT" "^ready +Deployment/berth-system/berth and the CRDs \(image berth:1.0.0\)$"
for crd in ocirepositories.source.toolkit.fluxcd.io kustomizations.kustomize.toolkit.fluxcd.io \
    imagepolicies.image.toolkit.fluxcd.io; do
    assert_eq True "$(kc get crd "$crd" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" \
        "$crd Established"
done
DEP=$(kc -n berth-system get deployment berth -o json)
assert_eq "berth:1.0.0" "$(jq -r '.spec.template.spec.containers[0].image' <<<"$DEP")" "the image"
assert_eq "1 1 1" "$(jq -r '[.status.readyReplicas, .status.updatedReplicas, .status.availableReplicas] | map(tostring) | join(" ")' <<<"$DEP")" \
    "the Deployment rolled out"
assert_eq "$(jq -r .metadata.generation <<<"$DEP")" "$(jq -r .status.observedGeneration <<<"$DEP")" \
    "observedGeneration"
assert_eq "berth-system/berth-system" "$(jq -r '.metadata.labels | "\(.["kustomize.toolkit.fluxcd.io/namespace"])/\(.["kustomize.toolkit.fluxcd.io/name"])"' <<<"$DEP")" \
    "the Kustomization's owner labels"
assert_eq '["berth"]' "$(jq -c '[.metadata.managedFields[] | select(.operation == "Apply") | .manager]' <<<"$DEP")" \
    "applied with field manager berth"
SRC=$(cr ocirepositories)
assert_eq "$URL prod berth-system-verify" "$(jq -r '"\(.spec.url) \(.spec.ref.tag) \(.spec.verify.secretRef.name)"' <<<"$SRC")" \
    "the OCIRepository follows the artifact, verified with the key Secret"
KS=$(cr kustomizations)
assert_eq "./ true OCIRepository/berth-system" "$(jq -r '"\(.spec.path) \(.spec.prune) \(.spec.sourceRef.kind)/\(.spec.sourceRef.name)"' <<<"$KS")" \
    "the Kustomization applies ./ with prune"
assert_contains "$(kc -n berth-system get secret berth-system-verify -o jsonpath='{.data.cosign\.pub}' | base64 -d)" \
    "$(sed -n 2p "$T/keys/cosign.pub")" "the verify Secret holds cosign.pub"
assert_eq disabled "$(kc get crd kustomizations.kustomize.toolkit.fluxcd.io -o jsonpath='{.metadata.annotations.kustomize\.toolkit\.fluxcd\.io/prune}')" \
    "CRDs are never pruned"
# every object bootstrap applied, by uid, for the take-over check
snapshot() {
    local g r ns
    for g in "apiextensions.k8s.io customresourcedefinitions" "apps deployments" \
        "source.toolkit.fluxcd.io ocirepositories" "kustomize.toolkit.fluxcd.io kustomizations" \
        "rbac.authorization.k8s.io clusterroles" "rbac.authorization.k8s.io clusterrolebindings" \
        "rbac.authorization.k8s.io roles" "rbac.authorization.k8s.io rolebindings" " secrets" \
        " serviceaccounts" " configmaps" " services" " namespaces"; do
        read -r grp res <<<"$g"
        [ -n "$res" ] || { res=$grp; grp=""; }
        curl -fsS --cacert "$CA_FILE" "$KAPI/_kubeapi/objects?group=$grp&resource=$res" |
            jq -r '.. | objects | select(.metadata?.uid? and .metadata.labels["kustomize.toolkit.fluxcd.io/name"]? == "berth-system") |
                "\(.kind)/\(.metadata.namespace // "")/\(.metadata.name) \(.metadata.uid)"'
    done | sort
}
UIDS=$(snapshot)
assert_eq 21 "$(grep -c '^object' <<<"$OUT")" "objects applied"
assert_eq 21 "$(wc -l <<<"$UIDS")" "objects carrying the owner labels: $UIDS"

it "re-running bootstrap unchanged: every object unchanged, nothing new pushed"
berth_ok list artifacts "$URL" -o json
TAGS_BEFORE=$OUT
berth_ok "${BOOT[@]}" --verify-key="$T/keys/cosign.pub" --image=berth:1.0.0 -o json
assert_eq "unchanged $D1 true true" "$(jq -r '"\(.artifact) \(.digest) \(.verified) \(.ready)"' <<<"$OUT")"
assert_eq '["unchanged"]' "$(jq -c '[.objects[].action] | unique' <<<"$OUT")" "every object unchanged"
assert_contains "$ERR" "already signed with this key"
berth_ok list artifacts "$URL" -o json
assert_eq "$TAGS_BEFORE" "$OUT" "no new tag or signature"
assert_eq "$UIDS" "$(snapshot)" "nothing re-created"

it "berth run --kube (standing in for the berth pod) takes over: Ready, nothing deleted or re-created"
spawn berth "$T/berth.log" "$BERTH" run --kube --kubeconfig="$KCFG" --state-dir="$T/state" --workers=2
BPID=$SPAWNED
ready_rev() { # RESOURCE: "True REVISION" once Ready=True
    jq -r '"\(.status.conditions // [] | map(select(.type=="Ready"))[0].status // "none") \(.status.lastAppliedRevision // .status.artifact.revision // "")"' <<<"$(cr "$1")"
}
is_ready_at() { [ "$(ready_rev "$1")" = "True prod@$2" ]; }
wait_until berth "$BPID" "$T/berth.log" is_ready_at ocirepositories "$D1"
wait_until berth "$BPID" "$T/berth.log" is_ready_at kustomizations "$D1"
_IT_CHECKS=$((_IT_CHECKS + 2))
KS=$(cr kustomizations)
INV=$(jq -c '[.status.inventory.entries[].id]' <<<"$KS")
for id in berth-system_berth_apps_Deployment _ocirepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition \
    berth-system_berth-system_kustomize.toolkit.fluxcd.io_Kustomization berth-demo_web_apps_Deployment; do
    assert_contains "$INV" "\"$id\"" "the controller's inventory"
done
assert_eq "$UIDS" "$(snapshot)" "the take-over deleted or re-created nothing"
assert_eq 1 "$(kc -n berth-system get deployment berth -o jsonpath='{.metadata.generation}')" \
    "the take-over did not change the Deployment"
assert_not_contains "$(cat "$T/berth.log")" "deleted" "nothing pruned"

it "upgrade berth by a push: the running berth applies the new image to its own Deployment"
berth_ok "${BOOT[@]}" --push-only --image=berth:1.1.0
assert_match "$OUT" "^artifact +updated +$URL:prod@sha256:"
D2=$(sed -n 's/^artifact *updated *[^@]*@//p' <<<"$OUT")
assert_ne "$D1" "$D2" "a new digest"
assert_eq 1 "$(kc -n berth-system get deployment berth -o jsonpath='{.metadata.generation}')" \
    "--push-only does not touch the cluster"
dep_at() { # IMAGE GENERATION: the Deployment runs IMAGE, rolled out at GENERATION
    [ "$(kc -n berth-system get deployment berth -o json | jq -r '"\(.spec.template.spec.containers[0].image) \(.metadata.generation) \(.status.observedGeneration) \(.status.updatedReplicas) \(.status.readyReplicas)"')" = "$1 $2 $2 1 1" ]
}
BERTH_IT_WAIT=30 wait_until berth "$BPID" "$T/berth.log" dep_at berth:1.1.0 2
BERTH_IT_WAIT=30 wait_until berth "$BPID" "$T/berth.log" is_ready_at kustomizations "$D2"
_IT_CHECKS=$((_IT_CHECKS + 2))
assert_eq "$UIDS" "$(snapshot)" "upgraded in place (uids unchanged)"
assert_contains "$(jq -r '.status.conditions[] | select(.type=="Ready") | .message' <<<"$(cr kustomizations)")" \
    "prod@$D2" "the Kustomization's Ready message names the new revision"

it "bootstrap re-run with the upgrade's inputs: nothing to push, every object unchanged"
berth_ok "${BOOT[@]}" --verify-key="$T/keys/cosign.pub" --image=berth:1.1.0 -o json
assert_eq "unchanged $D2" "$(jq -r '"\(.artifact) \(.digest)"' <<<"$OUT")"
assert_eq '["unchanged"]' "$(jq -c '[.objects[].action] | unique' <<<"$OUT")" \
    "the same inputs as the push: every object unchanged"

it "uninstall --kube removes berth, keeps the CRDs, the namespace and the workloads"
# the running berth stops with its Deployment; its stand-in process is stopped by hand first
kill -TERM "$BPID"
wait "$BPID" 2>/dev/null || true
WEB_UID=$(jq -r .metadata.uid <<<"$(kube_object apps deployments berth-demo web)")
berth_ok uninstall --kube --kubeconfig="$KCFG" --timeout=30s
log "$OUT"
for s in Deployment/berth-system/berth Kustomization/berth-system/berth-system \
    OCIRepository/berth-system/berth-system Secret/berth-system/berth-system-verify \
    ClusterRole/berth-controller ClusterRoleBinding/berth-apply ServiceAccount/berth-system/berth \
    Role/berth-system/berth-leader-election; do
    assert_match "$OUT" "^object +deleted +$s$"
done
assert_eq "" "$(kube_object apps deployments berth-system berth)" "the berth Deployment is gone"
assert_eq "" "$(kube_object kustomize.toolkit.fluxcd.io kustomizations berth-system berth-system)" "the Kustomization is gone"
assert_eq "" "$(kube_object rbac.authorization.k8s.io clusterroles "" berth-apply)" "the ClusterRole is gone"
assert_eq "" "$(kube_object "" secrets berth-system berth-system-verify)" "the key Secret is gone"
assert_eq "$WEB_UID" "$(jq -r .metadata.uid <<<"$(kube_object apps deployments berth-demo web)")" \
    "the workloads stay"
assert_ne "" "$(kube_object apiextensions.k8s.io customresourcedefinitions "" kustomizations.kustomize.toolkit.fluxcd.io)" \
    "the CRDs stay"
assert_ne "" "$(kube_object "" namespaces "" berth-system)" "the namespace stays"
berth_ok uninstall --kube --kubeconfig="$KCFG" -o json
assert_eq "absent" "$(jq -r '.objects[0].action' <<<"$OUT")" "the second uninstall finds nothing"
assert_fails --rc 2 "no --host or --prune" berth uninstall --kube --prune

it "install only (no --path): CI pushed and signed it, the cluster side has the public key only"
berth_ok list artifacts "$URL" -o json
TAGS_BEFORE=$OUT
assert_fails --rc 3 "$T/keys/other.pub" berth bootstrap "$URL:prod" --verify-key="$T/keys/other.pub" \
    --kube --kubeconfig="$KCFG"
assert_eq "" "$(kube_object apps deployments berth-system berth)" "nothing installed with the wrong key"
berth_ok bootstrap "$URL:prod" --verify-key="$T/keys/cosign.pub" --kube --kubeconfig="$KCFG" --timeout=60s
log "$OUT"
assert_match "$OUT" "^artifact +verified +$URL:prod@$D2 with $T/keys/cosign.pub$"
assert_match "$OUT" "^artifact +pulled +$URL:prod@$D2$"
assert_match "$OUT" "^object +created +Deployment/berth-system/berth$"
assert_match "$OUT" "^object +created +OCIRepository/berth-system/berth-system$"
assert_eq "berth:1.1.0" "$(kube_object apps deployments berth-system berth | jq -r '.spec.template.spec.containers[0].image')" \
    "the image of the pushed artifact"
berth_ok list artifacts "$URL" -o json
assert_eq "$TAGS_BEFORE" "$OUT" "install only pushes nothing"
assert_fails --rc 2 "needs --path" berth bootstrap "$URL:prod" --verify-key="$T/keys/cosign.pub" \
    --kube --push-only
# mirrored elsewhere: its sync objects still follow $URL:prod, so installing it from the mirror is
# refused instead of making the cluster follow a registry the user did not name
berth_ok copy "$URL:prod" "oci://$REG/mirror/fleet:prod"
assert_fails --rc 1 "does not follow oci://$REG/mirror/fleet:prod" berth bootstrap \
    "oci://$REG/mirror/fleet:prod" --verify-key="$T/keys/cosign.pub" --kube --kubeconfig="$KCFG"
# an artifact not made by bootstrap --kube
berth_ok push artifact "oci://$REG/plain:prod" --path="$APP_DIR" --source=https://example.com/app.git \
    --revision=v1@sha1:1111111111111111111111111111111111111111 --sign-key="$T/keys/cosign.key"
assert_fails --rc 1 "is not a cluster bootstrap artifact" berth bootstrap "oci://$REG/plain:prod" \
    --verify-key="$T/keys/cosign.pub" --kube --kubeconfig="$KCFG"

it "a Deployment that never gets ready: bootstrap times out naming it"
kill -TERM "$KPID"
wait "$KPID" 2>/dev/null || true
rm -f "$T/kubeapi/port"
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE" --rollout-step-ms 600000
KCFG=$T/kubeconfig.slow
write_token_kubeconfig "$KCFG" "$TOKEN"
assert_fails --rc 1 "Deployment/berth-system/berth status: 'InProgress'" berth bootstrap \
    "$URL:prod" --path="$T/fleet" --sign-key="$T/keys/cosign.key" --interval=2s --kube \
    --kubeconfig="$KCFG" --image=berth:1.1.0 --timeout=20s
assert_contains "$ERR" "berth is not ready after"
assert_contains "$ERR" "progress  waiting for [Deployment/berth-system/berth status: 'InProgress'"

finish
