#!/bin/bash
# test_kube_images.sh: the image kinds in controller mode (`berth run --kube`), against the
# Kubernetes API test server (testdata/kubeapi) and a real docker-registry. The CRDs of deploy/
# are applied with kubectl, image tags are pushed by skopeo, and every object is created with
# kubectl: an ImageRepository, an ImagePolicy (semver range), an ImageUpdateAutomation publishing
# to a registry tag (berth's spec.publish, signed with a cosign key from a Secret), and the
# OCIRepository + Kustomization applying what it publishes. Checks, read back with kubectl and
# from the server's store: the ImageRepository and ImagePolicy statuses (tag count, latestRef,
# Ready with observedGeneration) as Flux's image-reflector-controller would write them; the
# automation's status names the artifact it pushed; the Deployment in the API server runs the
# picked tag; a tag pushed later reaches the Deployment after a requestedAt annotation on the
# ImageRepository, whose lastHandledReconcileAt then equals it.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo curl jq tar gzip setsid python3 openssl
require_kubectl

export BERTH_PASSWORD=kube-images-it-password
make_pki
TOKEN=kube-images-it-token
start_kubeapi_tls "$TOKEN" --client-ca "$CA_FILE" --rollout-step-ms 50
KCFG=$T/kubeconfig
write_token_kubeconfig "$KCFG" "$TOKEN"
kc() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
cr() { # RESOURCE NAME: kubectl get -o json of an object in apps
    kc -n apps get "$1" "$2" -o json 2>/dev/null || true
}
poll() { # WHAT COMMAND...: every 100 ms, at most 60 s
    local what=$1 i
    shift
    for ((i = 0; i < 600; i++)); do
        if "$@" >/dev/null 2>&1; then
            _IT_CHECKS=$((_IT_CHECKS + 1))
            return 0
        fi
        sleep 0.1
    done
    printf -- '--- berth log:\n' >&2
    tail -n 40 "$T/berth.log" >&2 || true
    fail "$what: not within 60 s"
}

it "the CRDs of deploy/, image tags pushed by skopeo, the fleet source"
for f in "$BERTH_SRC"/deploy/crds/*.yaml; do kc apply -f "$f" >/dev/null; done
kc create namespace apps >/dev/null
start_registry plain
berth_ok generate-key-pair --output-key-prefix="$T/cosign"
mkdir -p "$T/imgA" "$T/imgB" "$T/fleet"
echo a >"$T/imgA/a.txt"
echo b >"$T/imgB/b.txt"
flux_tar_of_dir "$T/imgA" "$T/a.tar"
flux_layout_from_tar "$T/a.tar" "$T/layoutA" x https://example.com/img.git main@sha1:aaaa
flux_tar_of_dir "$T/imgB" "$T/b.tar"
flux_layout_from_tar "$T/b.tar" "$T/layoutB" x https://example.com/img.git main@sha1:bbbb
for t in 1.0.0 1.2.3 2.0.0-rc.1 latest sha-abc; do skopeo_push_layout "$T/layoutA" x "$REG/team/app:$t"; done
skopeo_push_layout "$T/layoutB" x "$REG/team/app:v1.3.0"
IMG=$REG/team/app
cat >"$T/fleet/app.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: apps
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
        - name: app
          image: $IMG:1.0.0 # {"\$imagepolicy": "apps:app"}
EOF
berth_ok push artifact "oci://$REG/fleet/src:main" --path="$T/fleet" \
    --source=https://example.com/fleet.git --revision=main@sha1:1234567890123456789012345678901234567890
kc -n apps create secret generic cosign-key --from-file=cosign.key="$T/cosign.key" \
    --from-literal=cosign.password="$BERTH_PASSWORD" >/dev/null
kc -n apps create secret generic cosign-pub --from-file=cosign.pub="$T/cosign.pub" >/dev/null
cat >"$T/crs.yaml" <<EOF
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, namespace: apps}
spec:
  image: $IMG
  interval: 10m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app, namespace: apps}
spec:
  imageRepositoryRef: {name: app}
  policy:
    semver: {range: ">=1.0.0 <2.0.0"}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: fleet-src, namespace: apps}
spec:
  url: oci://$REG/fleet/src
  ref: {tag: main}
  interval: 10m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: fleet, namespace: apps}
spec:
  interval: 10m
  sourceRef: {kind: OCIRepository, name: fleet-src}
  update: {path: ./, strategy: Setters}
  publish:
    url: oci://$REG/fleet/config:latest
    signingKey: {secretRef: {name: cosign-key}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: fleet, namespace: apps}
spec:
  url: oci://$REG/fleet/config
  ref: {tag: latest}
  interval: 10m
  verify: {provider: cosign, secretRef: {name: cosign-pub}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: fleet, namespace: apps}
spec:
  interval: 10m
  path: ./
  prune: true
  sourceRef: {kind: OCIRepository, name: fleet}
EOF
kc apply -f "$T/crs.yaml" >/dev/null

it "controller mode reconciles the image kinds and writes their status"
STATE=$T/state
spawn berth "$T/berth.log" "$BERTH" run --kube --kubeconfig="$KCFG" --state-dir="$STATE" \
    --leader-elect=false
deployment_runs() { # TAG: the Deployment in the API server runs IMG:TAG
    [ "$(kube_object apps deployments apps app | jq -r '.spec.template.spec.containers[0].image')" = "$IMG:$1" ]
}
poll "the Deployment runs the tag the policy picked" deployment_runs v1.3.0
status_written() { # RESOURCE NAME FIELD: the object's status has FIELD (written back by the next pass)
    [ "$(cr "$1" "$2" | jq -r ".status.$3 // empty")" != "" ]
}
poll "the ImagePolicy status" status_written imagepolicies app latestRef
poll "the ImageRepository status" status_written imagerepositories app lastScanResult
poll "the ImageUpdateAutomation status" status_written imageupdateautomations fleet lastPublishedRevision
pol=$(cr imagepolicies app)
assert_eq v1.3.0 "$(jq -r .status.latestRef.tag <<<"$pol")" "ImagePolicy latestRef.tag"
assert_eq "$IMG" "$(jq -r .status.latestRef.name <<<"$pol")" "ImagePolicy latestRef.name"
assert_eq True "$(jq -r '.status.conditions[] | select(.type=="Ready") | .status' <<<"$pol")" "ImagePolicy Ready"
assert_eq "$(jq -r .metadata.generation <<<"$pol")" "$(jq -r .status.observedGeneration <<<"$pol")" \
    "ImagePolicy observedGeneration"
repo=$(cr imagerepositories app)
assert_eq 6 "$(jq -r .status.lastScanResult.tagCount <<<"$repo")" "ImageRepository tagCount (6 tags pushed)"
assert_eq "$IMG" "$(jq -r .status.canonicalImageName <<<"$repo")" "ImageRepository canonicalImageName"
assert_eq True "$(jq -r '.status.conditions[] | select(.type=="Ready") | .status' <<<"$repo")" "ImageRepository Ready"
upd=$(cr imageupdateautomations fleet)
assert_match "$(jq -r .status.lastPublishedRevision <<<"$upd")" "^latest@sha256:[0-9a-f]{64}$"
assert_eq "apps/app=v1.3.0" "$(jq -r .status.lastPublishedPolicies <<<"$upd")" "policies of the publication"
berth_ok verify "oci://$REG/fleet/config:latest" --key="$T/cosign.pub"
assert_eq True "$(cr kustomizations fleet | jq -r '.status.conditions[] | select(.type=="Ready") | .status')" \
    "the Kustomization applying the publication is Ready"
assert_eq "" "$(grep -F kind-not-served "$T/berth.log" || true)" "no kind reported missing"

it "a new tag reaches the Deployment after requestedAt on the ImageRepository"
skopeo_push_layout "$T/layoutA" x "$IMG:1.4.0"
kc -n apps annotate imagerepository app reconcile.fluxcd.io/requestedAt=req-1 --overwrite >/dev/null
poll "the Deployment runs 1.4.0" deployment_runs 1.4.0
handled() { [ "$(cr imagerepositories app | jq -r .status.lastHandledReconcileAt)" = req-1 ]; }
poll "lastHandledReconcileAt of the ImageRepository" handled
assert_eq 7 "$(cr imagerepositories app | jq -r .status.lastScanResult.tagCount)" "tagCount after the new tag"
assert_eq 1.4.0 "$(cr imagepolicies app | jq -r .status.latestRef.tag)" "ImagePolicy latestRef.tag moved"

finish
