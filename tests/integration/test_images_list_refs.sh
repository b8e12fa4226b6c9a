#!/bin/bash
# test_images_list_refs.sh: `berth images list-refs` (issue 6) on testdata/images/list-refs: an
# overlay with a kustomize images: override over Deployments (containers, initContainers, an
# image volume), a CronJob (initContainers in the job template), a Pod with an
# ephemeralContainer and a custom resource holding an image deep inside; a plain directory
# without kustomization.yaml; the objects naming each image in -o json; kubectl's kustomize as an
# independent oracle where a kubectl is installed; errors; and the mirror pipeline it feeds:
# list-refs > list, then berth copy --from-list into an oci-archive, checked with skopeo.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo umoci jq

FX=$BERTH_SRC/testdata/images/list-refs

it "the prod overlay: every image once, sorted, with the images: override applied"
berth_ok images list-refs --root="$FX" --path="$FX/overlays/prod"
want="127.0.0.1:5000/acme/report@sha256:4d2c1b0a99887766554433221100ffeeddccbbaa99887766554433221100ffee
busybox:1.36
docker.io/library/alpine:3.19
ghcr.io/acme/migrate:2.0.1
ghcr.io/acme/models:v7
nginx:1.25.3
quay.io/acme/renderer:0.9
registry.acme.internal/worker@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
assert_eq "$want" "$OUT" "images of the prod overlay"
PROD=$OUT

it "kubectl's kustomize, where installed, builds the same set of images"
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize "$FX/overlays/prod" >"$T/kz.yaml" 2>/dev/null; then
    oracle=$(sed -nE 's/^ *(- )?(image|reference): *([^ ].*)$/\3/p' "$T/kz.yaml" | grep -v '^""$' | sort -u)
    assert_eq "$PROD" "$oracle" "berth vs kubectl kustomize"
else
    log "no kubectl with kustomize here: the fixed expectation above is the only check"
fi

it "the base with -o json: the objects naming each image (namespace from the kustomization)"
berth_ok images list-refs --path="$FX/base" -o json
assert_eq 8 "$(jq '.images | length' <<<"$OUT")" "images in the base"
assert_eq '["Deployment/shop/web","Deployment/shop/api"]' \
    "$(jq -c '.images[] | select(.image == "ghcr.io/acme/worker:3.1") | .objects' <<<"$OUT")"
assert_eq '["Deployment/shop/web","Pod/shop/debug"]' \
    "$(jq -c '.images[] | select(.image == "nginx:1.25.0") | .objects' <<<"$OUT")"
assert_eq '["CronJob/shop/report"]' \
    "$(jq -c '.images[] | select(.image == "busybox") | .objects' <<<"$OUT")"
assert_eq '["Widget/shop/gadget"]' \
    "$(jq -c '.images[] | select(.image == "quay.io/acme/renderer:0.9") | .objects' <<<"$OUT")"
assert_eq "$(jq -r '.images[].image' <<<"$OUT" | sort)" "$(jq -r '.images[].image' <<<"$OUT")" "sorted"

it "plain YAML files without a kustomization.yaml (nested directories included)"
berth_ok images list-refs --path="$FX/plain"
assert_eq "registry.example.com/edge/app:1.0
registry.example.com/edge/seed:2024.1" "$OUT"

it "errors: malformed YAML names the file; --path outside --root is a usage error"
mkdir -p "$T/broken"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n' >"$T/broken/cm.yaml"
assert_fails --rc 1 "cm.yaml" berth images list-refs --path="$T/broken"
assert_fails --rc 2 "not a directory inside" berth images list-refs --root="$FX/base" --path="$FX/plain"
assert_fails --rc 2 "not a directory inside" berth images list-refs --path="$T/absent"
assert_fails --rc 2 "--path" berth images list-refs
berth_ok images list-refs --help
assert_contains "$OUT" "--path=DIR"

it "the pipeline: list-refs > list, then copy --from-list into an archive (skopeo checks it)"
start_registry plain
L=$T/umoci
umoci init --layout "$L"
for name in web seed; do
    umoci new --image "$L:$name"
    echo "$name" >"$T/$name.txt"
    umoci insert --image "$L:$name" "$T/$name.txt" "/$name.txt"
    sk copy --quiet --dest-tls-verify=false "oci:$L:$name" "docker://$REG/edge/$name:1.0"
done
mkdir -p "$T/site"
for name in web seed; do
    cat >"$T/site/$name.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
spec:
  selector:
    matchLabels: {app: $name}
  template:
    metadata:
      labels: {app: $name}
    spec:
      containers:
        - name: $name
          image: $REG/edge/$name:1.0
EOF
done
berth_ok images list-refs --path="$T/site"
printf '%s\n' "$OUT" >"$T/images.txt"
assert_eq 2 "$(wc -l <"$T/images.txt")" "images listed"
berth_ok copy --from-list="$T/images.txt" "oci-archive:$T/images.tar"
for name in web seed; do
    sk inspect --raw --tls-verify=false "docker://$REG/edge/$name:1.0"
    want=$(sha256sum <"$T/.out" | cut -d' ' -f1)
    sk inspect --raw "oci-archive:$T/images.tar:$REG/edge/$name:1.0"
    assert_eq "$want" "$(sha256sum <"$T/.out" | cut -d' ' -f1)" "$name in the archive"
done

finish
