#!/bin/bash
# test_kube_bootstrap_auth.sh: `berth bootstrap --kube` from a private registry (issue 6), against
# the Kubernetes API test server and a real docker-registry with TLS (our CA) and basic auth. The
# user creates the Secrets in berth-system with kubectl (a docker-registry Secret and one holding
# the registry's ca.crt); bootstrap pushes with --creds/--ca-file and names them with
# --registry-secret, --registry-cert-secret and --image-pull-secret. Checks: the OCIRepository
# in the cluster carries spec.secretRef and spec.certSecretRef, the berth Deployment carries
# imagePullSecrets; `berth run --kube` (standing in for the berth pod, as in
# test_kube_bootstrap.sh) pulls the artifact with those Secrets and is Ready; without the
# credentials Secret the OCIRepository is not Ready and says why; a bad Secret name is refused
# before anything is pushed; the Secret flags need --kube.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid openssl htpasswd
require_kubectl

export BERTH_PASSWORD=kube-bootstrap-auth-it
make_pki
TOKEN=kube-boot-auth-it-token
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE" --rollout-step-ms 50
KCFG=$T/kubeconfig
write_token_kubeconfig "$KCFG" "$TOKEN"
kc() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
cr() { # RESOURCE: kubectl get -o json of the CR berth-system/berth-system
    kc -n berth-system get "$1" berth-system -o json 2>/dev/null || true
}
ready_status() { # RESOURCE: the Ready condition's status of the CR
    cr "$1" | jq -r '[.status.conditions[]? | select(.type=="Ready") | .status] | first // empty'
}
start_registry tls
berth_ok generate-key-pair --output-key-prefix="$T/cosign"
cp -r "$APP_DIR" "$T/fleet"
URL=oci://$REG/fleet
BOOT=(bootstrap "$URL:prod" --path="$T/fleet" --sign-key="$T/cosign.key" --verify-key="$T/cosign.pub"
    --interval=2s --kube --kubeconfig="$KCFG" --image=berth:1.0.0 "${BERTH_REG_ARGS[@]}")

it "bad input: a Secret name that is not a DNS name, the Secret flags without --kube"
assert_fails --rc 1 "invalid Secret name \"Reg_Creds\"" berth "${BOOT[@]}" --registry-secret=Reg_Creds
assert_fails --rc 2 "--registry-secret needs --kube" berth bootstrap "$URL:prod" --path="$T/fleet" \
    --registry-secret=regcred
assert_fails --rc 1 "not found" berth list artifacts "$URL" "${BERTH_REG_ARGS[@]}"

it "the user's Secrets, then bootstrap naming them"
kc create namespace berth-system >/dev/null
kc -n berth-system create secret docker-registry regcred --docker-server="$REG" \
    --docker-username="$TEST_USER" --docker-password="$TEST_PASS" >/dev/null
kc -n berth-system create secret generic regca --from-file=ca.crt="$CA_FILE" >/dev/null
berth_ok "${BOOT[@]}" --registry-secret=regcred --registry-cert-secret=regca \
    --image-pull-secret=regcred --timeout=60s
assert_match "$OUT" "^object +created +OCIRepository/berth-system/berth-system$"
repo=$(cr ocirepositories)
assert_eq regcred "$(jq -r .spec.secretRef.name <<<"$repo")" "spec.secretRef"
assert_eq regca "$(jq -r .spec.certSecretRef.name <<<"$repo")" "spec.certSecretRef"
assert_eq regcred "$(kube_object apps deployments berth-system berth | jq -r '.spec.template.spec.imagePullSecrets[0].name')" \
    "the berth Deployment's imagePullSecrets"

it "berth run --kube pulls the private artifact with those Secrets"
spawn berth "$T/berth.log" "$BERTH" run --kube --kubeconfig="$KCFG" --state-dir="$T/state" \
    --leader-elect=false
BPID=$SPAWNED
both_ready() { [ "$(ready_status ocirepositories)" = True ] && [ "$(ready_status kustomizations)" = True ]; }
wait_until berth "$BPID" "$T/berth.log" both_ready
assert_match "$(cr ocirepositories | jq -r .status.artifact.revision)" "^prod@sha256:[0-9a-f]{64}$"

it "without the credentials Secret the source is not Ready and says why"
kc -n berth-system delete secret regcred >/dev/null
kc -n berth-system annotate ocirepository berth-system reconcile.fluxcd.io/requestedAt=no-creds --overwrite >/dev/null
not_ready() { [ "$(ready_status ocirepositories)" = False ]; }
wait_until berth "$BPID" "$T/berth.log" not_ready
assert_contains "$(cr ocirepositories | jq -r '.status.conditions[] | select(.type=="Ready") | .message')" \
    "regcred"
kill -TERM "$BPID"
wait "$BPID" 2>/dev/null || true

finish
