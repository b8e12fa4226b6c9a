#!/bin/bash
# test_kubeapi.sh: the Kubernetes API test server (testdata/kubeapi) checked with a real client,
# Debian's kubectl 1.20 (scripts/get-kubectl.sh), so the server berth's Kubernetes target is
# tested against answers like a real kube-apiserver. curl covers what kubectl 1.20 cannot do
# (watch resume, bookmarks, 410, the status subresource, raw Status bodies, control endpoints).
# Scenarios: discovery and short names; CRUD of a namespace, configmap and deployment; server-side
# apply conflicts between two field managers and --force-conflicts; get -o json shape; the
# simulated rollout (kubectl wait succeeds, and fails for a Deployment told to fail); a CRD whose
# CR can be created only once it is Established; kubectl get --watch; dry-run=server; deletion
# held by a finalizer; immutable fields; TLS with a bearer token and a client certificate.
# The server's own unit checks (testdata/kubeapi/selftest.py) run first.

# get-kubectl.sh caches kubectl under the real $HOME; lib.sh replaces HOME with a temp dir.
KUBECTL_CACHE=${BERTH_KUBECTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubectl}
source "$(dirname "$0")/lib.sh"
require_tools curl jq setsid python3 openssl timeout

KUBEAPI=$TESTDATA/kubeapi/server.py
if [ -n "${KUBECTL:-}" ]; then
    :
elif ! KUBECTL=$(bash "$BERTH_SRC/scripts/get-kubectl.sh" "$KUBECTL_CACHE" 2>"$T/get-kubectl.err"); then
    skip "Debian's kubectl is not available: $(tail -n 3 "$T/get-kubectl.err" | tr '\n' ' ')"
fi
grep -q 'GitVersion:"v1.20' <<<"$("$KUBECTL" version --client 2>/dev/null)" ||
    log "note: $KUBECTL is not kubectl 1.20 (the version this test was written against)"

# ------------------------------------------------------------------------------- helpers
# start_kubeapi NAME ARGS...: start the server; sets KAPI (base URL), KAPI_LOG (request log).
start_kubeapi() {
    local name=$1
    shift
    local d=$T/$name
    mkdir -p "$d"
    KAPI_LOG=$d/requests.log
    spawn "$name" "$d/server.log" "$PYTHON" "$KUBEAPI" --port 0 --port-file "$d/port" --log "$KAPI_LOG" "$@"
    local pid=$SPAWNED
    wait_until "$name" "$pid" "$d/server.log" test -s "$d/port"
    local scheme=http
    case " $* " in *" --tls-cert "*) scheme=https ;; esac
    KAPI=$scheme://127.0.0.1:$(cat "$d/port")
    wait_until "$name" "$pid" "$d/server.log" _http_answers "$KAPI/healthz" -k
}

# write_kubeconfig FILE SERVER [CLUSTER_EXTRA [USER_EXTRA]]: a kubeconfig as kubectl reads it.
write_kubeconfig() {
    local user_block=${4:-}
    [ -n "$user_block" ] || user_block='    {}'
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $2
${3:-}
users:
- name: test
  user:
$user_block
contexts:
- name: test
  context: {cluster: test, user: test, namespace: default}
current-context: test
EOF
}

# kc ARGS...: kubectl with the current kubeconfig; sets OUT, ERR, RC; never fails by itself.
kc() {
    LAST_CMD="kubectl $*"
    RC=0
    timeout -k 2 30 "$KUBECTL" --kubeconfig "$KCFG" "$@" >"$T/.out" 2>"$T/.err" </dev/null || RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
}

kc_ok() {
    kc "$@"
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" = 0 ] || fail "kubectl $1 $2 failed (rc=$RC)"
}

# kc_fails SUBSTRING ARGS...: kubectl must fail and say SUBSTRING (case-insensitive).
kc_fails() {
    local needle=$1
    shift
    kc "$@"
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" != 0 ] || fail "expected kubectl $1 to fail, it succeeded"
    grep -qiF -- "$needle" <<<"$OUT"$'\n'"$ERR" || fail "kubectl's error does not mention '$needle'"
}

# call METHOD PATH [CURL_ARGS...]: a raw API request; sets OUT (body) and CODE.
call() {
    local m=$1 p=$2
    shift 2
    LAST_CMD="curl -X $m $p"
    CODE=$(curl -sS -o "$T/.body" -w '%{http_code}' --max-time 10 -X "$m" "${CALL_ARGS[@]}" "$@" "$KAPI$p") ||
        fail "curl $m $p failed"
    OUT=$(cat "$T/.body")
    ERR=""
}
CALL_ARGS=()

apply_json() { # PATH MANAGER JSON [EXTRA_QUERY]: server-side apply with curl
    call PATCH "$1?fieldManager=$2${4:+&$4}" -H 'Content-Type: application/apply-patch+yaml' --data-binary "$3"
}

jqo() { jq -r "$1" <<<"$OUT"; } # jqo FILTER: a field of the last OUT

# ------------------------------------------------------------------------------- unit checks
it "the server's own checks (apply, patches, selectors, schemas, watch history)"
RC=0
"$PYTHON" "$TESTDATA/kubeapi/selftest.py" >"$T/selftest.log" 2>&1 || RC=$?
_IT_CHECKS=$((_IT_CHECKS + 1))
[ "$RC" = 0 ] || {
    cat "$T/selftest.log" >&2
    fail "testdata/kubeapi/selftest.py failed"
}

it "the apply model agrees with structured-merge-diff, kube-apiserver's SSA engine (optional oracle)"
SMD=/usr/share/gocode/src/sigs.k8s.io/structured-merge-diff
if command -v go >/dev/null 2>&1 && [ -d "$SMD/merge" ]; then
    # GOPATH mode: Debian ships the library under its v4 import path's parent directory.
    mkdir -p "$T/gopath/src/sigs.k8s.io/structured-merge-diff" "$T/gopath/src/ssaoracle"
    ln -s "$SMD" "$T/gopath/src/sigs.k8s.io/structured-merge-diff/v4"
    cp "$TESTDATA/kubeapi/oracle/ssaoracle.go" "$T/gopath/src/ssaoracle/"
    RC=0
    (cd "$T/gopath/src/ssaoracle" && GO111MODULE=off GOFLAGS="" GOPATH="$T/gopath:/usr/share/gocode" \
        GOCACHE="${BERTH_BUILD:-$T}/kubeapi-gocache" timeout 300 go build -o "$T/ssaoracle" .) \
        >"$T/oracle-build.log" 2>&1 || RC=$?
    [ "$RC" = 0 ] || fail "building the structured-merge-diff oracle failed: $(tail -n 5 "$T/oracle-build.log")"
    "$T/ssaoracle" <"$TESTDATA/kubeapi/oracle/cases.json" >"$T/oracle.json" || fail "the oracle failed"
    RC=0
    OUT=$("$PYTHON" "$TESTDATA/kubeapi/oracle/check.py" "$TESTDATA/kubeapi/oracle/cases.json" "$T/oracle.json") || RC=$?
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" = 0 ] || fail "the apply model differs from structured-merge-diff:
$OUT"
    log "oracle: $(tail -n 1 <<<"$OUT")"
else
    log "NOTE: oracle not run (needs golang-go and golang-k8s-sigs-structured-merge-diff-dev)"
fi

start_kubeapi kubeapi --rollout-step-ms 100 --time-scale 0.005 --crd-establish-delay-ms 2000 \
    --watch-window 50 --bookmark-interval-ms 200
KCFG=$T/kubeconfig
write_kubeconfig "$KCFG" "$KAPI"
M=$T/manifests
mkdir -p "$M"

# ------------------------------------------------------------------------------- discovery
it "kubectl version and api-resources read the server's discovery (short names, scope, kinds)"
kc_ok version
assert_contains "$OUT" 'Server Version: version.Info{Major:"1", Minor:"30"' "kubectl version"
kc_ok api-resources
assert_match "$OUT" '^configmaps +cm +v1 +true +ConfigMap$' "api-resources"
assert_match "$OUT" '^deployments +deploy +apps/v1 +true +Deployment$' "api-resources"
assert_match "$OUT" '^namespaces +ns +v1 +false +Namespace$' "api-resources"
assert_match "$OUT" '^customresourcedefinitions +crd,crds +apiextensions.k8s.io/v1 +false +CustomResourceDefinition$' "api-resources"
assert_match "$OUT" '^clusterroles +rbac.authorization.k8s.io/v1 +false +ClusterRole$' "api-resources"
assert_match "$OUT" '^leases +coordination.k8s.io/v1 +true +Lease$' "api-resources"
kc_ok get ns
assert_match "$OUT" '^default +Active' "kubectl get ns"
call GET /apis/apps/v1
assert_eq 200 "$CODE" "GET /apis/apps/v1"
assert_eq '["get","patch","update"]' "$(jqo '.resources[] | select(.name=="deployments/status") | .verbs' | jq -c .)" \
    "verbs of deployments/status"
call GET /apis/nothing.example.com/v1
assert_eq 404 "$CODE" "an unknown group version"
assert_eq NotFound "$(jqo .reason)" "reason of an unknown group version"

# ------------------------------------------------------------------------------- CRUD
it "create, get, list and delete a namespace, a configmap and a deployment (short names work)"
cat >"$M/app.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: app, labels: {tier: web}}
data: {color: blue}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app, labels: {tier: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: "nginx:1.25", ports: [{containerPort: 80}]}
EOF
kc_ok create --validate=false -f "$M/app.yaml"
assert_contains "$OUT" "namespace/app created" "kubectl create"
assert_contains "$OUT" "deployment.apps/web created" "kubectl create"
kc_ok -n app get cm
assert_match "$OUT" '^settings +1 +[0-9]+s$' "kubectl get cm (DATA column from the server's table)"
kc_ok -n app get deploy web
assert_match "$OUT" '^web +[0-2]/2 ' "kubectl get deploy"
kc_ok get cm -A -l tier=web
assert_match "$OUT" '^app +settings ' "list across namespaces with a label selector"
kc_ok -n app get cm -l tier=db
assert_contains "$ERR" "No resources found" "a selector nothing matches"
kc_fails "AlreadyExists" -n app create cm settings
kc_fails 'configmaps "nope" not found' -n app get cm nope

it "get -o json is shaped like a real server's object"
kc_ok -n app get deploy web -o json
assert_eq "apps/v1 Deployment web app" "$(jqo '[.apiVersion,.kind,.metadata.name,.metadata.namespace] | join(" ")')" "identity"
assert_match "$(jqo .metadata.uid)" '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' "uid"
assert_match "$(jqo .metadata.resourceVersion)" '^[0-9]+$' "resourceVersion"
assert_match "$(jqo .metadata.creationTimestamp)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "creationTimestamp"
assert_eq 1 "$(jqo .metadata.generation)" "generation of a new deployment"
assert_eq "kubectl-create Update" "$(jqo '.metadata.managedFields[0] | "\(.manager) \(.operation)"')" "managedFields[0]"
assert_eq "{}" "$(jqo '.metadata.managedFields[0].fieldsV1["f:spec"]["f:replicas"]' | jq -c .)" "owned field spec.replicas"
assert_eq TCP "$(jqo '.spec.template.spec.containers[0].ports[0].protocol')" "defaulted port protocol"
assert_eq 600 "$(jqo .spec.progressDeadlineSeconds)" "defaulted progressDeadlineSeconds"
kc_ok -n app get cm settings -o json
assert_eq null "$(jqo .metadata.generation)" "a configmap carries no generation"
call GET /api/v1/namespaces/app/configmaps
assert_eq "ConfigMapList v1" "$(jqo '"\(.kind) \(.apiVersion)"')" "list kind"
assert_eq "null" "$(jqo '.items[0].kind')" "items of a built-in list carry no kind"
assert_match "$(jqo .metadata.resourceVersion)" '^[0-9]+$' "list resourceVersion"

it "delete a configmap: gone (404 NotFound Status with details)"
kc_ok -n app delete cm settings
call GET /api/v1/namespaces/app/configmaps/settings
assert_eq 404 "$CODE" "GET after delete"
assert_eq 'Status Failure NotFound 404 settings configmaps' \
    "$(jqo '"\(.kind) \(.status) \(.reason) \(.code) \(.details.name) \(.details.kind)"')" "404 Status"
assert_eq 'configmaps "settings" not found' "$(jqo .message)" "404 message"

# ------------------------------------------------------------------------------- server-side apply
it "server-side apply: a second manager's change conflicts; --force-conflicts takes the field"
cat >"$M/ssa-a.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa, namespace: app, labels: {owner: a}}
data: {k: one, keep: "yes"}
EOF
cat >"$M/ssa-b.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa, namespace: app}
data: {k: two}
EOF
kc_ok apply --server-side --field-manager=a -f "$M/ssa-a.yaml"
assert_contains "$OUT" "configmap/ssa serverside-applied" "apply by a"
kc_fails "conflict" apply --server-side --field-manager=b -f "$M/ssa-b.yaml"
assert_contains "$ERR" 'conflict with "a": .data.k' "kubectl's conflict message"
grep -q '"fieldManager": "b", "force": "false"' "$KAPI_LOG" || fail "the request log lacks b's apply (force=false)"
_IT_CHECKS=$((_IT_CHECKS + 1))
apply_json /api/v1/namespaces/app/configmaps/ssa b '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa"},"data":{"k":"two"}}'
assert_eq 409 "$CODE" "raw conflicting apply"
assert_eq 'Conflict FieldManagerConflict .data.k' "$(jqo '"\(.reason) \(.details.causes[0].reason) \(.details.causes[0].field)"')" "409 Status"
kc_ok apply --server-side --field-manager=b --force-conflicts -f "$M/ssa-b.yaml"
kc_ok -n app get cm ssa -o json
assert_eq two "$(jqo .data.k)" "value after the forced apply"
assert_eq yes "$(jqo .data.keep)" "a's other field is kept"
assert_eq '["f:keep"]' "$(jqo '.metadata.managedFields[] | select(.manager=="a") | .fieldsV1["f:data"] | keys' | jq -c .)" \
    "a lost .data.k"
assert_eq '["f:k"]' "$(jqo '.metadata.managedFields[] | select(.manager=="b") | .fieldsV1["f:data"] | keys' | jq -c .)" \
    "b owns .data.k"

it "server-side apply: fields a manager stops applying are removed; a no-op apply changes nothing"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: app}\ndata: {extra: "1"}\n' >"$M/ssa-a2.yaml"
kc_ok apply --server-side --field-manager=a -f "$M/ssa-a2.yaml"
kc_ok -n app get cm ssa -o json
assert_eq '{"extra":"1","k":"two"}' "$(jqo .data | jq -c -S .)" "data after a dropped keep"
assert_eq null "$(jqo .metadata.labels)" "labels after a dropped its label"
rv=$(jqo .metadata.resourceVersion)
kc_ok apply --server-side --field-manager=a -f "$M/ssa-a2.yaml"
kc_ok -n app get cm ssa -o json
assert_eq "$rv" "$(jqo .metadata.resourceVersion)" "resourceVersion after a no-op apply"

it "dry-run: kubectl --dry-run=server and dryRun=All store nothing; a dry-run create has no resourceVersion"
kc_ok -n app create cm dry --from-literal=a=1 --dry-run=server -o json
assert_eq dry "$(jqo .metadata.name)" "dry-run create answer"
assert_eq "" "$(jqo .metadata.resourceVersion)" "resourceVersion of a dry-run create"
kc_fails 'configmaps "dry" not found' -n app get cm dry
apply_json /api/v1/namespaces/app/configmaps/ssa a '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa"},"data":{"extra":"2"}}' dryRun=All
assert_eq "200 2 $rv" "$CODE $(jqo .data.extra) $(jqo .metadata.resourceVersion)" "dry-run apply answer"
kc_ok -n app get cm ssa -o jsonpath='{.data.extra}'
assert_eq 1 "$OUT" "value after the dry-run apply"
call DELETE '/api/v1/namespaces/app/configmaps/ssa?dryRun=All'
assert_eq 200 "$CODE" "dry-run delete"
kc_ok -n app get cm ssa

# ------------------------------------------------------------------------------- generation, status
it "generation moves on spec changes only; status writes go through /status only"
kc_ok -n app label deploy web color=red
kc_ok -n app get deploy web -o jsonpath='{.metadata.generation}'
assert_eq 1 "$OUT" "generation after a label change"
kc_ok -n app patch deploy web -p '{"spec":{"revisionHistoryLimit":5}}'
kc_ok -n app get deploy web -o jsonpath='{.metadata.generation}'
assert_eq 2 "$OUT" "generation after a spec change"
kc_ok -n app patch deploy web --type=merge -p '{"status":{"replicas":42}}'
assert_contains "$OUT" "(no change)" "a status patch on the main resource"
call PATCH /apis/apps/v1/namespaces/app/deployments/web/status -H 'Content-Type: application/merge-patch+json' \
    --data '{"spec":{"replicas":9},"status":{"collisionCount":7}}'
assert_eq "200 7 2 2" "$CODE $(jqo .status.collisionCount) $(jqo .spec.replicas) $(jqo .metadata.generation)" \
    "/status changes status only"
assert_eq status "$(jqo '.metadata.managedFields[] | select(.manager=="curl") | .subresource')" "manager of the /status write"

# ------------------------------------------------------------------------------- rollout
it "rollout: kubectl wait --for=condition=Available succeeds once the simulated rollout is done"
kc_ok -n app wait --for=condition=Available deploy/web --timeout=10s
kc_ok -n app get deploy web -o json
assert_eq "2 2 2 2" "$(jqo '"\(.status.replicas) \(.status.updatedReplicas) \(.status.readyReplicas) \(.status.availableReplicas)"')" \
    "replica counts"
assert_eq "$(jqo .metadata.generation)" "$(jqo .status.observedGeneration)" "observedGeneration"
assert_eq NewReplicaSetAvailable "$(jqo '.status.conditions[] | select(.type=="Progressing") | .reason')" "Progressing reason"

it "rollout: a Deployment annotated fail-rollout never becomes Available (ProgressDeadlineExceeded)"
cat >"$M/bad.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
  namespace: app
  annotations: {kubeapi.berth.dev/fail-rollout: "true"}
spec:
  progressDeadlineSeconds: 300
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers: [{name: app, image: "nginx:1.25"}]
EOF
kc_ok apply --server-side --field-manager=a -f "$M/bad.yaml"
kc_fails "timed out" -n app wait --for=condition=Available deploy/bad --timeout=2s
progress_reason() { kc -n app get deploy bad -o 'jsonpath={.status.conditions[?(@.type=="Progressing")].reason}' && [ "$OUT" = ProgressDeadlineExceeded ]; }
wait_until kubeapi "${_IT_PIDS[0]}" "$T/kubeapi/server.log" progress_reason
kc_ok -n app get deploy bad -o json
assert_eq "False False 0" "$(jqo '[(.status.conditions[] | select(.type=="Available") | .status), (.status.conditions[] | select(.type=="Progressing") | .status), (.status.readyReplicas // 0)] | join(" ")')" \
    "conditions of the failed rollout"

it "scale subresource: kubectl scale changes spec.replicas as manager kubectl (subresource scale)"
kc_ok -n app scale deploy web --replicas=3
kc_ok -n app get deploy web -o json
assert_eq "3 kubectl" "$(jqo .spec.replicas) $(jqo '.metadata.managedFields[] | select(.subresource=="scale") | .manager')" \
    "replicas and the scale manager"

# ------------------------------------------------------------------------------- immutable fields
it "immutable fields: a changed Deployment selector is 422 Invalid, shown by kubectl"
cat >"$M/web2.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  selector: {matchLabels: {app: web2}}
  template:
    metadata: {labels: {app: web2}}
    spec:
      containers: [{name: app, image: "nginx:1.25"}]
EOF
kc_fails "field is immutable" apply --server-side --force-conflicts --field-manager=a -f "$M/web2.yaml"
apply_json /apis/apps/v1/namespaces/app/deployments/web a \
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"app","image":"nginx"}]}}}}' force=true
assert_eq "422 Invalid spec.selector Deployment apps" \
    "$CODE $(jqo '"\(.reason) \(.details.causes[0].field) \(.details.kind) \(.details.group)"')" "422 Status"
assert_contains "$(jqo .message)" 'Deployment.apps "web" is invalid: spec.selector: Invalid value' "422 message"

# ------------------------------------------------------------------------------- CRDs
it "a CRD: its kind is served only once Established (after the configured delay); then a CR works"
cat >"$M/crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, default: blue}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
EOF
cat >"$M/cr.yaml" <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: app}
spec: {size: 3}
EOF
kc_ok apply --server-side --field-manager=a -f "$M/crd.yaml"
call GET /apis/example.com/v1
assert_eq 404 "$CODE" "discovery of the CRD's group before it is Established"
call POST /apis/example.com/v1/namespaces/app/widgets -H 'Content-Type: application/json' \
    --data '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"early"},"spec":{"size":1}}'
assert_eq 404 "$CODE" "creating a CR before the CRD is Established"
kc_ok wait --for=condition=Established crd/widgets.example.com --timeout=10s
kc_ok get crd widgets.example.com -o json
assert_eq "True True" "$(jqo '[(.status.conditions[] | select(.type=="NamesAccepted") | .status), (.status.conditions[] | select(.type=="Established") | .status)] | join(" ")')" \
    "CRD conditions"
kc_ok apply --server-side --field-manager=a -f "$M/cr.yaml"
assert_contains "$OUT" "widget.example.com/w1 serverside-applied" "CR apply"
kc_ok -n app get wg
assert_match "$OUT" '^w1 +3 +[0-9]+s$' "kubectl get wg (printer column, short name)"
kc_ok -n app get widget w1 -o json
assert_eq "blue 1" "$(jqo '"\(.spec.color) \(.metadata.generation)"')" "schema default and generation"
printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w0, namespace: app}\nspec: {size: 0}\n' >"$M/bad-cr.yaml"
kc_fails "spec.size in body should be greater than or equal to 1" create -f "$M/bad-cr.yaml"
call PATCH /apis/example.com/v1/namespaces/app/widgets/w1/status -H 'Content-Type: application/merge-patch+json' \
    --data '{"status":{"phase":"Ready"}}'
assert_eq "200 Ready 1" "$CODE $(jqo .status.phase) $(jqo .metadata.generation)" "CR status subresource"

# ------------------------------------------------------------------------------- watch
it "kubectl get --watch receives ADDED, MODIFIED and DELETED"
timeout 20 "$KUBECTL" --kubeconfig "$KCFG" -n app get cm --watch -l watched=yes >"$T/watch.out" 2>"$T/watch.err" &
watcher=$!
watching() { grep -q '"labelSelector": "watched=yes".*"watch": "true"' "$KAPI_LOG"; }
wait_until kubeapi "${_IT_PIDS[0]}" "$T/kubeapi/server.log" watching
kc_ok -n app create cm w --from-literal=a=1
kc_ok -n app label cm w watched=yes
kc_ok -n app patch cm w -p '{"data":{"a":"2"}}'
kc_ok -n app delete cm w
three_rows() { [ "$(grep -c '^w ' "$T/watch.out")" -ge 3 ]; }
wait_until "kubectl get --watch" "$watcher" "$T/watch.err" three_rows
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true
assert_eq 3 "$(grep -c '^w ' "$T/watch.out")" "rows kubectl printed (label added, patched, deleted): $(cat "$T/watch.out")"

it "watch over HTTP: resume from a resourceVersion, bookmarks, and 410 once the history is gone"
call GET /api/v1/namespaces/app/configmaps
rv=$(jqo .metadata.resourceVersion)
kc_ok -n app create cm r1 --from-literal=a=1
kc_ok -n app create cm r2 --from-literal=a=1
curl -sN --max-time 1 "$KAPI/api/v1/namespaces/app/configmaps?watch=1&resourceVersion=$rv&allowWatchBookmarks=true" \
    >"$T/w.json" || true
assert_eq "ADDED r1|ADDED r2" "$(jq -r 'select(.type!="BOOKMARK") | "\(.type) \(.object.metadata.name)"' "$T/w.json" | paste -sd'|')" \
    "events after resourceVersion $rv"
assert_match "$(jq -r 'select(.type=="BOOKMARK") | .object.metadata.resourceVersion' "$T/w.json" | tail -n1)" '^[0-9]+$' \
    "a bookmark's resourceVersion"
call POST /_kubeapi/compact
curl -sN --max-time 1 "$KAPI/api/v1/namespaces/app/configmaps?watch=1&resourceVersion=$rv" >"$T/w410.json" || true
assert_eq "ERROR 410 Expired" "$(jq -r '"\(.type) \(.object.code) \(.object.reason)"' "$T/w410.json")" "watch from a compacted resourceVersion"
assert_contains "$(jq -r .object.message "$T/w410.json")" "too old resource version: $rv" "410 message"
call POST /_kubeapi/settings -H 'Content-Type: application/json' --data '{"watchExpiredMode":"http"}'
call GET "/api/v1/namespaces/app/configmaps?watch=1&resourceVersion=$rv"
assert_eq "410 Expired" "$CODE $(jqo .reason)" "410 as an HTTP status (watchExpiredMode http)"

# ------------------------------------------------------------------------------- deletion
it "delete of an object with a finalizer leaves it Terminating until the finalizer is removed"
kc_ok -n app create cm held --from-literal=a=1
kc_ok -n app patch cm held --type=merge -p '{"metadata":{"finalizers":["example.com/hold"]}}'
kc_ok -n app delete cm held --wait=false
kc_ok -n app get cm held -o json
assert_match "$(jqo .metadata.deletionTimestamp)" '^[0-9]{4}-' "deletionTimestamp"
assert_eq '["example.com/hold"]' "$(jqo .metadata.finalizers | jq -c .)" "finalizers while Terminating"
kc_ok -n app patch cm held --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
kc_fails 'configmaps "held" not found' -n app get cm held

it "owner references: deleting a Deployment in the background removes its dependents"
kc_ok -n app get deploy web -o jsonpath='{.metadata.uid}'
uid=$OUT
call POST /api/v1/namespaces/app/configmaps -H 'Content-Type: application/json' --data \
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"child\",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"web\",\"uid\":\"$uid\"}]}}"
assert_eq 201 "$CODE" "create a dependent"
kc_ok -n app delete deploy web
child_gone() {
    kc -n app get cm child
    [ "$RC" != 0 ]
}
wait_until kubeapi "${_IT_PIDS[0]}" "$T/kubeapi/server.log" child_gone

# ------------------------------------------------------------------------------- TLS and auth
it "TLS with a bearer token and with a client certificate; a wrong token is 401"
make_pki
start_kubeapi kubeapi-tls --tls-cert "$SERVER_CERT" --tls-key "$SERVER_KEY" --client-ca "$CA_FILE" --token t0ken
KCFG=$T/kubeconfig-tls
write_kubeconfig "$KCFG" "$KAPI" "    certificate-authority: $CA_FILE" "    token: t0ken"
kc_ok get ns default
assert_match "$OUT" '^default +Active' "kubectl over TLS with a token"
write_kubeconfig "$KCFG" "$KAPI" "    certificate-authority: $CA_FILE" "    token: wrong"
kc_fails "Unauthorized" get ns
write_kubeconfig "$KCFG" "$KAPI" "    certificate-authority: $CA_FILE" \
    "    client-certificate: $CLIENT_CERT
    client-key: $CLIENT_KEY"
kc_ok get ns kube-system
CALL_ARGS=(--cacert "$CA_FILE")
call GET /api/v1/namespaces
assert_eq "401 Unauthorized" "$CODE $(jqo .reason)" "anonymous request"
call GET /version
assert_eq 200 "$CODE" "/version is public"

it "the request log has one JSON line per request (method, path, query, content type, status)"
# The first apply of the test (kubectl, manager a) created the configmap: 201.
line=$(grep -m1 '"contentType": "application/apply-patch+yaml"' "$T/kubeapi/requests.log") ||
    fail "no apply request in the log"
assert_eq "PATCH /api/v1/namespaces/app/configmaps/ssa a false 201" \
    "$(jq -r '"\(.method) \(.path) \(.query.fieldManager) \(.query.force) \(.status)"' <<<"$line")" "logged apply"
assert_eq 0 "$(jq -c 'select(.status == 0)' "$T/kubeapi/requests.log" | wc -l)" "requests logged without a status"

finish
