#!/bin/bash
# test_harness.sh: checks the test servers themselves (no berth involved), so a broken harness
# cannot make the other scripts pass or fail for the wrong reason. Servers: a plain registry, a
# token-auth registry with testdata/tokensrv.py, and testdata/faultproxy.py.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo openssl curl jq tar gzip setsid python3

start_registry plain
flux_tar_of_dir "$APP_DIR" "$T/app.tar"
flux_layout_from_tar "$T/app.tar" "$T/layout" v1 https://example.com/h.git main@sha1:abc
skopeo_push_layout "$T/layout" v1 "$REG/h/app:v1"

it "flux_layout_from_tar + skopeo store the manifest byte for byte"
raw=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/h/app/manifests/v1")
assert_eq "$FLUX_MANIFEST_DIGEST" "$(printf '%s' "$raw" | sha256_stdin)" "manifest digest"
assert_eq "$FLUX_LAYER_DIGEST" "$(jq -r '.layers[0].digest' <<<"$raw")" "layer digest"
[ -f "$(registry_blob_path "$REG_ROOT" "$FLUX_LAYER_DIGEST")" ] || fail "registry_blob_path is wrong"

it "faultproxy: N injected failures, then pass-through; the log counts them"
start_faultproxy "$REG" --fail-regex '^GET /v2/h/app/manifests/' --fail-count 2 --fail-status 503
codes=""
for _ in 1 2 3; do
    codes+="$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$PROXY/v2/h/app/manifests/v1") "
done
assert_eq "503 503 200 " "$codes" "statuses through the proxy"
assert_eq 2 "$(grep -c ' injected$' "$PROXY_LOG")" "injected lines in the proxy log"

it "faultproxy: a cut transfer, then a Range request answered 206"
start_faultproxy "$REG" --cut-regex "^GET /v2/h/app/blobs/$FLUX_LAYER_DIGEST" --cut-after 100
rc=0
curl -fsS -o "$T/part" "http://$PROXY/v2/h/app/blobs/$FLUX_LAYER_DIGEST" 2>/dev/null || rc=$?
assert_eq 18 "$rc" "curl exit code for a truncated transfer (CURLE_PARTIAL_FILE)"
assert_eq 100 "$(stat -c %s "$T/part")" "bytes received before the cut"
code=$(curl -sS -o "$T/rest" -w '%{http_code}' -H 'Range: bytes=100-' \
    "http://$PROXY/v2/h/app/blobs/$FLUX_LAYER_DIGEST")
assert_eq 206 "$code" "status of the Range request"
assert_eq "$FLUX_LAYER_DIGEST" "$(cat "$T/part" "$T/rest" | sha256_stdin)" "resumed blob digest"
assert_match "$(cat "$PROXY_LOG")" "^GET /v2/h/app/blobs/$FLUX_LAYER_DIGEST 206 range=bytes=100-$" "proxy log"

it "tokensrv: berth:s3cret may push, anonymous may only pull, a wrong password gets 401"
start_registry token
skopeo_push_layout "$T/layout" v1 "$REG/h/app:v1"
sk inspect --raw --tls-verify=false "docker://$REG/h/app:v1"
assert_eq "$FLUX_MANIFEST_DIGEST" "$(printf '%s' "$OUT" | sha256_stdin)" "anonymous pull"
assert_fails denied skopeo --policy "$T/policy.json" copy --quiet --dest-tls-verify=false \
    "oci:$T/layout:v1" "docker://$REG/h/app:anon"
assert_fails "invalid username/password" skopeo --policy "$T/policy.json" inspect --raw \
    --tls-verify=false --creds "$TEST_USER:nope" "docker://$REG/h/app:v1"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$TEST_USER:nope" "$TOKEN_URL?service=berth-it-registry")
assert_eq 401 "$code" "token endpoint with a wrong password"
code=$(curl -s -o /dev/null -w '%{http_code}' \
    --data "grant_type=password&username=$TEST_USER&password=$TEST_PASS&service=berth-it-registry&scope=repository:h/app:pull" \
    "$TOKEN_URL")
assert_eq 200 "$code" "OAuth2 password grant"

finish
