#!/bin/bash
# test_copy_list.sh: `berth copy --from-list` / `--to-registry` (issue 6), mirroring many
# references in one run against real docker-registry instances: a signed Flux artifact, a second
# artifact (by tag and by digest) and a two-platform image index made with umoci and pushed by
# skopeo go registry -> one oci-archive -> a second registry under a prefix; digests are checked
# with skopeo (index children included), skopeo reads the archive by the names berth wrote, and
# the signature still verifies at the site. Resume: a run whose one reference fails (an injected
# 403 on its tag PUT) keeps a journal, and the rerun finishes without touching the references
# done before and without uploading a single blob again (proxy log); a run killed with -9 while
# writing an archive leaves no archive, and the rerun completes it without fetching the finished
# reference again. Failures: a missing reference fails alone (named, exit 1, the others copied),
# two references mapped to one destination and a malformed list line are refused up front.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo umoci jq curl tar sha256sum setsid

export BERTH_PASSWORD=it-copy-list
SRC_URL=https://example.com/berth/mirror.git
REV=main@sha1:6666666666666666666666666666666666666666

raw_digest() { # DOCKER_REF [SKOPEO_ARGS...]: sha256 of the manifest bytes skopeo reads
    local ref=$1
    shift
    sk inspect --raw "$@" "docker://$ref"
    echo "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" # sk keeps the exact bytes in $T/.out
}
layout_raw_digest() { # TRANSPORT:PATH:NAME: the same for an oci-archive/oci layout name
    sk inspect --raw "$1"
    echo "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)"
}

start_registry plain src
REG_SRC=$REG
start_registry plain site
REG_SITE=$REG
start_registry plain mirror
REG_MIRROR=$REG

# ------------------------------------------------------------------ fixtures
it "fixtures: a signed artifact, a second artifact and a two-platform index (umoci + skopeo)"
mkdir -p "$T/app" "$T/cfg"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n' >"$T/app/cm.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n' >"$T/cfg/cm.yaml"
berth_ok generate-key-pair --output-key-prefix="$T/cosign"
berth_ok push artifact "oci://$REG_SRC/team/app:v1" --path="$T/app" --source="$SRC_URL" \
    --revision="$REV" --sign-key="$T/cosign.key"
APP_DIGEST=$(raw_digest "$REG_SRC/team/app:v1" --tls-verify=false)
berth_ok push artifact "oci://$REG_SRC/team/cfg:v2" --path="$T/cfg" --source="$SRC_URL" \
    --revision="$REV"
CFG_DIGEST=$(raw_digest "$REG_SRC/team/cfg:v2" --tls-verify=false)

L=$T/umoci
umoci init --layout "$L"
for arch in amd64 arm64; do
    umoci new --image "$L:$arch"
    umoci config --image "$L:$arch" --architecture="$arch" --os=linux
    echo "hello from $arch" >"$T/hello-$arch"
    umoci insert --image "$L:$arch" "$T/hello-$arch" /hello
done
# the index over both manifests, written as a blob and named "multi" in index.json
"$PYTHON" - "$L" <<'PY'
import hashlib, json, os, sys
lay = sys.argv[1]
ix = json.load(open(os.path.join(lay, "index.json")))
kids = []
for m in ix["manifests"]:
    arch = m["annotations"]["org.opencontainers.image.ref.name"]
    kids.append({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                 "platform": {"architecture": arch, "os": "linux"}})
body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": kids}, separators=(",", ":")).encode()
hexd = hashlib.sha256(body).hexdigest()
open(os.path.join(lay, "blobs", "sha256", hexd), "wb").write(body)
ix["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                        "digest": "sha256:" + hexd, "size": len(body),
                        "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(ix, open(os.path.join(lay, "index.json"), "w"))
PY
sk copy --quiet --all --preserve-digests --dest-tls-verify=false "oci:$L:multi" \
    "docker://$REG_SRC/lib/multi:1.0"
MULTI_DIGEST=$(raw_digest "$REG_SRC/lib/multi:1.0" --tls-verify=false)
sk inspect --raw --tls-verify=false "docker://$REG_SRC/lib/multi:1.0"
mapfile -t MULTI_KIDS < <(jq -r '.manifests[].digest' <<<"$OUT")
assert_eq 2 "${#MULTI_KIDS[@]}" "children of the test index"

cat >"$T/refs.txt" <<EOF
# what the site needs
$REG_SRC/team/app:v1
oci://$REG_SRC/team/cfg:v2   # a comment after blanks

$REG_SRC/lib/multi:1.0
$REG_SRC/team/cfg@$CFG_DIGEST
$REG_SRC/team/app:v1
EOF

# ------------------------------------------------------------------ registry -> archive
it "--from-list into one oci-archive: every reference under its full name, signature included"
berth_ok copy --from-list="$T/refs.txt" "oci-archive:$T/mirror.tar"
assert_contains "$OUT" "copied  $REG_SRC/lib/multi:1.0 -> oci-archive:$T/mirror.tar:$REG_SRC/lib/multi:1.0 ($MULTI_DIGEST"
assert_contains "$OUT" "4 references: 4 copied, 0 done in an earlier run, 0 failed"
[ ! -e "$T/mirror.tar.berth-progress.json" ] || fail "journal left after a complete run"
[ ! -e "$T/mirror.tar.berth-partial" ] || fail "staging directory left after a complete run"
tar -xOf "$T/mirror.tar" index.json >"$T/mirror-index.json"
for pair in "team/app:v1=$APP_DIGEST" "team/cfg:v2=$CFG_DIGEST" "lib/multi:1.0=$MULTI_DIGEST" \
    "team/cfg@$CFG_DIGEST=$CFG_DIGEST"; do
    name=$REG_SRC/${pair%%=*}
    got=$(jq -r --arg n "$name" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' \
        "$T/mirror-index.json")
    assert_eq "${pair#*=}" "$got" "archive entry $name"
done
sig_tag="sha256-${APP_DIGEST#sha256:}.sig"
assert_contains "$(cat "$T/mirror-index.json")" "\"$sig_tag\"" "the signature tag in the archive"
# skopeo (containers/image) finds the references by the names berth wrote
got=$(layout_raw_digest "oci-archive:$T/mirror.tar:$REG_SRC/lib/multi:1.0")
assert_eq "$MULTI_DIGEST" "$got" "skopeo reads the index from the archive by name"

# ------------------------------------------------------------------ archive -> registry
it "oci-archive --to-registry HOST/PREFIX: every name lands under the prefix, digests unchanged"
berth_ok copy "oci-archive:$T/mirror.tar" --to-registry="$REG_SITE/site" -o json
assert_eq 4 "$(jq '.copied' <<<"$OUT")" "copied (json)"
assert_eq 0 "$(jq '.failed' <<<"$OUT")" "failed (json)"
assert_eq null "$(jq -r '.state_file' <<<"$OUT")" "no journal kept (json)"
assert_eq "$REG_SITE/site/lib/multi:1.0" \
    "$(jq -r --arg s "$REG_SRC/lib/multi:1.0" '.references[] | select(.source == $s) | .destination' <<<"$OUT")"
assert_eq "$APP_DIGEST" "$(raw_digest "$REG_SITE/site/team/app:v1" --tls-verify=false)" "app at the site"
assert_eq "$CFG_DIGEST" "$(raw_digest "$REG_SITE/site/team/cfg:v2" --tls-verify=false)" "cfg at the site"
assert_eq "$MULTI_DIGEST" "$(raw_digest "$REG_SITE/site/lib/multi:1.0" --tls-verify=false)" "index at the site"
for kid in "${MULTI_KIDS[@]}"; do
    assert_eq "$kid" "$(raw_digest "$REG_SITE/site/lib/multi@$kid" --tls-verify=false)" "child $kid"
    sk inspect --tls-verify=false "docker://$REG_SITE/site/lib/multi@$kid" # config readable too
done
berth_ok verify "oci://$REG_SITE/site/team/app:v1" --key="$T/cosign.pub"
assert_contains "$OUT" "Verified"
mkdir -p "$T/pulled"
berth_ok pull artifact "oci://$REG_SITE/site/team/app:v1" --output="$T/pulled" \
    --verify-key="$T/cosign.pub"
assert_same_tree "$T/app" "$T/pulled"

it "a list selects names from the archive; names not in it fail alone"
printf '%s\n%s\n' "$REG_SRC/team/cfg:v2" "$REG_SRC/team/absent:v9" >"$T/pick.txt"
bt copy "oci-archive:$T/mirror.tar" --from-list="$T/pick.txt" --to-registry="$REG_SITE/pick" \
    --state-file="$T/pick.progress.json"
assert_eq 1 "$RC" "exit status with one failed reference"
assert_contains "$OUT" "copied  $REG_SRC/team/cfg:v2 -> $REG_SITE/pick/team/cfg:v2"
assert_contains "$OUT" "failed  $REG_SRC/team/absent:v9"
assert_contains "$ERR" "1 of 2 references failed: $REG_SRC/team/absent:v9"
assert_eq "$CFG_DIGEST" "$(raw_digest "$REG_SITE/pick/team/cfg:v2" --tls-verify=false)"

it "an archive written by skopeo (short names) goes out by its stored names"
sk copy --quiet --preserve-digests --src-tls-verify=false "docker://$REG_SRC/team/cfg:v2" \
    "oci-archive:$T/foreign.tar:v1"
berth_ok copy "oci-archive:$T/foreign.tar" --to-registry="$REG_SITE/foreign"
assert_contains "$OUT" "copied  v1 -> $REG_SITE/foreign/library/v1:latest"
assert_eq "$CFG_DIGEST" "$(raw_digest "$REG_SITE/foreign/library/v1:latest" --tls-verify=false)"

# ------------------------------------------------------------------ registry -> registry, resume
it "registry -> registry through a proxy that refuses one tag PUT: the others finish, exit 1"
start_faultproxy "$REG_MIRROR" --fail-regex "^PUT /v2/m/lib/multi/manifests/1\\.0" \
    --fail-count 1 --fail-status 403
bt copy --from-list="$T/refs.txt" --to-registry="$PROXY/m" -o json
assert_eq 1 "$RC" "exit status"
assert_eq 3 "$(jq '.copied' <<<"$OUT")" "copied before the failure"
assert_eq 1 "$(jq '.failed' <<<"$OUT")" "failed"
assert_eq "$REG_SRC/lib/multi:1.0" "$(jq -r '.references[] | select(.status == "failed") | .source' <<<"$OUT")"
assert_contains "$(jq -r '.references[] | select(.status == "failed") | .error' <<<"$OUT")" "403"
assert_contains "$ERR" "references failed: $REG_SRC/lib/multi:1.0"
JOURNAL=$T/refs.txt.berth-progress.json
assert_eq "$(jq -r '.state_file' <<<"$OUT")" "$JOURNAL" "journal named in the json"
assert_eq 3 "$(jq '.done | length' "$JOURNAL")" "references recorded as done"
uploads_before=$(grep -c '^POST /v2/m/lib/multi/blobs/uploads' "$PROXY_LOG" || true)
[ "$uploads_before" -ge 4 ] || fail "the failed reference sent its blobs first ($uploads_before uploads)"
cp "$PROXY_LOG" "$T/run1.log"
: >"$PROXY_LOG"

it "the rerun resumes: done references untouched, no blob uploaded again, journal removed"
bt copy --from-list="$T/refs.txt" --to-registry="$PROXY/m"
assert_eq 0 "$RC" "rerun exit status: $ERR"
assert_contains "$OUT" "done    $REG_SRC/team/app:v1 -> $PROXY/m/team/app:v1 ($APP_DIGEST, in an earlier run)"
assert_contains "$OUT" "copied  $REG_SRC/lib/multi:1.0 -> $PROXY/m/lib/multi:1.0 ($MULTI_DIGEST, 0 blobs sent"
assert_contains "$OUT" "4 references: 1 copied, 3 done in an earlier run, 0 failed"
log2=$(cat "$PROXY_LOG")
assert_not_contains "$log2" "/blobs/uploads" "blob uploads in the rerun"
assert_not_contains "$log2" "/v2/m/team/" "requests for references done in the first run"
assert_contains "$log2" "PUT /v2/m/lib/multi/manifests/1.0 201" "the index tagged in the rerun"
[ ! -e "$JOURNAL" ] || fail "journal left after the run completed"
assert_eq "$MULTI_DIGEST" "$(raw_digest "$REG_MIRROR/m/lib/multi:1.0" --tls-verify=false)"
assert_eq "$APP_DIGEST" "$(raw_digest "$REG_MIRROR/m/team/app:v1" --tls-verify=false)"
berth_ok verify "oci://$REG_MIRROR/m/team/app:v1" --key="$T/cosign.pub"

# ------------------------------------------------------------------ kill -9 while writing an archive
it "kill -9 during a copy into an archive: no archive, the rerun finishes without refetching"
start_faultproxy "$REG_SRC" --delay-regex "^GET /v2/team/cfg/blobs/" --delay-ms 1500
printf '%s\n%s\n' "$PROXY/team/app:v1" "$PROXY/team/cfg:v2" >"$T/slow.txt"
"$BERTH" copy --from-list="$T/slow.txt" "oci-archive:$T/killed.tar" >"$T/killed.out" 2>&1 &
victim=$!
wait_until berth-copy "$victim" "$T/killed.out" \
    jq -e '.done | length == 1' "$T/killed.tar.berth-progress.json"
wait_until berth-copy "$victim" "$T/killed.out" grep -q "GET /v2/team/cfg/blobs/" "$PROXY_LOG"
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
[ ! -e "$T/killed.tar" ] || fail "an archive was written by the killed run"
[ -d "$T/killed.tar.berth-partial" ] || fail "no staging directory kept"
app_gets=$(grep -c "^GET /v2/team/app/" "$PROXY_LOG" || true)
[ "$app_gets" -ge 1 ] || fail "the first run did not fetch the app"
: >"$PROXY_LOG"
berth_ok copy --from-list="$T/slow.txt" "oci-archive:$T/killed.tar"
assert_contains "$OUT" "done    $PROXY/team/app:v1"
assert_contains "$OUT" "2 references: 1 copied, 1 done in an earlier run, 0 failed"
assert_not_contains "$(cat "$PROXY_LOG")" "/v2/team/app/" "requests for the finished reference"
[ ! -e "$T/killed.tar.berth-partial" ] || fail "staging directory left"
names=$(tar -xOf "$T/killed.tar" index.json | jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"]' | sort)
assert_contains "$names" "$PROXY/team/app:v1"
assert_contains "$names" "$PROXY/team/cfg:v2"
got=$(layout_raw_digest "oci-archive:$T/killed.tar:$PROXY/team/cfg:v2")
assert_eq "$CFG_DIGEST" "$got" "cfg in the resumed archive"

# ------------------------------------------------------------------ refused up front
it "two references mapped to one destination are refused before anything is copied"
printf '%s\n%s\n' "$REG_SRC/team/app:v1" "$REG_SITE/team/app:v1" >"$T/clash.txt"
assert_fails --rc 1 "would both be copied to \"$REG_MIRROR/clash/team/app:v1\"" \
    berth copy --from-list="$T/clash.txt" --to-registry="$REG_MIRROR/clash"
tags=$(curl -s "http://$REG_MIRROR/v2/clash/team/app/tags/list")
assert_not_contains "$tags" '"v1"' "nothing copied"

it "a malformed list line is named with its file and line number"
printf '# ok\n%s\nnot a reference!\n' "$REG_SRC/team/app:v1" >"$T/bad.txt"
assert_fails --rc 1 "$T/bad.txt:3" berth copy --from-list="$T/bad.txt" --to-registry="$REG_MIRROR/x"

it "a journal of another destination is not reused"
echo '{"version":1,"destination":"registries -> elsewhere","done":{}}' >"$T/other.json"
assert_fails --rc 1 "belongs to a copy" berth copy --from-list="$T/refs.txt" \
    --to-registry="$REG_MIRROR/y" --state-file="$T/other.json"

it "list mode usage errors"
assert_fails --rc 2 "list mode" berth copy --from-list="$T/refs.txt"
assert_fails --rc 2 "list mode" berth copy --from-list="$T/refs.txt" "oci-archive:$T/a.tar" "oci-archive:$T/b.tar"
assert_fails --rc 2 "list mode takes oci-archive:FILE" berth copy --from-list="$T/refs.txt" "oci://$REG_MIRROR/z"
berth_ok copy --help
assert_contains "$OUT" "--from-list"
assert_contains "$OUT" "--to-registry"

finish
