#!/bin/bash
# test_faults.sh: berth's retries and Range resume against a real registry behind
# testdata/faultproxy.py. Servers: one plain docker-registry, and one fault proxy per scenario
# (each logs every request it sees, so the tests count exactly what berth sent):
#   - GET manifest answered 500, 500, then passed through: pull succeeds after exactly 3 GETs;
#   - blob upload POST answered 500 twice: push succeeds, the retries are in the log;
#   - the layer GET cut after 64 KiB: pull succeeds and resumes with a Range request (206);
#   - push with --chunk-size: the layer goes in several PATCHes and round-trips intact.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo curl jq tar gzip setsid python3

SRC=https://example.com/berth/faults.git
REV=main@sha1:2222222222222222222222222222222222222222

start_registry plain

# A fixture big enough to cut: the sample app plus 256 KiB of incompressible bytes, made with
# GNU tar and pushed by skopeo straight to the registry (not through a proxy).
mkdir -p "$T/big"
cp -R "$APP_DIR/." "$T/big/"
head -c 262144 /dev/urandom >"$T/big/payload.bin"
flux_tar_of_dir "$T/big" "$T/big.tar"
flux_layout_from_tar "$T/big.tar" "$T/big-layout" v1 "$SRC" "$REV"
skopeo_push_layout "$T/big-layout" v1 "$REG/faults/big:v1"
BIG_DIGEST=$FLUX_MANIFEST_DIGEST
BIG_LAYER=$FLUX_LAYER_DIGEST

# proxy_lines ERE: the proxy log lines matching ERE.
proxy_lines() { grep -E -- "$1" "$PROXY_LOG" || true; }

it "manifest GET answered 500, 500, then 200: berth pull retries and succeeds"
start_faultproxy "$REG" --fail-regex '^GET /v2/faults/big/manifests/' --fail-count 2
mkdir -p "$T/out-500"
berth_ok pull artifact "oci://$PROXY/faults/big:v1" --output="$T/out-500"
assert_same_tree "$T/big" "$T/out-500"
assert_contains "$OUT" "digest: $PROXY/faults/big@$BIG_DIGEST" "pull output"
gets=$(proxy_lines '^GET /v2/faults/big/manifests/')
assert_eq 3 "$(printf '%s\n' "$gets" | grep -c .)" "manifest GETs seen by the proxy"
assert_eq "500 500 200" "$(printf '%s\n' "$gets" | awk '{print $3}' | tr '\n' ' ' | sed 's/ $//')" \
    "statuses of the manifest GETs"

it "blob upload POST answered 500 twice: berth push retries and succeeds"
start_faultproxy "$REG" --fail-regex '^POST /v2/faults/pushed/blobs/uploads/' --fail-count 2
berth_ok push artifact "oci://$PROXY/faults/pushed:v1" --path="$APP_DIR" --source="$SRC" \
    --revision="$REV"
PUSHED=${OUT##*@}
posts=$(proxy_lines '^POST /v2/faults/pushed/blobs/uploads/')
assert_eq "500 500" "$(printf '%s\n' "$posts" | head -n2 | awk '{print $3}' | tr '\n' ' ' | sed 's/ $//')" \
    "first two upload POSTs (injected)"
assert_match "$(printf '%s\n' "$posts" | tail -n +3)" ' 20[12] ' "a later upload POST reached the registry"
assert_match "$(proxy_lines '^PUT /v2/faults/pushed/manifests/v1 ')" ' 201 ' "manifest PUT"
# The registry (asked directly, by skopeo) holds exactly what berth said it pushed.
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/faults/pushed:v1"
assert_eq "$PUSHED" "$(printf '%s' "$OUT" | sha256_stdin)" "pushed manifest digest"

it "layer GET cut after 64 KiB: berth pull resumes with a Range request"
start_faultproxy "$REG" --cut-regex "^GET /v2/faults/big/blobs/$BIG_LAYER" --cut-after 65536
mkdir -p "$T/out-cut"
berth_ok pull artifact "oci://$PROXY/faults/big:v1" --output="$T/out-cut"
assert_same_tree "$T/big" "$T/out-cut"
blob_gets=$(proxy_lines "^GET /v2/faults/big/blobs/$BIG_LAYER ")
assert_contains "$blob_gets" "cut@65536" "the proxy cut the first layer GET"
assert_match "$blob_gets" " 206 range=bytes=[1-9][0-9]*-" "a resumed GET with Range from a non-zero offset"

it "a blob larger than --chunk-size is uploaded in chunked PATCHes"
start_faultproxy "$REG"
berth_ok push artifact "oci://$PROXY/faults/chunked:v1" --path="$T/big" --source="$SRC" \
    --revision="$REV" --chunk-size=65536
CHUNKED=${OUT##*@}
patches=$(proxy_lines '^PATCH /v2/faults/chunked/blobs/uploads/')
# the ~260 KiB layer needs at least 4 chunks of 64 KiB; the small config goes in one PUT
[ "$(printf '%s\n' "$patches" | grep -c ' 202 ')" -ge 4 ] ||
    fail "expected at least 4 accepted PATCH chunks, proxy saw: $patches"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/faults/chunked:v1"
assert_eq "$CHUNKED" "$(printf '%s' "$OUT" | sha256_stdin)" "chunk-pushed manifest digest"
mkdir -p "$T/out-chunked"
berth_ok pull artifact "oci://$REG/faults/chunked:v1" --output="$T/out-chunked"
assert_same_tree "$T/big" "$T/out-chunked"

finish
