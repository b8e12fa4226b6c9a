#!/bin/bash
# test_artifact_cli.sh: the artifact verbs end to end against one plain docker-registry:
# push output (-o json), reproducible digests, ignore rules, single-file push, diff (exit 0/1),
# tag, list with --filter-semver / --filter-regex (and hidden signature tags), usage errors.
# Registry contents are checked with curl and skopeo, not with berth.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo curl jq tar gzip setsid

SRC=https://example.com/berth/cli.git
REV=main@sha1:3333333333333333333333333333333333333333

start_registry plain

# manifest_of REPO REF: the raw manifest as the registry serves it.
manifest_of() {
    curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REG/v2/$1/manifests/$2" || fail "cannot GET manifest $1:$2"
}
push() { # REF PATH [ARGS...]
    local ref=$1 path=$2
    shift 2
    berth_ok push artifact "oci://$REG/$ref" --path="$path" --source="$SRC" --revision="$REV" "$@"
}

# ------------------------------------------------------------------ push output
it "push -o json prints url, repository, tag and digest"
push app:v1 "$APP_DIR" -o json
APP_DIGEST=$(jq -r .digest <<<"$OUT")
assert_match "$APP_DIGEST" '^sha256:[0-9a-f]{64}$' "json digest"
assert_eq "oci://$REG/app@$APP_DIGEST" "$(jq -r .url <<<"$OUT")" "json url"
assert_eq "$REG/app" "$(jq -r .repository <<<"$OUT")" "json repository"
assert_eq v1 "$(jq -r .tag <<<"$OUT")" "json tag"
assert_eq "$APP_DIGEST" "$(manifest_of app v1 | sha256_stdin)" "digest of the manifest the registry serves"

# ------------------------------------------------------------------ reproducibility
it "pushing the same content twice gives the same layer digest"
APP_LAYER=$(manifest_of app v1 | jq -r '.layers[0].digest')
push app:again "$APP_DIR"
assert_eq "$APP_LAYER" "$(manifest_of app again | jq -r '.layers[0].digest')" "layer digest of the 2nd push"

it "--reproducible gives the same manifest digest, even from a copy with other mtimes"
push app:r1 "$APP_DIR" --reproducible
R1=${OUT##*@}
assert_eq 1970-01-01T00:00:00Z \
    "$(manifest_of app r1 | jq -r '.annotations["org.opencontainers.image.created"]')" "created annotation"
mkdir -p "$T/app-copy"
cp -R "$APP_DIR/." "$T/app-copy/"
touch -d '2001-02-03 04:05:06' "$T/app-copy/namespace.yaml" "$T/app-copy/workloads/web"
push app:r2 "$T/app-copy" --reproducible
assert_eq "$R1" "${OUT##*@}" "manifest digest of the 2nd reproducible push"
assert_eq "$APP_LAYER" "$(manifest_of app r2 | jq -r '.layers[0].digest')" "layer digest of the copy"

it "extra annotations land in the manifest"
push app:annotated "$APP_DIR" --annotations=org.example.team=platform -a org.example.tier=web
m=$(manifest_of app annotated)
assert_eq platform "$(jq -r '.annotations["org.example.team"]' <<<"$m")" "annotation --annotations"
assert_eq web "$(jq -r '.annotations["org.example.tier"]' <<<"$m")" "annotation -a"
assert_eq "$SRC" "$(jq -r '.annotations["org.opencontainers.image.source"]' <<<"$m")" "source annotation"

# ------------------------------------------------------------------ ignore rules, single file
it "default ignore rules drop .git/ and images; --ignore-paths replaces them"
mkdir -p "$T/app-ign"
cp -R "$APP_DIR/." "$T/app-ign/"
mkdir -p "$T/app-ign/.git" "$T/app-ign/docs"
echo '[core]' >"$T/app-ign/.git/config"
printf 'PNG' >"$T/app-ign/docs/logo.png"
echo '# notes' >"$T/app-ign/docs/README.md"
push app:ign "$T/app-ign"
mkdir -p "$T/out-ign"
berth_ok pull artifact "oci://$REG/app:ign" --output="$T/out-ign"
[ ! -e "$T/out-ign/.git" ] || fail ".git/ was not ignored"
[ ! -e "$T/out-ign/docs/logo.png" ] || fail "*.png was not ignored"
assert_same_file "$T/app-ign/docs/README.md" "$T/out-ign/docs/README.md"
assert_same_tree "$APP_DIR/workloads" "$T/out-ign/workloads"
push app:ign2 "$T/app-ign" --ignore-paths='docs/'
mkdir -p "$T/out-ign2"
berth_ok pull artifact "oci://$REG/app:ign2" --output="$T/out-ign2"
[ ! -e "$T/out-ign2/docs" ] || fail "--ignore-paths=docs/ kept docs/"
[ -f "$T/out-ign2/.git/config" ] || fail "--ignore-paths should replace the defaults (.git/ kept)"

it "a single file is pushed as an artifact holding that file"
push app:file "$APP_DIR/namespace.yaml"
mkdir -p "$T/out-file"
berth_ok pull artifact "oci://$REG/app:file" --output="$T/out-file"
assert_eq namespace.yaml "$(ls -A "$T/out-file")" "files pulled"
assert_same_file "$APP_DIR/namespace.yaml" "$T/out-file/namespace.yaml"

# ------------------------------------------------------------------ diff
it "diff artifact: exit 0 on the same content"
berth_ok diff artifact "oci://$REG/app:v1" --path="$APP_DIR"
assert_contains "$OUT$ERR" "no changes detected" "diff output"
berth_ok diff artifact "oci://$REG/app:v1" --path="$T/app-copy"

it "diff artifact: exit 1 and the differing paths after a change"
sed -i 's/replicas: 2/replicas: 3/' "$T/app-copy/workloads/web/deployment.yaml"
echo 'kind: Secret' >"$T/app-copy/extra.yaml"
bt diff artifact "oci://$REG/app:v1" --path="$T/app-copy"
assert_eq 1 "$RC" "diff exit code"
assert_contains "$OUT$ERR" "workloads/web/deployment.yaml" "diff report (changed file)"
assert_contains "$OUT$ERR" "extra.yaml" "diff report (added file)"
assert_not_contains "$OUT$ERR" "service.yaml" "diff report (unchanged file)"

# ------------------------------------------------------------------ tag
it "tag artifact adds tags pointing at the same manifest"
berth_ok tag artifact "oci://$REG/app:v1" --tag=stable --tag=prod
assert_contains "$OUT" "artifact tagged as $REG/app:stable" "tag output"
assert_contains "$OUT" "artifact tagged as $REG/app:prod" "tag output"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/app:stable"
assert_eq "$APP_DIGEST" "$(printf '%s' "$OUT" | sha256_stdin)" "digest behind the new tag"
berth_ok tag artifact "oci://$REG/app@$APP_DIGEST" --tag=pinned
assert_eq "$APP_DIGEST" "$(manifest_of app pinned | sha256_stdin)" "digest behind a tag made from a digest"

# ------------------------------------------------------------------ list
it "list artifacts: tags with digest, source, revision; signature tags hidden"
for t in 1.0.0 1.2.0 2.0.0 1.2 v1.3.0 "sha256-${APP_DIGEST#sha256:}.sig" 1.2.0.att; do
    berth_ok tag artifact "oci://$REG/app:v1" --tag="$t"
done
# Sanity: the registry does have the signature-like tags.
assert_contains "$(curl -fsS "http://$REG/v2/app/tags/list")" "\"1.2.0.att\"" "registry tags"

# list_tags ARGS...: the tags berth lists with -o json, sorted, space-separated.
list_tags() {
    berth_ok list artifacts "oci://$REG/app" -o json "$@"
    jq -r '.[].tag' <<<"$OUT" | sort | tr '\n' ' ' | sed 's/ $//'
}
all=$(list_tags)
assert_eq "1.0.0 1.2 1.2.0 2.0.0 again annotated file ign ign2 pinned prod r1 r2 stable v1 v1.3.0" \
    "$all" "all listed tags"
berth_ok list artifacts "oci://$REG/app" -o json
assert_eq "$APP_DIGEST" "$(jq -r '.[] | select(.tag == "1.2.0") | .digest' <<<"$OUT")" "json digest of 1.2.0"
assert_eq "$SRC" "$(jq -r '.[] | select(.tag == "1.2.0") | .source' <<<"$OUT")" "json source of 1.2.0"
assert_eq "$REV" "$(jq -r '.[] | select(.tag == "1.2.0") | .revision' <<<"$OUT")" "json revision of 1.2.0"
assert_eq "$REG/app:1.2.0" "$(jq -r '.[] | select(.tag == "1.2.0") | .artifact' <<<"$OUT")" "json artifact of 1.2.0"

berth_ok list artifacts "oci://$REG/app"
assert_match "$(head -n1 <<<"$OUT")" '^ARTIFACT[[:space:]]+DIGEST[[:space:]]+SOURCE[[:space:]]+REVISION' "table header"
assert_match "$OUT" "^$REG/app:2\\.0\\.0[[:space:]]+${APP_DIGEST}[[:space:]]+${SRC}[[:space:]]+${REV}" "table row of 2.0.0"
assert_not_contains "$OUT" ".sig" "table (signature tags are hidden)"

it "list artifacts --filter-semver / --filter-regex"
assert_eq "1.2.0 2.0.0 v1.3.0" "$(list_tags --filter-semver='>=1.2.0')" "--filter-semver >=1.2.0"
assert_eq "1.0.0 1.2.0" "$(list_tags --filter-semver='<1.3.0')" "--filter-semver <1.3.0"
assert_eq "1.0.0 1.2 1.2.0" "$(list_tags --filter-regex='^1\.')" "--filter-regex ^1\\."
assert_eq "r1 r2" "$(list_tags --filter-regex='^r[0-9]$')" "--filter-regex ^r[0-9]\$"
assert_eq "1.2.0" "$(list_tags --filter-semver='<2.0.0' --filter-regex='^1\.2')" "semver and regex together"

# ------------------------------------------------------------------ usage errors
it "usage errors exit 2"
assert_fails --rc 2 "output" berth pull artifact "oci://$REG/app:v1"
assert_fails --rc 2 "no-such-flag" berth push artifact "oci://$REG/app:v1" --path="$APP_DIR" \
    --source="$SRC" --revision="$REV" --no-such-flag
assert_fails "$T/missing-dir" berth pull artifact "oci://$REG/app:v1" --output="$T/missing-dir"

finish
