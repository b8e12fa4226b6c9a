#!/bin/bash
# test_images.sh: image reflection and automation (issue 7) against a real docker-registry, with
# berth reading through the fault proxy so every request is counted. Image tags are pushed by
# skopeo: a mix of semver (with v-prefix and pre-releases), timestamped builds, garbage and a
# cosign signature tag. Each ImagePolicy must pick what Flux's image-reflector-controller picks
# (the expectations below are written from Flux's documented rules, not from berth's output);
# a rescan with nothing new is tags requests only; a newly pushed tag is picked up; and the full
# gitless loop runs in one `berth run`: the automation rewrites only the marked lines of the
# fleet config, publishes a signed artifact, and a verified OCIRepository + Kustomization apply it.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo curl jq tar gzip setsid python3

export BERTH_PASSWORD=images-it-password
KD=$T/keys
STATE=$T/state
TGT=$T/target
mkdir -p "$KD" "$T/cfg" "$T/fleet"

start_registry plain
start_faultproxy "$REG"
berth_ok generate-key-pair --output-key-prefix="$KD/cosign"

# Two different image manifests (A and B) as OCI layouts, pushed under many tags by skopeo.
mkdir -p "$T/imgA" "$T/imgB"
echo a >"$T/imgA/a.txt"
echo b >"$T/imgB/b.txt"
flux_tar_of_dir "$T/imgA" "$T/a.tar"
flux_layout_from_tar "$T/a.tar" "$T/layoutA" x https://example.com/img.git main@sha1:aaaa
DIGEST_A=$FLUX_MANIFEST_DIGEST
flux_tar_of_dir "$T/imgB" "$T/b.tar"
flux_layout_from_tar "$T/b.tar" "$T/layoutB" x https://example.com/img.git main@sha1:bbbb
DIGEST_B=$FLUX_MANIFEST_DIGEST
push_tag() { # LAYOUT TAG
    skopeo_push_layout "$1" x "$REG/team/app:$2"
}
SIG_TAG="sha256-$(printf '%064d' 7).sig"
for t in 1.0.0 1.2.3 1.2 1.10.0-rc.1 2.0.0-alpha.1 0.9.9 latest foo_bar sha-abc \
    main-f00ba12-1700000100 main-0a1b2c3-1700000300 main-deadbee-1700000200 \
    feat-1234567-1800000000 "$SIG_TAG"; do
    push_tag "$T/layoutA" "$t"
done
push_tag "$T/layoutB" v1.3.0
N_TAGS=14 # the 15 pushed, less the signature tag (Flux's default exclusion list)

IMG=$PROXY/team/app
policy() { # NAME POLICY_YAML [FILTER_YAML] [EXTRA]
    cat <<EOF
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: $1
  namespace: apps
  labels: {fleet: "${4:-no}"}
spec:
  imageRepositoryRef:
    name: app
  policy:
    $2
${3:-}
EOF
}
write_images_config() {
    {
        cat <<EOF
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: app
  namespace: apps
spec:
  image: $IMG
  interval: 10m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: app-releases
  namespace: apps
spec:
  image: $IMG
  interval: 10m
  exclusionList: ["^main-", "^feat-"]
EOF
        # Flux: ranges skip pre-releases unless the range has one; "1.2" is not a version (two
        # dots needed); the v prefix is accepted and kept in the tag.
        policy semver-stable 'semver: {range: ">=1.0.0"}' '  digestReflectionPolicy: IfNotPresent'
        policy fleet-app 'semver: {range: ">=1.0.0"}' "" yes
        policy fleet-unused 'semver: {range: "~1.2"}' "" yes # selected, but no marker names it
        policy semver-pre 'semver: {range: ">=1.0.0-0"}'
        policy semver-tilde 'semver: {range: "~1.2"}'
        # alphabetical over whole tags vs numerical over the extracted timestamp
        policy alpha-main 'alphabetical: {order: asc}' '  filterTags: {pattern: "^main-"}'
        policy num-ts 'numerical: {order: asc}' \
            '  filterTags: {pattern: "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", extract: "$ts"}'
        policy num-ts-desc 'numerical: {order: desc}' \
            '  filterTags: {pattern: "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", extract: "$ts"}'
        policy alpha-ts-desc 'alphabetical: {order: desc}' \
            '  filterTags: {pattern: "^(?P<b>[a-z]+)-[a-f0-9]{7}-(?P<ts>[0-9]+)$", extract: "${ts}${b}"}'
    } >"$T/cfg/images.yaml"
}
run_once() {
    bt run --once --config="$T/cfg" --state-dir="$STATE" --target="dir:$TGT"
    RUN_ERR=$ERR
}
pol() { # NAME FIELD: status.latestRef.FIELD of an ImagePolicy
    jq -r --arg n "$1" --arg f "$2" '.[] | select(.kind=="ImagePolicy" and .name==$n) |
        .status.latestRef[$f] // ""' "$STATE_JSON"
}
get_json() {
    berth_ok get images all --state-dir="$STATE" -o json
    printf '%s' "$OUT" >"$T/status.json"
    STATE_JSON=$T/status.json
}

it "scan: every tag but the signature's is stored, lastScanResult as Flux writes it"
write_images_config
run_once
get_json
repo=$(jq '.[] | select(.kind=="ImageRepository" and .name=="app") | .status' "$STATE_JSON")
assert_eq "$N_TAGS" "$(jq -r '.lastScanResult.tagCount' <<<"$repo")" "tagCount"
assert_eq "$N_TAGS" "$(wc -l <"$STATE/images/apps/app/tags")" "lines in the stored tag list"
! grep -qxF "$SIG_TAG" "$STATE/images/apps/app/tags" || fail "the signature tag was stored"
grep -qxF main-deadbee-1700000200 "$STATE/images/apps/app/tags" || fail "a tag is missing"
# latestTags: the ten highest in reverse byte order, as Flux sorts them
want_latest=$(sort -r "$STATE/images/apps/app/tags" | head -n 10 | jq -R . | jq -sc .)
assert_eq "$want_latest" "$(jq -c '.lastScanResult.latestTags' <<<"$repo")" "latestTags"
assert_eq True "$(jq -r '.conditions[] | select(.type=="Ready") | .status' <<<"$repo")" "Ready"
assert_contains "$(jq -r '.conditions[] | select(.type=="Ready") | .message' <<<"$repo")" \
    "successful scan: found $N_TAGS tags"

it "an explicit exclusionList replaces the default one (the signature tag is kept then)"
rel=$(jq '.[] | select(.kind=="ImageRepository" and .name=="app-releases") | .status' "$STATE_JSON")
assert_eq 11 "$(jq -r '.lastScanResult.tagCount' <<<"$rel")" "tagCount: 15 pushed, 4 main-/feat-"
grep -qxF "$SIG_TAG" "$STATE/images/apps/app-releases/tags" || fail "the signature tag is missing"
! grep -q '^main-\|^feat-' "$STATE/images/apps/app-releases/tags" || fail "an excluded tag was stored"
assert_eq '["^main-","^feat-"]' "$(jq -c '.observedExclusionList' <<<"$rel")" "observedExclusionList"

it "each policy picks what Flux picks"
assert_eq v1.3.0 "$(pol semver-stable tag)" "semver >=1.0.0 (pre-releases out, v prefix kept)"
assert_eq "$IMG" "$(pol semver-stable name)" "latestRef.name"
assert_eq "$DIGEST_B" "$(pol semver-stable digest)" "digest reflected by HEAD of v1.3.0"
assert_eq "" "$(pol semver-pre digest)" "no digest without digestReflectionPolicy"
assert_eq 2.0.0-alpha.1 "$(pol semver-pre tag)" "semver >=1.0.0-0 admits pre-releases"
assert_eq 1.2.3 "$(pol semver-tilde tag)" "semver ~1.2 (\"1.2\" is not a version)"
assert_eq main-f00ba12-1700000100 "$(pol alpha-main tag)" "alphabetical asc over whole tags"
assert_eq main-0a1b2c3-1700000300 "$(pol num-ts tag)" "numerical asc over the extracted ts"
assert_eq main-f00ba12-1700000100 "$(pol num-ts-desc tag)" "numerical desc"
assert_eq main-f00ba12-1700000100 "$(pol alpha-ts-desc tag)" \
    "alphabetical desc over \${ts}\${b}: 1700000100main is the lowest"
berth_ok get images policy --state-dir="$STATE"
assert_match "$OUT" "^semver-stable +$IMG:v1.3.0 +False +True +Latest image tag for $IMG resolved to v1.3.0"

it "a rescan with nothing new is tags requests only: no manifest fetched, nothing rewritten"
tags_before=$(stat -c '%i %Y' "$STATE/images/apps/app/tags")
: >"$PROXY_LOG"
run_once
assert_eq "" "$(grep -v '^GET /v2/team/app/tags/list' "$PROXY_LOG" || true)" \
    "requests other than tags/list"
[ "$(grep -c '^GET /v2/team/app/tags/list' "$PROXY_LOG")" -ge 1 ] || fail "no tags request"
assert_eq "$tags_before" "$(stat -c '%i %Y' "$STATE/images/apps/app/tags")" "tag file rewritten"

it "a newly pushed tag is picked up on the next scan; the previous ref is kept"
push_tag "$T/layoutA" v1.5.0
run_once
get_json
assert_eq v1.5.0 "$(pol semver-stable tag)" "new latest"
assert_eq "$DIGEST_A" "$(pol semver-stable digest)" "digest of v1.5.0"
assert_eq v1.3.0 "$(jq -r '.[] | select(.name=="semver-stable") | .status.observedPreviousRef.tag' \
    "$STATE_JSON")" "observedPreviousRef"
assert_contains "$RUN_ERR" "updated from v1.3.0 to v1.5.0"

# ---------------------------------------------------------------------------------- full loop
cat >"$T/fleet/app.yaml" <<EOF
# fleet config: edited by people, updated by berth
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: apps
spec:
  selector:
    matchLabels: &labels {app: app}
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: app
          image: $IMG:1.0.0 # {"\$imagepolicy": "apps:fleet-app"}
        - name: sidecar
          image: "busybox:1.36"     # not managed
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-version
  namespace: apps
data:
  tag: '1.0.0'   # {"\$imagepolicy": "apps:fleet-app:tag"}
  note: "keep   spacing"   # untouched
EOF
berth_ok push artifact "oci://$REG/fleet/src:main" --path="$T/fleet" \
    --source=https://example.com/fleet.git --revision=main@sha1:1234567890123456789012345678901234567890
cat >"$T/cfg/fleet.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata: {name: cosign-key, namespace: apps}
stringData:
  cosign.password: $BERTH_PASSWORD
  cosign.key: |
$(sed 's/^/    /' "$KD/cosign.key")
---
apiVersion: v1
kind: Secret
metadata: {name: cosign-pub, namespace: apps}
stringData:
  cosign.pub: |
$(sed 's/^/    /' "$KD/cosign.pub")
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: fleet-src, namespace: apps}
spec:
  url: oci://$PROXY/fleet/src
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
  policySelector: {matchLabels: {fleet: "yes"}}
  publish:
    url: oci://$PROXY/fleet/config:latest
    signingKey: {secretRef: {name: cosign-key}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: fleet, namespace: apps}
spec:
  url: oci://$PROXY/fleet/config
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
poll() { # WHAT COMMAND...: every 100 ms, at most 30 s
    local what=$1 i
    shift
    for ((i = 0; i < 300; i++)); do
        if "$@" >/dev/null 2>&1; then
            _IT_CHECKS=$((_IT_CHECKS + 1))
            return 0
        fi
        sleep 0.1
    done
    printf -- '--- loop log:\n' >&2
    cat "$T/loop.log" >&2 || true
    fail "$what: not within 30 s"
}
target_has() { # TAG: the applied Deployment runs IMG:TAG (the target writes it quoted) and
    # the ConfigMap says TAG (one apply writes both files, one after the other)
    grep -qF -- "image: \"$IMG:$1\"" "$TGT/apps/apps_Deployment_app.yaml" &&
        grep -qxF -- "  tag: $1" "$TGT/apps/core_ConfigMap_app-version.yaml"
}

it "full loop in one berth run: rewrite, publish signed, verify, apply"
spawn berth-run "$T/loop.log" "$BERTH" run --config="$T/cfg" --state-dir="$STATE" \
    --target="dir:$TGT"
LOOP=$SPAWNED
poll "v1.5.0 applied to the target" target_has v1.5.0
assert_contains "$(cat "$TGT/apps/core_ConfigMap_app-version.yaml")" "tag: v1.5.0"
assert_contains "$(cat "$TGT/apps/apps_Deployment_app.yaml")" "image: busybox:1.36"

it "the published artifact differs from the source in the marked values only, and is signed"
rm -rf "$T/pub"
mkdir -p "$T/pub"
berth_ok pull artifact "oci://$REG/fleet/config:latest" --output="$T/pub"
sed -e "s|image: $IMG:1.0.0 #|image: $IMG:v1.5.0 #|" -e "s|tag: '1.0.0'   #|tag: 'v1.5.0'   #|" \
    "$T/fleet/app.yaml" >"$T/expected.yaml"
assert_same_file "$T/expected.yaml" "$T/pub/app.yaml"
berth_ok verify "oci://$REG/fleet/config:latest" --key="$KD/cosign.pub"
sk inspect --raw --tls-verify=false "docker://$REG/fleet/config:latest"
ann=$(jq -r '.annotations["io.berth.image.policies"]' <<<"$OUT")
assert_eq "apps/fleet-app=v1.5.0" "$ann" "the policies recorded in the manifest"
assert_eq "main@sha256:" "$(jq -r '.annotations["org.opencontainers.image.revision"]' <<<"$OUT" | cut -c1-12)" \
    "revision annotation: the source revision"
berth_ok get images update --state-dir="$STATE" -o json
assert_match "$(jq -r '.[0].status.lastPublishedRevision' <<<"$OUT")" "^latest@sha256:[0-9a-f]{64}$"
assert_eq "apps/fleet-app=v1.5.0" "$(jq -r '.[0].status.lastPublishedPolicies' <<<"$OUT")"

it "a new image tag flows through: scan, policy, publish, verify, apply"
push_tag "$T/layoutB" v1.6.0
berth_ok reconcile image repository app -n apps --state-dir="$STATE"
assert_contains "$OUT" "reconcile requested for ImageRepository apps/app"
poll "v1.6.0 applied to the target" target_has v1.6.0
assert_contains "$(cat "$TGT/apps/core_ConfigMap_app-version.yaml")" "tag: v1.6.0"
kill -TERM "$LOOP"
for ((i = 0; i < 100; i++)); do kill -0 "$LOOP" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$LOOP" 2>/dev/null || fail "the loop did not stop on SIGTERM"

it "no change, no publication: a selected policy no marker uses moves, nothing is pushed again"
push_tag "$T/layoutA" 1.2.9
: >"$PROXY_LOG"
run_once
get_json
assert_eq 1.2.9 "$(pol fleet-unused tag)" "the unused policy moved"
[ "$RC" = 0 ] || fail "run --once failed: $RUN_ERR"
assert_eq "" "$(grep -E '^(PUT|POST|PATCH) ' "$PROXY_LOG" || true)" "writes to the registry"

it "spec.git says that Git output needs the Git adapter; the object is Stalled"
cat >"$T/cfg/git.yaml" <<EOF
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: via-git, namespace: apps}
spec:
  interval: 10m
  sourceRef: {kind: OCIRepository, name: fleet-src}
  git:
    push: {branch: main}
EOF
run_once
assert_eq 1 "$RC" "exit status with an invalid object"
assert_contains "$RUN_ERR" "git.yaml:8:"
assert_contains "$RUN_ERR" "Git output needs the Git adapter, not yet available"
berth_ok get images update --state-dir="$STATE"
assert_match "$OUT" "^via-git +False +False +.*git.yaml:8:.*Git output needs the Git adapter"
rm "$T/cfg/git.yaml"


it "berth reconcile image without a loop: only the object named, once, from --config"
push_tag "$T/layoutA" 1.2.10
berth_ok reconcile image repository app -n apps --state-dir="$STATE" --config="$T/cfg"
grep -qxF 1.2.10 "$STATE/images/apps/app/tags" || fail "the new tag was not stored"
get_json
assert_eq 1.2.9 "$(pol fleet-unused tag)" "a policy is not reconciled with its repository"
berth_ok reconcile image policy fleet-unused -n apps --state-dir="$STATE" --config="$T/cfg"
get_json
assert_eq 1.2.10 "$(pol fleet-unused tag)" "the policy reconciled by name"

it "image objects removed from the config: status and stored tags are garbage-collected"
[ -s "$STATE/images/apps/app-releases/tags" ] || fail "no stored tags to collect"
rm "$T/cfg/images.yaml"
run_once
berth_ok get images all --state-dir="$STATE" -o json
assert_eq "ImageUpdateAutomation/fleet" "$(jq -r '[.[] | "\(.kind)/\(.name)"] | join(" ")' <<<"$OUT")" \
    "image objects left after the GC"
[ ! -e "$STATE/images/apps/app" ] || fail "the tags of the removed ImageRepository app stayed"
[ ! -e "$STATE/images/apps/app-releases" ] || fail "the tags of app-releases stayed"
[ ! -e "$STATE/status/imagepolicy/apps/fleet-app.json" ] || fail "a removed policy's status stayed"
gc_events=$(jq -r 'select(.reason=="GarbageCollected") | .involvedObject.kind' "$STATE/events.jsonl" | sort | uniq -c)
assert_match "$gc_events" "2 ImageRepository"
assert_contains "$RUN_ERR" "garbage-collected"

finish
