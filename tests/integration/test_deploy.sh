#!/bin/bash
# test_deploy.sh: deploy/ (how berth runs in a cluster) against the Kubernetes API test server
# (testdata/kubeapi) with Debian's kubectl 1.20. `kubectl apply -k deploy/` installs every object
# of deploy/; the five CRDs become Established and serve their kinds (short names, printer
# columns, status subresource, v1beta2 OCIRepository served but not stored); every example Flux
# config in testdata/ and docs/ is accepted as a custom resource with every field kept (the test
# server prunes unknown fields and validates types, enums, patterns and required fields against
# the CRD schemas), while configs berth rejects are rejected or warned about by the schemas too;
# and berth's own kustomize subset (berth run --once on an artifact of deploy/) builds the same
# objects as kubectl's kustomize.
KUBECTL_CACHE=${BERTH_KUBECTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubectl}
source "$(dirname "$0")/lib.sh"
require_tools curl jq setsid python3 docker-registry timeout

KUBEAPI=$TESTDATA/kubeapi/server.py
DEPLOY=$BERTH_SRC/deploy
OBJS="$PYTHON $BERTH_SRC/tests/support/deploy_objects.py"
"$PYTHON" -c 'import yaml' 2>/dev/null || skip "python3 has no yaml module (Debian python3-yaml)"
if [ -z "${KUBECTL:-}" ] &&
    ! KUBECTL=$(bash "$BERTH_SRC/scripts/get-kubectl.sh" "$KUBECTL_CACHE" 2>"$T/get-kubectl.err"); then
    skip "Debian's kubectl is not available: $(tail -n 3 "$T/get-kubectl.err" | tr '\n' ' ')"
fi

CRDS="ocirepositories.source.toolkit.fluxcd.io kustomizations.kustomize.toolkit.fluxcd.io
imagerepositories.image.toolkit.fluxcd.io imagepolicies.image.toolkit.fluxcd.io
imageupdateautomations.image.toolkit.fluxcd.io"

# kc ARGS...: kubectl against the test server; sets OUT, ERR, RC; never fails by itself.
kc() {
    RC=0
    timeout -k 2 60 "$KUBECTL" --kubeconfig "$KCFG" "$@" >"$T/.out" 2>"$T/.err" </dev/null || RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
}
kc_ok() {
    kc "$@"
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" = 0 ] || fail "kubectl $* failed (rc=$RC): $ERR"
}
# stored_objects FILE: every object the server holds, as stored (storage version).
stored_objects() { curl -fsS "$KAPI/_kubeapi/objects" >"$1"; }

d=$T/kubeapi
mkdir -p "$d"
spawn kubeapi "$d/server.log" "$PYTHON" "$KUBEAPI" --port 0 --port-file "$d/port" \
    --log "$d/requests.log" --crd-establish-delay-ms 300 --no-controllers
wait_until kubeapi "$SPAWNED" "$d/server.log" test -s "$d/port"
KAPI=http://127.0.0.1:$(cat "$d/port")
wait_until kubeapi "$SPAWNED" "$d/server.log" _http_answers "$KAPI/healthz"
KCFG=$T/kubeconfig
cat >"$KCFG" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "$KAPI"}}]
users: [{name: test, user: {}}]
contexts: [{name: test, context: {cluster: test, user: test, namespace: default}}]
current-context: test
EOF

it "deploy/crds is what scripts/gen-crds.py writes"
"$PYTHON" "$BERTH_SRC/scripts/gen-crds.py" "$T/crds" >/dev/null
for f in "$DEPLOY"/crds/*.yaml "$T"/crds/*.yaml; do
    assert_same_file "$T/crds/$(basename "$f")" "$DEPLOY/crds/$(basename "$f")"
done

it "kubectl apply -k deploy/ creates every object of deploy/"
kc_ok kustomize "$DEPLOY"
printf '%s\n' "$OUT" >"$T/kubectl-kustomize.yaml"
want_ids=$($OBJS ids "$T/kubectl-kustomize.yaml")
assert_eq 14 "$(wc -l <<<"$want_ids")" "objects in deploy/: $want_ids"
kc_ok apply -k "$DEPLOY"
assert_eq 14 "$(grep -c ' created$' <<<"$OUT")" "created lines: $OUT"
stored_objects "$T/stored.json"
for id in $(tr ' ' '|' <<<"$want_ids"); do
    IFS='|' read -r kind ns name <<<"$id"
    [ "$ns" != - ] || ns=null
    n=$(jq --arg k "$kind" --arg n "$name" --argjson ns "$([ "$ns" = null ] && echo null || jq -n --arg v "$ns" '$v')" \
        '[.items[] | select(.kind == $k and .metadata.name == $n and .metadata.namespace == $ns)] | length' \
        "$T/stored.json")
    assert_eq 1 "$n" "stored $kind $ns/$name"
done

it "the CRDs become Established and serve their kinds"
# the command docs/deploy.md gives
kc_ok wait --for condition=established --timeout=20s crd -l app.kubernetes.io/part-of=berth
assert_eq 5 "$(grep -c 'condition met' <<<"$OUT")" "CRDs waited for: $OUT"
for crd in $CRDS; do
    kc_ok get crd "$crd" -o json
    assert_eq True "$(jq -r '.status.conditions[] | select(.type == "Established") | .status' <<<"$OUT")" \
        "$crd Established"
done
kc_ok get crd ocirepositories.source.toolkit.fluxcd.io -o json
assert_eq '["v1"]' "$(jq -c .status.storedVersions <<<"$OUT")" "OCIRepository stored versions"
assert_eq 'v1=true/true v1beta2=true/false' \
    "$(jq -r '[.spec.versions[] | "\(.name)=\(.served)/\(.storage)"] | join(" ")' <<<"$OUT")" "versions"
kc_ok api-resources --api-group=source.toolkit.fluxcd.io
assert_match "$OUT" "ocirepositories +ocirepo +source.toolkit.fluxcd.io/v1 +true +OCIRepository"
kc_ok api-resources --api-group=kustomize.toolkit.fluxcd.io
assert_match "$OUT" "kustomizations +ks +kustomize.toolkit.fluxcd.io/v1 +true +Kustomization"
kc_ok api-resources --api-group=image.toolkit.fluxcd.io
assert_match "$OUT" "imagepolicies +imgpol,imagepol +image.toolkit.fluxcd.io/v1 +true +ImagePolicy"
assert_match "$OUT" "imagerepositories +imgrepo,imagerepo +image.toolkit.fluxcd.io/v1 +true +ImageRepository"
assert_match "$OUT" "imageupdateautomations +iua,imgupd,imgauto +image.toolkit.fluxcd.io/v1 +true +ImageUpdateAutomation"

it "the Deployment runs berth as a non-root, read-only, capability-less container"
kc_ok get deployment berth -n berth-system -o json
c='.spec.template.spec.containers[0]'
assert_eq '["run","--kube","--state-dir=/var/lib/berth"]' "$(jq -c "$c.args" <<<"$OUT")" "args"
assert_eq 'true true false ["ALL"]' "$(jq -r -c "[.spec.template.spec.securityContext.runAsNonRoot, \
    $c.securityContext.readOnlyRootFilesystem, $c.securityContext.allowPrivilegeEscalation, \
    $c.securityContext.capabilities.drop] | map(tojson) | join(\" \")" <<<"$OUT")" "security"
assert_eq RuntimeDefault "$(jq -r .spec.template.spec.securityContext.seccompProfile.type <<<"$OUT")" "seccomp"
assert_eq "/var/lib/berth emptyDir" "$(jq -r "[($c.volumeMounts[] | select(.name == \"state\").mountPath), \
    (.spec.template.spec.volumes[] | select(.name == \"state\") | keys[] | select(. != \"name\"))] | join(\" \")" \
    <<<"$OUT")" "state dir volume"
sa=$(jq -r .spec.template.spec.serviceAccountName <<<"$OUT")
assert_eq berth "$sa" "serviceAccountName"
# The test server has no RBAC authorizer (docs/kubeapi.md): check that every binding names the
# Deployment's ServiceAccount and a role that exists, and what the roles grant.
kc_ok get clusterrolebindings,rolebindings -A -l app.kubernetes.io/part-of=berth -o json
assert_eq "berth-apply=ClusterRole:berth-system/berth berth-controller=ClusterRole:berth-system/berth \
berth-leader-election=Role:berth-system/berth" \
    "$(jq -r '[.items[] | "\(.metadata.name)=\(.roleRef.kind):\(.subjects[0].namespace)/\(.subjects[0].name)"]
    | sort | join(" ")' <<<"$OUT")" "bindings"
kc_ok get role berth-leader-election -n berth-system -o json
assert_eq "coordination.k8s.io leases create,get,update" \
    "$(jq -r '.rules[] | "\(.apiGroups[0]) \(.resources[0]) \(.verbs | sort | join(","))"' <<<"$OUT")" "lease role"
kc_ok get clusterrole berth-controller -o json
assert_eq "create,patch" "$(jq -r '[.rules[] | select(.resources == ["events"]) | .verbs | sort | join(",")]
    | unique | join(" ")' <<<"$OUT")" "event verbs"
assert_eq "get,list,watch" "$(jq -r '.rules[] | select(.resources == ["secrets", "configmaps"]) | .verbs
    | sort | join(",")' <<<"$OUT")" "secret verbs (read only)"

it "every example Flux config in testdata/ and docs/ is accepted with every field kept"
examples=("$TESTDATA/engine/config/good" "$TESTDATA/deploy/image-automation.yaml")
# the host install's default config (deploy/host, when present)
[ ! -f "$DEPLOY/host/sync.yaml" ] || examples+=("$DEPLOY/host/sync.yaml")
for f in "$TESTDATA"/fuzz/config/good-*.yaml; do
    # objects of the engine/config/good set are duplicated in the fuzz seeds: skip equal names
    grep -q 'toolkit.fluxcd.io' "$f" && examples+=("$f")
done
mkdir -p "$T/docs-examples"
n_doc=$($OBJS yaml-blocks "$T/docs-examples" "$BERTH_SRC"/docs/*.md "$BERTH_SRC/README.md")
log "docs: $n_doc YAML blocks with Flux kinds"
[ "$n_doc" = 0 ] || examples+=("$T/docs-examples")
for ex in "${examples[@]}"; do
    # a fresh namespace set per example: the fuzz seeds reuse the names of the good set
    kc_ok delete ocirepositories,kustomizations,imagerepositories,imagepolicies,imageupdateautomations \
        --all --all-namespaces
    for ns in $($OBJS ids "$ex" | awk '$2 != "-" {print $2}' | sort -u); do
        kc get namespace "$ns"
        [ "$RC" = 0 ] || kc_ok create namespace "$ns"
    done
    fargs=()
    while read -r f; do fargs+=(-f "$f"); done < <($OBJS files "$ex")
    kc_ok create "${fargs[@]}"
    assert_not_contains "$ERR" "unknown field" "$ex: kubectl warnings"
    stored_objects "$T/stored.json"
    out=$($OBJS subset "$T/stored.json" "$ex") || fail "$ex: $out"
    log "$out"
done

it "configs berth rejects are rejected (or warned about) by the CRD schemas too"
bad=$TESTDATA/engine/config/bad
kc create -f "$bad/bad-duration.yaml"
[ "$RC" != 0 ] || fail "a bad duration was accepted"
assert_contains "$ERR" "spec.interval" "bad duration message"
kc create -f "$bad/missing-field.yaml"
[ "$RC" != 0 ] || fail "a Kustomization without prune was accepted"
assert_contains "$ERR" "spec.prune" "missing field message"
kc create -f "$bad/unknown-field.yaml"
assert_contains "$ERR" 'unknown field "spec.ref.semverr"' "unknown field warning"
kc_ok get ocirepository broken -o json
assert_eq '{"tag":"v1"}' "$(jq -c .spec.ref <<<"$OUT")" "unknown field pruned"

it "status subresource and printer columns: kubectl get shows Ready and the message"
kc_ok create -f "$TESTDATA/engine/config/good/apps/app.yaml"
kc_ok get kustomization app -n apps -o json
jq '.status = {"observedGeneration": 1, "lastAppliedRevision": "v1@sha256:aa", "suspended": true,
    "inventory": {"entries": [{"id": "demo_web_apps_Deployment", "v": "v1"}]},
    "lastDriftCorrection": {"time": "2026-11-22T05:58:05Z", "revision": "v1@sha256:aa", "count": 1,
      "objects": [{"id": "demo_web_apps_Deployment", "subject": "Deployment/demo/web", "drift": "missing"}]},
    "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
    "message": "Applied revision: v1@sha256:aa", "lastTransitionTime": "2026-11-22T05:00:00Z"}]}' \
    <<<"$OUT" >"$T/ks-status.json"
code=$(curl -sS -o "$T/put.out" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data-binary @"$T/ks-status.json" \
    "$KAPI/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/apps/kustomizations/app/status")
assert_eq 200 "$code" "PUT status: $(cat "$T/put.out")"
# every status field berth writes is kept (a field missing from the schema would be pruned)
assert_eq "$(jq -S -c .status "$T/ks-status.json")" "$(jq -S -c .status "$T/put.out")" "stored status"
kc_ok get ks -n apps app
assert_match "$(head -n1 <<<"$OUT")" "^NAME +AGE +READY +STATUS"
assert_match "$(tail -n1 <<<"$OUT")" "^app +[0-9a-z]+ +True +Applied revision: v1@sha256:aa"
kc_ok get ocirepositories.v1beta2.source.toolkit.fluxcd.io minimal -o json
assert_eq source.toolkit.fluxcd.io/v1beta2 "$(jq -r .apiVersion <<<"$OUT")" "served as v1beta2"
kc_ok get ocirepo -A
assert_match "$(head -n1 <<<"$OUT")" "^NAMESPACE +NAME +URL +READY +STATUS +AGE"

it "berth's kustomize subset builds deploy/ into the same objects as kubectl's kustomize"
start_registry plain
berth_ok push artifact "oci://$REG/berth-deploy:v1" --path="$DEPLOY" --source=deploy \
    --revision="v1@sha1:1111111111111111111111111111111111111111"
mkdir -p "$T/cfg"
cat >"$T/cfg/config.yaml" <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: berth-deploy, namespace: flux-system}
spec: {url: "oci://$REG/berth-deploy", interval: 10m, insecure: true, ref: {tag: v1}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: berth-deploy, namespace: flux-system}
spec:
  interval: 10m
  path: ./
  prune: true
  sourceRef: {kind: OCIRepository, name: berth-deploy}
EOF
bt run --once --config="$T/cfg" --state-dir="$T/state" --target="dir:$T/target"
[ "$RC" = 0 ] || fail "berth run --once failed (rc=$RC): $ERR"
assert_eq "$want_ids" "$($OBJS ids "$T/target")" "object set built by berth"
$OBJS canon "$T/kubectl-kustomize.yaml" >"$T/want.jsonl"
$OBJS canon "$T/target" >"$T/got.jsonl"
if ! cmp -s "$T/want.jsonl" "$T/got.jsonl"; then
    diff <(jq -S . "$T/want.jsonl") <(jq -S . "$T/got.jsonl") | head -n 40 >&2 || true
    fail "berth's build of deploy/ differs from kubectl kustomize"
fi
_IT_CHECKS=$((_IT_CHECKS + 1))

it "the Containerfile's runtime stage installs exactly the libraries berth links, nothing else"
if ! command -v objdump >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    log "objdump or dpkg missing: runtime package check not run"
else
    runtime=$($OBJS runtime-packages "$DEPLOY/Containerfile") || fail "no apt-get install in the last stage"
    needed=ca-certificates
    for lib in $(objdump -p "$BERTH" | awk '/NEEDED/ {print $2}'); do
        pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -n1 | cut -d: -f1) || true
        [ -n "$pkg" ] || fail "no Debian package provides $lib (linked by $BERTH)"
        # libc6 is in every Debian image; sanitizer runtimes come only with ASan/UBSan builds
        case $pkg in libc6 | libgcc-s1 | libasan* | libubsan* | libstdc++6) continue ;; esac
        needed="$needed
$pkg"
    done
    assert_eq "$(sort -u <<<"$needed")" "$runtime" "runtime packages of deploy/Containerfile vs libraries of $BERTH"
fi

finish
