#!/bin/bash
# test_kube_target.sh: `berth run --target=kube` against the Kubernetes API test server
# (testdata/kubeapi, HTTPS with a bearer token; a CA given as certificate-authority-data) and a
# real docker-registry. Scenarios: testdata/app plus a CRD and a CR of it are applied with
# server-side apply (field manager berth, owner labels, CRD before its CR, Namespace before its
# objects); a second run writes nothing; an out-of-band edit is corrected and reported; a new
# version updates and prunes; health waits for a custom resource to become Ready and fails
# naming it; three bad inputs (no kind, no namespace, unknown kind) fail clearly and prune
# nothing; a client certificate context (--context) works too.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl

find_kubectl

make_pki
TOKEN=kube-target-it-token
mkdir -p "$T/cfg"
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE" --rollout-step-ms 50 --crd-establish-delay-ms 700
KCFG=$T/kubeconfig
cat >"$KCFG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: it
  cluster:
    server: $KAPI/
    certificate-authority-data: $(base64 -w0 "$CA_FILE")
users:
- name: token-user
  user:
    token: $TOKEN
- name: cert-user
  user:
    client-certificate: $CLIENT_CERT
    client-key: $CLIENT_KEY
contexts:
- name: it
  context: {cluster: it, user: token-user}
- name: it-cert
  context: {cluster: it, user: cert-user}
current-context: it
EOF

start_registry plain
STATE=$T/state

kget() { # GROUP RESOURCE NS NAME: the stored object (JSON) or empty; a failed read fails the test
    local i
    for i in 1 2 3; do # curl has failed once under load with "error setting certificate file"
        if curl -fsS --cacert "$CA_FILE" -o "$T/.kget" \
            "$KAPI/_kubeapi/objects?group=$1&resource=$2&namespace=$3"; then
            jq -c --arg n "$4" '[.. | objects | select(.metadata?.name? == $n)] | first // empty' "$T/.kget"
            return 0
        fi
        sleep 0.2
    done
    echo "kget: cannot read $2 from the API test server" >&2
    kill -TERM $$
}
kreq() { curl -fsS --cacert "$CA_FILE" "$KAPI/_kubeapi/requests" | jq -c ".items[]"; }
push() { berth_ok push artifact "oci://$REG/app:$1" --path="$2" --source=https://example.com/app.git \
    --revision="$1@sha1:2222222222222222222222222222222222222222"; }
write_config() { # TAG [EXTRA_KS_YAML]
    cat >"$T/cfg/config.yaml" <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: app, namespace: flux-system}
spec:
  url: oci://$REG/app
  interval: 10m
  insecure: true
  ref: {tag: $1}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: app, namespace: flux-system}
spec:
  interval: 10m
  timeout: 30s
  path: ./
  prune: true
  sourceRef: {kind: OCIRepository, name: app}
${2:-}
EOF
}
run_once() { # [ARGS]: sets RUN_ERR
    bt run --once --config="$T/cfg" --state-dir="$STATE" --target=kube --kubeconfig="$KCFG" "$@"
    RUN_ERR=$ERR
}
ks_status() { # .field of the Kustomization's status
    bt get kustomizations --state-dir="$STATE" -o json
    jq -r ".[0].status$1" <<<"$OUT"
}

# v1: the demo app, a CRD (established after a delay) and a CR of it.
APP=$T/app1
cp -r "$TESTDATA/app" "$APP"
mkdir -p "$APP/widgets"
cat >"$APP/widgets/crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
EOF
cat >"$APP/widgets/widget.yaml" <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gadget
  namespace: berth-demo
  annotations:
    kubeapi.berth.dev/no-controller: "true"
spec:
  size: 3
EOF

it "v1 is applied with server-side apply: objects, field manager, owner labels, stage order"
push v1 "$APP"
write_config v1
run_once
[ "$RC" = 0 ] || fail "run --once failed (rc=$RC): $ERR"
for spec in "core namespaces '' berth-demo" "core configmaps berth-demo web-config" \
    "apps deployments berth-demo web" "core services berth-demo web" \
    "apiextensions.k8s.io customresourcedefinitions '' widgets.example.com" \
    "example.com widgets berth-demo gadget"; do
    eval "set -- $spec"
    obj=$(kget "$1" "$2" "$3" "$4")
    [ -n "$obj" ] || fail "$2/$4 is not on the server"
    assert_eq berth "$(jq -r '[.metadata.managedFields[] | select(.operation=="Apply")][0].manager' <<<"$obj")" \
        "apply manager of $2/$4"
    assert_eq "app/flux-system" "$(jq -r '.metadata.labels["kustomize.toolkit.fluxcd.io/name"] + "/" +
        .metadata.labels["kustomize.toolkit.fluxcd.io/namespace"]' <<<"$obj")" "owner labels of $2/$4"
done
assert_eq 3 "$(jq -r .spec.size <<<"$(kget example.com widgets berth-demo gadget)")" "widget spec"
kreq >"$T/req1"
applies=$(jq -r 'select(.method=="PATCH" and .contentType=="application/apply-patch+yaml" and
    (.query.dryRun // "") == "" and .fieldManager=="berth") | .path' "$T/req1")
line_of() { grep -n -- "$1" <<<"$applies" | head -n1 | cut -d: -f1; }
[ -n "$(line_of customresourcedefinitions/widgets.example.com)" ] || fail "no CRD apply: $applies"
[ "$(line_of customresourcedefinitions/widgets)" -lt "$(line_of widgets/gadget)" ] ||
    fail "the CR was applied before its CRD: $applies"
[ "$(line_of /api/v1/namespaces/berth-demo$)" -lt "$(line_of configmaps/web-config)" ] ||
    fail "the ConfigMap was applied before its Namespace: $applies"
assert_eq 6 "$(wc -l <<<"$applies")" "apply requests"
assert_eq "True" "$(ks_status '.conditions[] | select(.type=="Ready") | .status')" "Ready"
assert_eq 6 "$(ks_status '.inventory.entries | length')" "inventory entries"
assert_contains "$RUN_ERR" 'msg="Widget/berth-demo/gadget created"'

it "a second run with nothing changed writes nothing"
curl -fsS -X DELETE --cacert "$CA_FILE" "$KAPI/_kubeapi/requests" >/dev/null
run_once
[ "$RC" = 0 ] || fail "second run failed: $ERR"
writes=$(kreq | jq -r 'select(.method!="GET" and (.query.dryRun // "") == "") | .method + " " + .path')
assert_eq "" "$writes" "writes in a no-change run"
kreq >"$T/req2"
# per object one GET and one dry-run apply; discovery is one GET per group-version used
assert_eq 12 "$(jq -r 'select((.path | test("^/apis?/[^/]+(/v1)?$")) | not) | .method' "$T/req2" | wc -l)" \
    "object requests in a no-change run of 6 objects"
log "no-change run: $(wc -l <"$T/req2") requests ($(jq -r 'select(.path | test("^/apis?/[^/]+(/v1)?$")) | .path' "$T/req2" | wc -l) discovery)"
assert_not_contains "$RUN_ERR" "configured"

it "an object edited out of band is corrected and reported"
if [ -n "$KUBECTL" ]; then
    "$KUBECTL" --kubeconfig "$KCFG" -n berth-demo patch configmap web-config --type merge \
        -p '{"data":{"LOG_LEVEL":"debug"},"metadata":{"labels":{"edited":"by-hand"}}}' >/dev/null
    editor=kubectl-patch
else
    log "kubectl not available: editing with curl as field manager kubectl-edit"
    curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -X PATCH \
        -H 'Content-Type: application/merge-patch+json' \
        "$KAPI/api/v1/namespaces/berth-demo/configmaps/web-config?fieldManager=kubectl-edit" \
        -d '{"data":{"LOG_LEVEL":"debug"},"metadata":{"labels":{"edited":"by-hand"}}}' >/dev/null
    editor=kubectl-edit
fi
cm=$(kget core configmaps berth-demo web-config)
assert_eq debug "$(jq -r .data.LOG_LEVEL <<<"$cm")" "edited value"
assert_contains "$(jq -r '.metadata.managedFields[].manager' <<<"$cm")" "$editor"
run_once
[ "$RC" = 0 ] || fail "drift run failed: $ERR"
cm=$(kget core configmaps berth-demo web-config)
assert_eq info "$(jq -r .data.LOG_LEVEL <<<"$cm")" "value after correction"
assert_eq null "$(jq -r '.metadata.labels.edited' <<<"$cm")" "label added by hand (taken over, removed)"
assert_not_contains "$(jq -r '.metadata.managedFields[].manager' <<<"$cm")" "$editor"
assert_contains "$RUN_ERR" 'event=drift'
assert_contains "$RUN_ERR" 'msg="ConfigMap/berth-demo/web-config configured"'
assert_eq 1 "$(ks_status .lastDriftCorrection.count)" "drift count in status"
assert_eq "ConfigMap/berth-demo/web-config modified" \
    "$(ks_status '.lastDriftCorrection.objects[] | .subject + " " + .drift')" "drifted object in status"
assert_contains "$(ks_status '.conditions[] | select(.type=="Ready") | .message')" "drift corrected at"

it "v2 (ConfigMap changed, Service removed): the change is applied and the Service pruned"
cp -r "$APP" "$T/app2"
rm "$T/app2/workloads/web/service.yaml"
sed -i "s/hello from berth/changed-in-v2/" "$T/app2/config/configmap.yaml"
push v2 "$T/app2"
write_config v2
run_once
[ "$RC" = 0 ] || fail "v2 run failed: $ERR"
[ -z "$(kget core services berth-demo web)" ] || fail "the removed Service was not pruned"
assert_contains "$RUN_ERR" 'msg="Service/berth-demo/web deleted"'
assert_eq "changed-in-v2" "$(kget core configmaps berth-demo web-config | jq -r .data.GREETING)" "v2 value"
assert_eq 5 "$(ks_status '.inventory.entries | length')" "inventory entries after prune"

it "an object not carrying this Kustomization's owner labels is not pruned"
curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -X PATCH \
    -H 'Content-Type: application/merge-patch+json' \
    "$KAPI/apis/example.com/v1/namespaces/berth-demo/widgets/gadget?fieldManager=someone" \
    -d '{"metadata":{"labels":{"kustomize.toolkit.fluxcd.io/name":"other"}}}' >/dev/null
cp -r "$T/app2" "$T/app3"
rm "$T/app3/widgets/widget.yaml"
push v3 "$T/app3"
write_config v3
run_once
[ "$RC" = 0 ] || fail "v3 run failed: $ERR"
[ -n "$(kget example.com widgets berth-demo gadget)" ] || fail "a Widget owned by another Kustomization was pruned"
assert_contains "$RUN_ERR" 'msg="Widget/berth-demo/gadget skipped"'

it "health: the run waits for a custom resource to become Ready"
widget_status() { # READY
    curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -X PATCH \
        -H 'Content-Type: application/merge-patch+json' \
        "$KAPI/apis/example.com/v1/namespaces/berth-demo/widgets/$2/status" \
        -d "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$1\",\"reason\":\"Test\",\"message\":\"set by the test\"}]}}" >/dev/null
}
cp -r "$T/app3" "$T/app4"
sed 's/gadget/sprocket/' "$APP/widgets/widget.yaml" >"$T/app4/widgets/widget.yaml"
push v4 "$T/app4"
write_config v4 "  healthChecks:
  - {apiVersion: example.com/v1, kind: Widget, name: sprocket, namespace: berth-demo}"
( # the widget's "controller": Ready=False once it exists, Ready=True two seconds later
    for _ in $(seq 1 300); do
        [ -n "$(kget example.com widgets berth-demo sprocket)" ] && break
        sleep 0.05
    done
    widget_status False sprocket
    sleep 2
    widget_status True sprocket
) &
helper=$!
t0=$(_now_us)
run_once
wait "$helper"
[ "$RC" = 0 ] || fail "health run failed: $ERR"
[ $((($(_now_us) - t0) / 1000)) -ge 2000 ] || fail "the run did not wait for the Widget to be Ready"
assert_eq "True" "$(ks_status '.conditions[] | select(.type=="Ready") | .status')" "Ready after health"

it "health: a resource that never gets Ready fails HealthCheckFailed naming it"
widget_status False sprocket
sed -i 's/size: 3/size: 4/' "$T/app4/widgets/widget.yaml"
push v5 "$T/app4"
write_config v5 "  healthChecks:
  - {apiVersion: example.com/v1, kind: Widget, name: sprocket, namespace: berth-demo}"
run_once
assert_eq 1 "$RC" "exit status of a failed health check"
assert_eq "HealthCheckFailed" "$(ks_status '.conditions[] | select(.type=="Ready") | .reason')" "reason"
assert_contains "$(ks_status '.conditions[] | select(.type=="Ready") | .message')" \
    "timeout waiting for: [Widget/berth-demo/sprocket status: 'InProgress'"
widget_status True sprocket

it "health: wait: true waits for the Deployment rollout"
write_config v5 "  wait: true"
curl -fsS --cacert "$CA_FILE" -X POST "$KAPI/_kubeapi/settings" -d '{"rolloutStepMs": 300}' >/dev/null
sed -i 's/replicas: 2/replicas: 3/' "$T/app4/workloads/web/deployment.yaml"
push v6 "$T/app4"
write_config v6 "  wait: true"
run_once
[ "$RC" = 0 ] || fail "wait run failed: $ERR"
assert_eq 3 "$(kget apps deployments berth-demo web | jq -r .status.readyReplicas)" "ready replicas when the run ended"
assert_eq "ReconciliationSucceeded" "$(ks_status '.conditions[] | select(.type=="Ready") | .reason')" "reason after the rollout"

it "health: a Job with ttlSecondsAfterFinished that is gone counts as done"
cp -r "$T/app4" "$T/app7"
cat >"$T/app7/job.yaml" <<'EOF2'
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: berth-demo
  annotations: {kubeapi.berth.dev/no-controller: "true"}
spec:
  ttlSecondsAfterFinished: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox}]
EOF2
push v7 "$T/app7"
write_config v7 "  wait: true"
( # the TTL controller: the Job is deleted a second after it appears (it never got a status)
    for _ in $(seq 1 300); do
        [ -n "$(kget batch jobs berth-demo migrate)" ] && break
        sleep 0.05
    done
    sleep 1
    curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -X DELETE \
        "$KAPI/apis/batch/v1/namespaces/berth-demo/jobs/migrate" >/dev/null
) &
helper=$!
t0=$(_now_us)
run_once
wait "$helper"
[ "$RC" = 0 ] || fail "the run with a deleted TTL Job failed: $RUN_ERR"
[ $((($(_now_us) - t0) / 1000)) -ge 1000 ] || fail "the run did not wait for the Job"
[ -z "$(kget batch jobs berth-demo migrate)" ] || fail "the Job is still there"
assert_eq "ReconciliationSucceeded" "$(ks_status '.conditions[] | select(.type=="Ready") | .reason')" "reason with the TTL Job gone"

it "bad inputs fail clearly and prune nothing"
bad() { # TAG FILE-CONTENT EXPECTED-MESSAGE
    mkdir -p "$T/bad-$1"
    cp "$TESTDATA/app/namespace.yaml" "$T/bad-$1/"
    printf '%s\n' "$2" >"$T/bad-$1/bad.yaml"
    push "$1" "$T/bad-$1"
    write_config "$1"
    run_once
    assert_eq 1 "$RC" "exit status for $1"
    assert_contains "$(ks_status '.conditions[] | select(.type=="Ready") | .message')" "$3"
    [ -n "$(kget apps deployments berth-demo web)" ] || fail "$1: the Deployment was pruned"
    [ -n "$(kget core configmaps berth-demo web-config)" ] || fail "$1: the ConfigMap was pruned"
    assert_not_contains "$RUN_ERR" "deleted"
}
bad nokind $'apiVersion: v1\nmetadata: {name: x, namespace: berth-demo}' "bad.yaml"
assert_contains "$(ks_status '.conditions[] | select(.type=="Ready") | .message')" "has no kind"
bad nons $'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lost}\ndata: {a: b}' \
    "ConfigMap/lost namespace not specified"
bad unknown $'apiVersion: example.org/v1\nkind: Gizmo\nmetadata: {name: g, namespace: berth-demo}' \
    "Gizmo/berth-demo/g: no matches for kind \"Gizmo\" in version \"example.org/v1\""

kfault() { curl -fsS --cacert "$CA_FILE" -X "$1" "$KAPI/_kubeapi/$2" ${3:+-d "$3"} >/dev/null; }

it "an immutable field fails clearly without force and recreates the object with force"
cp -r "$T/app4" "$T/app8"
sed -i 's|app.kubernetes.io/name: web|app.kubernetes.io/name: web2|' "$T/app8/workloads/web/deployment.yaml"
push v8 "$T/app8"
write_config v8
uid0=$(kget apps deployments berth-demo web | jq -r .metadata.uid)
run_once
assert_eq 1 "$RC" "exit status on an immutable selector"
msg=$(ks_status '.conditions[] | select(.type=="Ready") | .message')
assert_contains "$msg" "Deployment/berth-demo/web dry-run failed (Invalid)"
assert_contains "$msg" "field is immutable"
assert_contains "$msg" "spec.force"
assert_eq "$uid0" "$(kget apps deployments berth-demo web | jq -r .metadata.uid)" "uid without force"
write_config v8 "  force: true"
run_once
[ "$RC" = 0 ] || fail "forced run failed: $ERR"
dep=$(kget apps deployments berth-demo web)
assert_ne "$uid0" "$(jq -r .metadata.uid <<<"$dep")" "uid after a forced recreate"
assert_eq web2 "$(jq -r '.spec.selector.matchLabels["app.kubernetes.io/name"]' <<<"$dep")" "new selector"
assert_contains "$RUN_ERR" "event=recreate"

it "ssa: IfNotPresent creates once and then leaves the object alone; reconcile: disabled is skipped"
cp -r "$T/app8" "$T/app9"
sed -i 's|^  namespace: berth-demo$|  namespace: berth-demo\n  annotations: {kustomize.toolkit.fluxcd.io/ssa: IfNotPresent}|' \
    "$T/app9/config/configmap.yaml"
cat >>"$T/app9/widgets/widget.yaml" <<'EOF2'
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: hands-off
  namespace: berth-demo
  labels: {kustomize.toolkit.fluxcd.io/reconcile: disabled}
data: {a: b}
EOF2
push v9 "$T/app9"
write_config v9 "  force: true"
curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -X PATCH \
    -H 'Content-Type: application/merge-patch+json' \
    "$KAPI/api/v1/namespaces/berth-demo/configmaps/web-config?fieldManager=kubectl-edit" \
    -d '{"data":{"LOG_LEVEL":"trace"}}' >/dev/null
run_once
[ "$RC" = 0 ] || fail "IfNotPresent run failed: $ERR"
assert_eq trace "$(kget core configmaps berth-demo web-config | jq -r .data.LOG_LEVEL)" "IfNotPresent object left alone"
assert_contains "$RUN_ERR" 'msg="ConfigMap/berth-demo/web-config skipped"'
[ -z "$(kget core configmaps berth-demo hands-off)" ] || fail "a reconcile: disabled object was applied"
curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -X DELETE \
    "$KAPI/api/v1/namespaces/berth-demo/configmaps/web-config" >/dev/null
run_once
[ "$RC" = 0 ] || fail "IfNotPresent recreate run failed: $ERR"
assert_eq info "$(kget core configmaps berth-demo web-config | jq -r .data.LOG_LEVEL)" "IfNotPresent object created again"

it "a failed delete stays in the inventory and is retried"
cp -r "$T/app9" "$T/app10"
rm "$T/app10/widgets/widget.yaml"
push v10 "$T/app10"
write_config v10 "  force: true"
kfault POST faults '{"method":"DELETE","path":"widgets/sprocket","code":500,"message":"disk on fire","count":-1}'
run_once
assert_eq 1 "$RC" "exit status when a delete fails"
assert_eq PruneFailed "$(ks_status '.conditions[] | select(.type=="Ready") | .reason')" "reason"
assert_contains "$(ks_status '.conditions[] | select(.type=="Ready") | .message')" "disk on fire"
assert_contains "$(ks_status '.inventory.entries[].id')" "berth-demo_sprocket_example.com_Widget"
[ -n "$(kget example.com widgets berth-demo sprocket)" ] || fail "the Widget is gone although its delete failed"
kfault DELETE faults
run_once
[ "$RC" = 0 ] || fail "retry run failed: $ERR"
[ -z "$(kget example.com widgets berth-demo sprocket)" ] || fail "the failed delete was not retried"
assert_not_contains "$(ks_status '.inventory.entries[].id')" "sprocket"
assert_contains "$RUN_ERR" 'msg="Widget/berth-demo/sprocket deleted"'

it "serviceAccountName impersonates the service account; the server's refusal is shown"
curl -fsS -X DELETE --cacert "$CA_FILE" "$KAPI/_kubeapi/requests" >/dev/null
write_config v10 "  serviceAccountName: deployer"
run_once
[ "$RC" = 0 ] || fail "impersonated run failed: $ERR"
assert_eq "system:serviceaccount:flux-system:deployer" \
    "$(kreq | jq -r 'select(.path | startswith("/api/v1/namespaces/berth-demo")) | .impersonate' | sort -u)" \
    "Impersonate-User"
kfault POST forbid '{"user":"system:serviceaccount:flux-system:deployer","verb":"patch","resource":"deployments"}'
sed -i 's/replicas: 3/replicas: 1/; s/replicas: 2/replicas: 1/' "$T/app10/workloads/web/deployment.yaml"
push v11 "$T/app10"
write_config v11 "  serviceAccountName: deployer"
run_once
assert_eq 1 "$RC" "exit status when forbidden"
assert_contains "$(ks_status '.conditions[] | select(.type=="Ready") | .message')" \
    'deployments.apps "web" is forbidden: User "system:serviceaccount:flux-system:deployer" cannot patch'
kfault DELETE forbid

it "an exec credential plugin supplies the token"
cat >"$T/get-token" <<EOF2
#!/bin/sh
echo called >>"$T/plugin.calls"
[ "\$REGION" = eu ] || exit 3
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"$TOKEN"}}'
EOF2
chmod +x "$T/get-token"
python3 - "$KCFG" "$T/get-token" <<'EOF2'
import json, sys
p, cmd = sys.argv[1], sys.argv[2]
text = open(p).read()
text = text.replace("contexts:\n", "- name: exec-user\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: %s\n      env: [{name: REGION, value: eu}]\ncontexts:\n- name: it-exec\n  context: {cluster: it, user: exec-user}\n" % cmd, 1)
open(p, "w").write(text)
EOF2
run_once --context=it-exec
[ "$RC" = 0 ] || fail "exec plugin run failed: $ERR"
assert_eq 1 "$(wc -l <"$T/plugin.calls")" "plugin runs in one berth run (token cached)"

it "an object applied by Flux (kustomize-controller) is taken over whole"
curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -X PATCH \
    -H 'Content-Type: application/apply-patch+yaml' \
    "$KAPI/api/v1/namespaces/berth-demo/configmaps/from-flux?fieldManager=kustomize-controller&force=true" \
    -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"from-flux","namespace":"berth-demo"},"data":{"kept":"1","dropped":"2"}}' >/dev/null
cp -r "$T/app10" "$T/app13"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-flux, namespace: berth-demo}\ndata: {kept: "1"}\n' \
    >"$T/app13/config/from-flux.yaml"
push v13 "$T/app13"
write_config v13
run_once
[ "$RC" = 0 ] || fail "take-over run failed: $ERR"
cm=$(kget core configmaps berth-demo from-flux)
assert_eq '{"kept":"1"}' "$(jq -c .data <<<"$cm")" "data after the take-over"
assert_eq berth "$(jq -r '[.metadata.managedFields[].manager] | unique | join(",")' <<<"$cm")" "managers"

it "a Kustomization removed from the config has its objects deleted from the cluster"
[ -n "$(kget core configmaps berth-demo from-flux)" ] || fail "from-flux is not there before the removal"
sed -n '1,/^---$/p' "$T/cfg/config.yaml" | sed '$d' >"$T/cfg/only-source.yaml"
mv "$T/cfg/only-source.yaml" "$T/cfg/config.yaml"
run_once
[ "$RC" = 0 ] || fail "run without the Kustomization failed: $ERR"
assert_contains "$RUN_ERR" 'event=garbage-collected'
assert_contains "$RUN_ERR" 'removed from the config: 5 object(s) deleted'
for spec in "core configmaps berth-demo from-flux" "core configmaps berth-demo web-config" \
    "apps deployments berth-demo web"; do
    eval "set -- $spec"
    [ -z "$(kget "$1" "$2" "$3" "$4")" ] || fail "$2/$4 was left in the cluster after its Kustomization was removed"
done
bt get kustomizations --state-dir="$STATE" -o json
assert_eq 0 "$(jq length <<<"$OUT")" "Kustomizations listed after the removal"

it "Kustomizations applied at once on several workers (a Kubernetes client per worker)"
curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -X POST "$KAPI/api/v1/namespaces" -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"berth-demo"}}' >/dev/null
write_config v13
{
    sed -n '1,/^---$/p' "$T/cfg/config.yaml"
    for k in cfg:config wl:workloads crd:widgets; do
        cat <<EOF2
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: ${k%%:*}, namespace: flux-system}
spec:
  interval: 10m
  timeout: 30s
  path: ./${k#*:}
  prune: true
  wait: true
  sourceRef: {kind: OCIRepository, name: app}
---
EOF2
    done
} >"$T/cfg/parallel.yaml"
mv "$T/cfg/parallel.yaml" "$T/cfg/config.yaml"
run_once --workers=4
[ "$RC" = 0 ] || fail "parallel run failed: $RUN_ERR"
bt get kustomizations --state-dir="$STATE" -o json
assert_eq "cfg=True crd=True wl=True" \
    "$(jq -r '[.[] | .name + "=" + (.status.conditions[] | select(.type=="Ready") | .status)] | sort | join(" ")' <<<"$OUT")" \
    "Ready of the three Kustomizations"
for spec in "cfg core configmaps berth-demo web-config" "wl apps deployments berth-demo web" \
    "crd apiextensions.k8s.io customresourcedefinitions '' widgets.example.com"; do
    eval "set -- $spec"
    assert_eq "$1" "$(kget "$2" "$3" "$4" "$5" | jq -r '.metadata.labels["kustomize.toolkit.fluxcd.io/name"]')" \
        "owner of $3/$5"
done
sed -n '1,/^---$/p' "$T/cfg/config.yaml" | sed '$d' >"$T/cfg/only-source.yaml"
mv "$T/cfg/only-source.yaml" "$T/cfg/config.yaml"
run_once --workers=4
[ "$RC" = 0 ] || fail "run removing the three Kustomizations failed: $RUN_ERR"
[ -z "$(kget apps deployments berth-demo web)" ] || fail "the Deployment of removed Kustomization wl is left"
[ -z "$(kget core configmaps berth-demo web-config)" ] || fail "the ConfigMap of removed Kustomization cfg is left"

it "a client-certificate context (--context) and Status errors from the server"
push v12 "$T/app10"
write_config v12
run_once --context=it-cert
[ "$RC" = 0 ] || fail "client certificate run failed: $ERR"
assert_contains "$(kreq | jq -r 'select(.path=="/api/v1/namespaces/berth-demo/configmaps/web-config") | .user' | sort -u)" \
    "berth-it-client"
sed -i "s/token: $TOKEN/token: wrong-token/" "$KCFG"
run_once
assert_eq 1 "$RC" "exit status with a wrong token"
assert_contains "$(ks_status '.conditions[] | select(.type=="Ready") | .message')" "Unauthorized"
assert_fails "kubeconfig" berth run --once --config="$T/cfg" --state-dir="$STATE" --target=kube \
    --kubeconfig="$KCFG" --context=nope
assert_contains "$ERR" 'context "nope" is not defined'
finish
