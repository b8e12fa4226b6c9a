#!/bin/bash
# test_kube_remote.sh: Kustomizations that apply to a remote cluster (spec.kubeConfig.secretRef,
# issue 5) with two Kubernetes API test servers (testdata/kubeapi: "local" and "remote") and a
# real docker-registry. Directory-config mode (`berth run --target=kube`, the kubeconfig in a
# `kind: Secret` document): one Kustomization applies to the local cluster, one (wait: true,
# serviceAccountName) to the remote one through its Secret; each object is only in its server;
# health is checked on the remote one; a new revision prunes from the remote one; a Secret with
# an exec plugin is refused naming the Secret (and runs with --insecure-kubeconfig-exec); an
# unreachable remote is Ready=False naming the Secret and the server while the local
# Kustomization stays Ready; --target=dir refuses kubeConfig per object; moving the kubeConfig
# to another cluster prunes from the previous one; removing the Kustomization and its Secret
# prunes from the remote one (the kubeconfig kept with the inventory). Controller mode (`berth
# run --kube`): the Secret is created with kubectl in the local server, the objects land in the
# remote one, the status in the local one.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl

find_kubectl

make_pki
LTOKEN=kube-local-it-token
RTOKEN=kube-remote-it-token
KUBEAPI_NAME=kubeapi-local start_kubeapi_tls "$LTOKEN" --rollout-step-ms 50
LAPI=$KAPI
LKD=$KD
KUBEAPI_NAME=kubeapi-remote start_kubeapi_tls "$RTOKEN" --rollout-step-ms 50
RAPI=$KAPI
RKD=$KD
LCFG=$T/local.kubeconfig
RCFG=$T/remote.kubeconfig
write_token_kubeconfig "$LCFG" "$LTOKEN" "$LAPI"
write_token_kubeconfig "$RCFG" "$RTOKEN" "$RAPI"

start_registry plain
STATE=$T/state
mkdir -p "$T/cfg"

kget() { # API GROUP RESOURCE NS NAME: the stored object (JSON) or empty
    curl -fsS --cacert "$CA_FILE" -o "$T/.kget" \
        "$1/_kubeapi/objects?group=$2&resource=$3&namespace=$4" || fail "kget: cannot read $3 from $1"
    jq -c --arg n "$5" '[.. | objects | select(.metadata?.name? == $n)] | first // empty' "$T/.kget"
}
has() { [ -n "$(kget "$@")" ]; }
push() { # TAG DIR
    berth_ok push artifact "oci://$REG/$1" --path="$2" --source=https://example.com/app.git \
        --revision="${1#*:}@sha1:4444444444444444444444444444444444444444"
}
indent() { sed 's/^/    /' "$1"; }
secret_doc() { # NAME KUBECONFIG_FILE [KEY]: a Secret document holding the kubeconfig
    cat <<EOF
---
apiVersion: v1
kind: Secret
metadata: {name: $1, namespace: flux-system}
stringData:
  ${3:-value}: |
$(indent "$2")
EOF
}
ks_doc() { # NAME SOURCE [EXTRA_SPEC_YAML]
    cat <<EOF
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: $1, namespace: flux-system}
spec:
  interval: 10m
  timeout: 30s
  path: ./
  prune: true
  sourceRef: {kind: OCIRepository, name: $2}
${3:-}
EOF
}
repo_doc() { # NAME TAG
    cat <<EOF
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: $1, namespace: flux-system}
spec:
  url: oci://$REG/$1
  interval: 10m
  insecure: true
  ref: {tag: $2}
EOF
}
REMOTE_SPEC='  wait: true
  serviceAccountName: deployer
  kubeConfig:
    secretRef: {name: remote-kubeconfig}'
run_once() { # [ARGS]
    bt run --once --config="$T/cfg" --state-dir="$STATE" --target=kube --kubeconfig="$LCFG" "$@"
}
ks_json() { # NAME [STATE]: the Kustomization's status object from berth get
    bt get kustomizations --state-dir="${2:-$STATE}" -o json
    jq -c --arg n "$1" '[.[] | select(.name == $n)] | first | .status // empty' <<<"$OUT"
}
ready_of() { jq -r '.conditions // [] | map(select(.type=="Ready"))[0] | "\(.status) \(.message)"' <<<"$(ks_json "$@")"; }

# the artifacts: the demo app for the remote cluster (v1 all of it, v2 without its ConfigMap),
# a ConfigMap of its own for the local one
APP2=$T/app2
cp -r "$TESTDATA/app" "$APP2"
rm -rf "$APP2/config"
LOCAL_APP=$T/local-app
mkdir -p "$LOCAL_APP"
cat >"$LOCAL_APP/cm.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: local-only, namespace: default}
data: {where: local}
EOF
push app:v1 "$TESTDATA/app"
push app:v2 "$APP2"
push local:v1 "$LOCAL_APP"

write_config() { # APP_TAG [MORE_DOCS]
    {
        repo_doc app "$1"
        repo_doc local v1
        ks_doc local local
        ks_doc remote app "$REMOTE_SPEC"
        secret_doc remote-kubeconfig "$RCFG"
        printf '%s\n' "${2:-}"
    } >"$T/cfg/config.yaml"
}

it "directory config: one Kustomization applies to the local cluster, one to the remote one"
write_config v1
run_once
[ "$RC" = 0 ] || fail "run --once failed (rc=$RC): $ERR"
for spec in "core namespaces '' berth-demo" "core configmaps berth-demo web-config" \
    "apps deployments berth-demo web" "core services berth-demo web"; do
    eval "set -- $spec"
    has "$RAPI" "$@" || fail "$2 $4 is not in the remote cluster"
    has "$LAPI" "$@" && fail "$2 $4 is in the local cluster"
    _IT_CHECKS=$((_IT_CHECKS + 2))
done
has "$LAPI" core configmaps default local-only || fail "ConfigMap local-only is not in the local cluster"
has "$RAPI" core configmaps default local-only && fail "ConfigMap local-only is in the remote cluster"
_IT_CHECKS=$((_IT_CHECKS + 2))
dep=$(kget "$RAPI" apps deployments berth-demo web)
assert_eq remote/flux-system "$(jq -r '.metadata.labels | "\(.["kustomize.toolkit.fluxcd.io/name"])/\(.["kustomize.toolkit.fluxcd.io/namespace"])"' <<<"$dep")" \
    "the remote Deployment's owner labels"
assert_match "$(ready_of remote)" "^True Applied revision: v1@sha256:" "remote Ready"
assert_match "$(ready_of local)" "^True Applied revision: v1@sha256:" "local Ready"
assert_contains "$(ks_json remote | jq -c '.inventory.entries | map(.id)')" \
    '"berth-demo_web_apps_Deployment"' "the remote inventory in the status"
INV=$STATE/inventory/flux-system/remote.json
assert_eq "$RAPI" "$(jq -r '.cluster' "$INV")" "the inventory records the remote cluster"
assert_eq null "$(jq -r '.cluster' "$STATE/inventory/flux-system/local.json")" \
    "the local inventory records no cluster"
assert_eq 600 "$(stat -c %a "$STATE/inventory/flux-system/remote.kubeconfig")" \
    "the kubeconfig kept with the inventory is owner-only"

it "the remote cluster got the apply, the dry-runs and the health checks, impersonating"
reqs=$(jq -c 'select(.path | test("/namespaces/berth-demo/deployments/web"))' "$RKD/requests.log")
assert_contains "$reqs" '"fieldManager":"berth"' "server-side apply on the remote cluster"
assert_contains "$(jq -c 'select(.method=="GET")' <<<"$reqs")" '"method":"GET"' \
    "the remote Deployment was read (health)"
assert_contains "$reqs" '"impersonate":"system:serviceaccount:flux-system:deployer"' \
    "serviceAccountName impersonated on the remote cluster"
n=$(grep -c 'berth-demo' "$LKD/requests.log" || true)
assert_eq 0 "$n" "requests about berth-demo on the local cluster"

it "a second run writes nothing to either cluster"
# only PATCHes that are not dry-runs are writes (drift is found with dry-run applies)
writes() { jq -c 'select(.method=="PATCH" and (.query.dryRun // "") == "")' "$1" | wc -l; }
wl=$(writes "$LKD/requests.log")
wr=$(writes "$RKD/requests.log")
kc_before=$(stat -c %Y.%i "$STATE/inventory/flux-system/remote.kubeconfig")
run_once
[ "$RC" = 0 ] || fail "second run failed (rc=$RC): $ERR"
assert_eq "$wl" "$(writes "$LKD/requests.log")" "writes to the local cluster on a no-change run"
assert_eq "$wr" "$(writes "$RKD/requests.log")" "writes to the remote cluster on a no-change run"
assert_eq "$kc_before" "$(stat -c %Y.%i "$STATE/inventory/flux-system/remote.kubeconfig")" \
    "the kept kubeconfig is not rewritten"

it "a resource removed from the artifact is pruned from the remote cluster"
write_config v2
run_once
[ "$RC" = 0 ] || fail "run with v2 failed (rc=$RC): $ERR"
has "$RAPI" core configmaps berth-demo web-config && fail "web-config is still in the remote cluster"
has "$RAPI" apps deployments berth-demo web || fail "the Deployment left the remote cluster"
_IT_CHECKS=$((_IT_CHECKS + 2))
assert_match "$(ready_of remote)" "^True Applied revision: v2@sha256:" "remote Ready at v2"

it "a Secret whose kubeconfig runs an exec plugin is refused, naming the Secret"
cat >"$T/exec.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: r
  cluster: {server: $RAPI, certificate-authority-data: $(base64 -w0 "$CA_FILE")}
users:
- name: plugin
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: /bin/touch, args: ["$T/exec-ran"]}
contexts:
- name: r
  context: {cluster: r, user: plugin}
current-context: r
EOF
write_config v2 "$(secret_doc exec-kubeconfig "$T/exec.kubeconfig" value.yaml; ks_doc exec app '  kubeConfig: {secretRef: {name: exec-kubeconfig}}')"
run_once
assert_ne 0 "$RC" "a run with a refused Kustomization"
msg=$(ready_of exec)
assert_contains "$msg" 'False kubeConfig Secret "flux-system/exec-kubeconfig"' "the exec Kustomization"
assert_contains "$msg" 'exec credential plugin ("/bin/touch")' "the exec Kustomization"
assert_contains "$msg" "--insecure-kubeconfig-exec" "the exec Kustomization"
[ ! -e "$T/exec-ran" ] || fail "the exec plugin ran"
_IT_CHECKS=$((_IT_CHECKS + 1))
assert_eq "True" "$(ready_of remote | cut -d' ' -f1)" "the remote Kustomization beside it"
# allowed by the operator, the plugin runs (touch prints no ExecCredential: the apply fails)
run_once --insecure-kubeconfig-exec
[ -e "$T/exec-ran" ] || fail "the exec plugin did not run with --insecure-kubeconfig-exec"
_IT_CHECKS=$((_IT_CHECKS + 1))
assert_not_contains "$(ready_of exec)" "--insecure-kubeconfig-exec" "the exec Kustomization, allowed"

it "an unreachable remote cluster: Ready=False naming the Secret and the server; local stays Ready"
write_token_kubeconfig "$T/down.kubeconfig" "$RTOKEN" https://127.0.0.1:1
write_config v2 "$(secret_doc down-kubeconfig "$T/down.kubeconfig"; ks_doc down app '  kubeConfig: {secretRef: {name: down-kubeconfig}}')"
run_once
assert_ne 0 "$RC" "a run with an unreachable cluster"
msg=$(ready_of down)
assert_contains "$msg" 'False apply failed: kubeConfig Secret "flux-system/down-kubeconfig" (server https://127.0.0.1:1)' \
    "the unreachable Kustomization"
assert_eq "True" "$(ready_of local | cut -d' ' -f1)" "the local Kustomization"
assert_eq "True" "$(ready_of remote | cut -d' ' -f1)" "the remote Kustomization"

it "--target=dir: a Kustomization with kubeConfig fails by itself, the others apply"
bt run --once --config="$T/cfg" --state-dir="$T/state-dir" --target="dir:$T/out"
assert_ne 0 "$RC" "a --target=dir run with kubeConfig"
msg=$(ready_of remote "$T/state-dir")
assert_contains "$msg" 'False kubeConfig Secret "flux-system/remote-kubeconfig": spec.kubeConfig needs the Kubernetes target' \
    "the remote Kustomization with --target=dir"
assert_eq "True" "$(ready_of local "$T/state-dir" | cut -d' ' -f1)" "the local one with --target=dir"

it "the kubeConfig moves to another cluster: applied there, pruned from the previous one"
{
    repo_doc app v2
    repo_doc local v1
    ks_doc local local
    ks_doc remote app "$REMOTE_SPEC"
    secret_doc remote-kubeconfig "$LCFG" # the same Secret, now the local cluster's kubeconfig
} >"$T/cfg/config.yaml"
run_once
[ "$RC" = 0 ] || fail "run after the move failed (rc=$RC): $ERR"
has "$LAPI" apps deployments berth-demo web || fail "the Deployment is not in the new (local) cluster"
has "$RAPI" apps deployments berth-demo web && fail "the Deployment is still in the previous cluster"
_IT_CHECKS=$((_IT_CHECKS + 2))
assert_eq "$LAPI" "$(jq -r '.cluster' "$INV")" "the inventory records the new cluster"
# and back, for the removal below
write_config v2
run_once
[ "$RC" = 0 ] || fail "run after moving back failed (rc=$RC): $ERR"
has "$RAPI" apps deployments berth-demo web || fail "the Deployment is not back in the remote cluster"
has "$LAPI" apps deployments berth-demo web && fail "the Deployment is still in the local cluster"
_IT_CHECKS=$((_IT_CHECKS + 2))

it "removing the Kustomization (and its Secret) prunes from the remote cluster"
{
    repo_doc app v2
    repo_doc local v1
    ks_doc local local
} >"$T/cfg/config.yaml"
run_once
[ "$RC" = 0 ] || fail "run after the removal failed (rc=$RC): $ERR"
for spec in "core namespaces '' berth-demo" "apps deployments berth-demo web" \
    "core services berth-demo web"; do
    eval "set -- $spec"
    has "$RAPI" "$@" && fail "$2 $4 is still in the remote cluster"
    _IT_CHECKS=$((_IT_CHECKS + 1))
done
has "$LAPI" core configmaps default local-only || fail "the local Kustomization's ConfigMap went"
_IT_CHECKS=$((_IT_CHECKS + 1))
[ ! -e "$INV" ] && [ ! -e "$STATE/inventory/flux-system/remote.kubeconfig" ] ||
    fail "the inventory or its kubeconfig is left in the state"
_IT_CHECKS=$((_IT_CHECKS + 1))

it "controller mode: a Kustomization CR with kubeConfig.secretRef applies to the remote cluster"
[ -n "$KUBECTL" ] || skip "kubectl not available (scripts/get-kubectl.sh)"
kc() { "$KUBECTL" --kubeconfig "$LCFG" "$@"; }
kc apply -f "$BERTH_SRC/deploy/crds/source.toolkit.fluxcd.io_ocirepositories.yaml" >/dev/null
kc apply -f "$BERTH_SRC/deploy/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml" >/dev/null
kc create namespace flux-system >/dev/null
kc -n flux-system create secret generic cluster-b --from-file=value="$RCFG" >/dev/null
{
    repo_doc app v1
    ks_doc ctrl app '  wait: true
  kubeConfig:
    secretRef: {name: cluster-b}'
} >"$T/crs.yaml"
kc apply -f "$T/crs.yaml" >/dev/null
spawn berth "$T/berth.log" "$BERTH" run --kube --kubeconfig="$LCFG" --state-dir="$T/state-ctrl" \
    --workers=2 --leader-elect=false
BPID=$SPAWNED
ctrl_ready() {
    kc -n flux-system get kustomizations ctrl -o json 2>/dev/null |
        jq -e '.status.conditions // [] | map(select(.type=="Ready" and .status=="True")) | length == 1'
}
wait_until berth "$BPID" "$T/berth.log" ctrl_ready
_IT_CHECKS=$((_IT_CHECKS + 1))
has "$RAPI" apps deployments berth-demo web || fail "the Deployment is not in the remote cluster"
has "$RAPI" core configmaps berth-demo web-config || fail "the ConfigMap is not in the remote cluster"
has "$LAPI" apps deployments berth-demo web && fail "the Deployment is in the local cluster"
_IT_CHECKS=$((_IT_CHECKS + 3))
st=$(kc -n flux-system get kustomizations ctrl -o json)
assert_contains "$(jq -c '.status.inventory.entries | map(.id)' <<<"$st")" \
    '"berth-demo_web_apps_Deployment"' "the inventory in the local CR's status"

it "controller mode: deleting the Kustomization CR prunes from the remote cluster"
kc -n flux-system delete kustomization ctrl >/dev/null
gone() { ! has "$RAPI" apps deployments berth-demo web; }
wait_until berth "$BPID" "$T/berth.log" gone
_IT_CHECKS=$((_IT_CHECKS + 1))
kill -TERM "$BPID"
finish
