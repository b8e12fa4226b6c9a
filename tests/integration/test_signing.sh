#!/bin/bash
# test_signing.sh: cosign-compatible signing and verification against real docker-registry
# instances (issue 3): berth generate-key-pair -> push artifact --sign-key -> verify, classic and
# --bundle; a classic signature made OUTSIDE berth (openssl + curl, the .sig manifest written by
# hand) verifies, and breaks when one byte of the payload, the signature or the artifact
# changes (verify exits 3, pull --verify-key extracts nothing); key lists; berth's output checked
# independently (openssl dgst -verify for the classic signature, sigstore-js for the bundle);
# signatures survive berth copy through an oci-archive into a second registry; and a shorter run
# against the bearer-token registry.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo openssl curl jq tar gzip base64 setsid

SRC=https://example.com/berth/signed.git
REV=main@sha1:5555555555555555555555555555555555555555
SIMPLE_MT=application/vnd.dev.cosign.simplesigning.v1+json
BUNDLE_MT=application/vnd.dev.sigstore.bundle.v0.3+json
OCI_MT=application/vnd.oci.image.manifest.v1+json
export BERTH_PASSWORD=it-key-password
KD=$T/keys
mkdir -p "$KD"

push() { # REF PATH [ARGS...]: berth push artifact to $REG with the registry's flags
    local ref=$1 path=$2
    shift 2
    berth_ok push artifact "oci://$REG/$ref" --path="$path" --source="$SRC" --revision="$REV" \
        "${BERTH_REG_ARGS[@]}" "$@"
}
hex_of() { echo "${1#sha256:}"; }
reg_get() { # PATH [ACCEPT]: GET http://$REG/v2/PATH (plain registry only)
    curl -fsS -H "Accept: ${2:-$OCI_MT}" "http://$REG/v2/$1" || fail "GET $REG/v2/$1 failed"
}
reg_push_blob() { # REPO FILE: a monolithic blob upload with curl (POST, then PUT ?digest=)
    local d loc sep
    d=$(sha256_of "$2")
    loc=$(curl -fsS -X POST -D - -o /dev/null "http://$REG/v2/$1/blobs/uploads/" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    [ -n "$loc" ] || fail "no upload location for $1"
    case $loc in http*) ;; *) loc=http://$REG$loc ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
        "$loc${sep}digest=$d" >/dev/null || fail "blob upload of $2 to $1 failed"
}
reg_put_manifest() { # REPO TAG FILE
    curl -fsS -X PUT -H "Content-Type: $OCI_MT" --data-binary "@$3" \
        "http://$REG/v2/$1/manifests/$2" >/dev/null || fail "manifest PUT $1:$2 failed"
}
cosign_payload() { # DOCKER_REFERENCE DIGEST: the simple-signing payload, as cosign writes it
    printf '{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}' "$1" "$2"
}
cosign_config() { # LAYER_DIGEST: the config cosign writes for a one-layer .sig manifest
    printf '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}' "$1"
}
# push_sig REPO SUBJECT_DIGEST PAYLOAD_FILE SIG_B64: write the .sig manifest by hand, with curl.
push_sig() {
    local repo=$1 subject=$2 payload=$3 sig=$4 w=$T/sig-$RANDOM
    mkdir -p "$w"
    cosign_config "$(sha256_of "$payload")" >"$w/config.json"
    printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%s,"digest":"%s"},"layers":[{"mediaType":"%s","size":%s,"digest":"%s","annotations":{"dev.cosignproject.cosign/signature":"%s"}}]}' \
        "$OCI_MT" "$(stat -c %s "$w/config.json")" "$(sha256_of "$w/config.json")" "$SIMPLE_MT" \
        "$(stat -c %s "$payload")" "$(sha256_of "$payload")" "$sig" >"$w/manifest.json"
    reg_push_blob "$repo" "$payload"
    reg_push_blob "$repo" "$w/config.json"
    reg_put_manifest "$repo" "sha256-$(hex_of "$subject").sig" "$w/manifest.json"
}
# pull_must_fail_verify REF KEY...: pull --verify-key exits 3 and extracts nothing.
pull_must_fail_verify() {
    local ref=$1 out=$T/pull-$RANDOM
    shift
    mkdir -p "$out"
    bt pull artifact "oci://$REG/$ref" --output="$out" "${@/#/--verify-key=}" "${BERTH_REG_ARGS[@]}"
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" = 3 ] || fail "pull --verify-key of $ref: expected exit 3, got $RC"
    assert_empty_dir "$out" "pull output after a failed verification"
}

# sigstore_js: install @sigstore/verify + @sigstore/bundle (pinned in tests/support/package.json)
# into a cache outside the repository once; sets SIGSTORE_JS. Without node/npm or network this
# step is skipped, or fails under BERTH_IT_REQUIRE_ALL=1.
sigstore_js() {
    local dir=${BERTH_NPM_DIR:-${BERTH_BUILD:-$T}/npm-sigstore} want have why=""
    SIGSTORE_JS=""
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        why="node/npm are not installed (Debian: nodejs npm)"
    else
        mkdir -p "$dir"
        cp "$BERTH_SRC/tests/support/package.json" "$BERTH_SRC/tests/support/sigstore-verify.mjs" "$dir/"
        want=$(jq -r '.dependencies["@sigstore/verify"]' "$dir/package.json")
        have=$(jq -r .version "$dir/node_modules/@sigstore/verify/package.json" 2>/dev/null || true)
        if [ "$want" != "$have" ] &&
            ! (cd "$dir" && timeout 300 npm install --no-audit --no-fund --ignore-scripts \
                --loglevel=error >"$T/npm.log" 2>&1); then
            why="npm install failed: $(tail -n 3 "$T/npm.log" | tr '\n' ' ')"
        fi
    fi
    if [ -n "$why" ]; then
        [ "${BERTH_IT_REQUIRE_ALL:-0}" != 1 ] || fail "sigstore-js check impossible: $why"
        log "SKIP the sigstore-js check: $why"
        return 1
    fi
    SIGSTORE_JS=$dir/sigstore-verify.mjs
}

# ================================================================== plain registry
start_registry plain second
REG2=$REG
start_registry plain

it "generate-key-pair writes cosign.key (0600) and cosign.pub"
berth_ok generate-key-pair --output-key-prefix="$KD/cosign"
assert_eq 600 "$(stat -c %a "$KD/cosign.key")" "mode of cosign.key"
assert_contains "$(head -n1 "$KD/cosign.key")" "ENCRYPTED SIGSTORE PRIVATE KEY" "cosign.key label"
openssl pkey -pubin -in "$KD/cosign.pub" -noout || fail "cosign.pub is not a PEM public key"
berth_ok generate-key-pair --output-key-prefix="$KD/second"

# ------------------------------------------------------------------ classic, made by berth
it "push artifact --sign-key, then verify: classic signature by cosign.pub"
push app:v1 "$APP_DIR" --sign-key="$KD/cosign.key"
APP=${OUT##*@}
assert_contains "$ERR" "Signed $REG/app@$APP (classic)" "push --sign-key report"
berth_ok verify "oci://$REG/app:v1" --key="$KD/cosign.pub"
assert_contains "$OUT" "Verified $REG/app@$APP with cosign.pub (classic)" "verify output"
assert_contains "$OUT" "verified classic $REG/app:sha256-$(hex_of "$APP").sig layer 1: key cosign.pub" "verify detail"
berth_ok verify "oci://$REG/app:v1" --key="$KD/cosign.pub" -o json
assert_eq true "$(jq -r .verified <<<"$OUT")" "json verified"
assert_eq "$APP" "$(jq -r .digest <<<"$OUT")" "json digest"
assert_eq "classic cosign.pub" "$(jq -r '.signatures[0] | "\(.format) \(.key)"' <<<"$OUT")" "json entry"

it "berth's .sig manifest is what cosign writes, and openssl verifies the signature"
SIGM=$(reg_get "app/manifests/sha256-$(hex_of "$APP").sig")
assert_eq 1 "$(jq '.layers | length' <<<"$SIGM")" "signature layers"
assert_eq "$SIMPLE_MT" "$(jq -r '.layers[0].mediaType' <<<"$SIGM")" "layer media type"
reg_get "app/blobs/$(jq -r '.layers[0].digest' <<<"$SIGM")" >"$T/berth-payload.json"
cosign_payload "$REG/app" "$APP" >"$T/expected-payload.json"
assert_same_file "$T/expected-payload.json" "$T/berth-payload.json"
cosign_config "$(sha256_of "$T/expected-payload.json")" >"$T/expected-config.json"
assert_eq "$(sha256_of "$T/expected-config.json")" "$(jq -r .config.digest <<<"$SIGM")" "config digest"
jq -r '.layers[0].annotations["dev.cosignproject.cosign/signature"]' <<<"$SIGM" | base64 -d >"$T/berth-sig.der"
V=$(openssl dgst -sha256 -verify "$KD/cosign.pub" -signature "$T/berth-sig.der" "$T/berth-payload.json") ||
    fail "openssl does not verify berth's classic signature: $V"
assert_eq "Verified OK" "$V" "openssl dgst -verify"

it "signing again with the same key adds nothing; another key appends a layer"
berth_ok sign "oci://$REG/app:v1" --key="$KD/cosign.key"
assert_contains "$OUT" "already signed with this key" "sign output"
berth_ok sign "oci://$REG/app:v1" --key="$KD/second.key"
assert_contains "$OUT" "(2 signatures)" "sign output"
SIGM2=$(reg_get "app/manifests/sha256-$(hex_of "$APP").sig")
assert_eq "$(jq -c '.layers[0]' <<<"$SIGM")" "$(jq -c '.layers[0]' <<<"$SIGM2")" "first layer kept"
assert_eq 2 "$(jq '.rootfs.diff_ids | length' <<<"$(reg_get "app/blobs/$(jq -r .config.digest <<<"$SIGM2")")")" "config diff_ids"
berth_ok verify "oci://$REG/app:v1" --key="$KD/second.pub"
assert_contains "$OUT" "with second.pub (classic)" "verify with the second key"

# ------------------------------------------------------------------ bundle, made by berth
it "push artifact --sign-key --bundle, then verify: a bundle referrer"
push app-b:v1 "$APP_DIR" --sign-key="$KD/cosign.key" --bundle --annotations=org.example.b=1
APPB=${OUT##*@}
assert_contains "$ERR" "Signed $REG/app-b@$APPB (bundle)" "push --bundle report"
berth_ok verify "oci://$REG/app-b:v1" --key="$KD/cosign.pub"
assert_contains "$OUT" "with cosign.pub (bundle)" "verify output"
bt verify "oci://$REG/app-b:v1" --key="$KD/second.pub"
assert_eq 3 "$RC" "verify a bundle with the wrong key"
assert_contains "$ERR" "failed   bundle" "per-signature report"

it "the referrer is indexed under the fallback tag and shaped as cosign v3 writes it"
IDX=$(reg_get "app-b/manifests/sha256-$(hex_of "$APPB")" application/vnd.oci.image.index.v1+json)
assert_eq "$BUNDLE_MT" "$(jq -r '.manifests[0].artifactType' <<<"$IDX")" "index entry artifactType"
REFM=$(reg_get "app-b/manifests/$(jq -r '.manifests[0].digest' <<<"$IDX")")
assert_eq "$(jq -r '.manifests[0].digest' <<<"$IDX")" "$(printf '%s' "$REFM" | sha256_stdin)" "referrer digest"
assert_eq "$BUNDLE_MT" "$(jq -r .artifactType <<<"$REFM")" "referrer artifactType"
assert_eq application/vnd.oci.empty.v1+json "$(jq -r .config.mediaType <<<"$REFM")" "empty config"
assert_eq "$APPB" "$(jq -r .subject.digest <<<"$REFM")" "subject digest"
assert_eq dsse-envelope "$(jq -r '.annotations["dev.sigstore.bundle.content"]' <<<"$REFM")" "content annotation"
assert_eq https://sigstore.dev/cosign/sign/v1 \
    "$(jq -r '.annotations["dev.sigstore.bundle.predicateType"]' <<<"$REFM")" "predicate annotation"
reg_get "app-b/blobs/$(jq -r '.layers[0].digest' <<<"$REFM")" >"$T/berth-bundle.json"

it "sigstore-js (@sigstore/verify, offline, key only) verifies berth's bundle"
if sigstore_js; then
    LAST_CMD="node sigstore-verify.mjs"
    OUT=$(node "$SIGSTORE_JS" "$T/berth-bundle.json" "$KD/cosign.pub" "$APPB" 2>&1) ||
        fail "sigstore-js rejects berth's bundle: $OUT"
    assert_contains "$OUT" "VERIFIED" "sigstore-js"
    OUT=$(node "$SIGSTORE_JS" "$T/berth-bundle.json" "$KD/second.pub" 2>&1) &&
        fail "sigstore-js accepted the bundle with the wrong key"
    OUT=$(node "$SIGSTORE_JS" "$T/berth-bundle.json" "$KD/cosign.pub" "$APP" 2>&1) &&
        fail "sigstore-js accepted the bundle for another digest"
    _IT_CHECKS=$((_IT_CHECKS + 2))
fi

# ------------------------------------------------------------------ classic, made outside berth
it "a classic signature made with openssl and pushed with curl verifies"
openssl ecparam -name prime256v1 -genkey -noout -out "$KD/ext.key.pem" 2>/dev/null
openssl ec -in "$KD/ext.key.pem" -pubout -out "$KD/ext.pub" 2>/dev/null
flux_tar_of_dir "$APP_DIR" "$T/ext.tar"
flux_layout_from_tar "$T/ext.tar" "$T/ext-layout" v1 "$SRC" "$REV"
skopeo_push_layout "$T/ext-layout" v1 "$REG/ext:v1"
EXT=$FLUX_MANIFEST_DIGEST
cosign_payload "$REG/ext" "$EXT" >"$T/ext-payload.json"
openssl dgst -sha256 -sign "$KD/ext.key.pem" -out "$T/ext-sig.der" "$T/ext-payload.json"
EXT_SIG=$(base64 -w0 "$T/ext-sig.der")
push_sig ext "$EXT" "$T/ext-payload.json" "$EXT_SIG"
berth_ok verify "oci://$REG/ext:v1" --key="$KD/ext.pub"
assert_contains "$OUT" "with ext.pub (classic)" "verify output"

it "key lists: a wrong key fails with exit 3, a second key that verifies passes and is named"
bt verify "oci://$REG/ext:v1" --key="$KD/cosign.pub"
assert_eq 3 "$RC" "verify with the wrong key"
assert_contains "$ERR" "cosign.pub: signature mismatch" "reason"
berth_ok verify "oci://$REG/ext:v1" --key="$KD/cosign.pub" --key="$KD/ext.pub"
assert_contains "$OUT" "with ext.pub (classic)" "verify with a key list"
mkdir -p "$T/ext-out"
berth_ok pull artifact "oci://$REG/ext:v1" --output="$T/ext-out" --verify-key="$KD/cosign.pub" \
    --verify-key="$KD/ext.pub"
assert_same_tree "$APP_DIR" "$T/ext-out"
assert_contains "$ERR" "verified $EXT with ext.pub (classic)" "pull --verify-key report"
pull_must_fail_verify ext:v1 "$KD/cosign.pub"

it "one byte of the payload changed: verify and pull --verify-key fail"
sed 's/"optional":null/"optional":nulL/' "$T/ext-payload.json" >"$T/ext-payload-bad.json"
assert_eq 1 "$(cmp -l "$T/ext-payload.json" "$T/ext-payload-bad.json" | wc -l)" "bytes changed"
push_sig ext "$EXT" "$T/ext-payload-bad.json" "$EXT_SIG"
bt verify "oci://$REG/ext:v1" --key="$KD/ext.pub"
assert_eq 3 "$RC" "verify a modified payload"
assert_contains "$ERR" "ext.pub: signature mismatch" "reason"
pull_must_fail_verify ext:v1 "$KD/ext.pub"

it "one byte of the signature changed: verify and pull --verify-key fail"
"$PYTHON" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[2], "wb").write(b)' \
    "$T/ext-sig.der" "$T/ext-sig-bad.der"
assert_eq 1 "$(cmp -l "$T/ext-sig.der" "$T/ext-sig-bad.der" | wc -l)" "signature bytes changed"
push_sig ext "$EXT" "$T/ext-payload.json" "$(base64 -w0 "$T/ext-sig-bad.der")"
bt verify "oci://$REG/ext:v1" --key="$KD/ext.pub"
assert_eq 3 "$RC" "verify a modified signature"
assert_contains "$ERR" "ext.pub: signature mismatch" "reason"
pull_must_fail_verify ext:v1 "$KD/ext.pub"

it "the artifact changed under the tag: its digest has no signature, an old one claims the old digest"
push_sig ext "$EXT" "$T/ext-payload.json" "$EXT_SIG" # the good signature again
berth_ok verify "oci://$REG/ext:v1" --key="$KD/ext.pub"
mkdir -p "$T/ext2"
cp -R "$APP_DIR/." "$T/ext2/"
echo 'kind: Secret' >"$T/ext2/injected.yaml"
flux_tar_of_dir "$T/ext2" "$T/ext2.tar"
flux_layout_from_tar "$T/ext2.tar" "$T/ext2-layout" v1 "$SRC" "$REV"
skopeo_push_layout "$T/ext2-layout" v1 "$REG/ext:v1"
EXT2=$FLUX_MANIFEST_DIGEST
assert_ne "$EXT" "$EXT2" "digest after the change"
assert_fails --rc 3 "no signatures found" berth verify "oci://$REG/ext:v1" --key="$KD/ext.pub"
pull_must_fail_verify ext:v1 "$KD/ext.pub"
# The old, valid signature copied to the new digest's .sig tag still names the old digest.
push_sig ext "$EXT2" "$T/ext-payload.json" "$EXT_SIG"
bt verify "oci://$REG/ext:v1" --key="$KD/ext.pub"
assert_eq 3 "$RC" "verify a signature of another digest"
assert_contains "$ERR" "names digest \"$EXT\", not \"$EXT2\"" "reason"
pull_must_fail_verify ext:v1 "$KD/ext.pub"
# The signed digest itself still verifies and pulls.
mkdir -p "$T/ext-old"
berth_ok pull artifact "oci://$REG/ext@$EXT" --output="$T/ext-old" --verify-key="$KD/ext.pub"
assert_same_tree "$APP_DIR" "$T/ext-old"

it "an unsigned artifact: exit 3 'no signatures found'; a missing key file: exit 1"
push plain:v1 "$APP_DIR"
assert_fails --rc 3 "no signatures found for \"$REG/plain:v1\"" berth verify "oci://$REG/plain:v1" \
    --key="$KD/cosign.pub"
assert_fails --rc 1 "nope.pub" berth verify "oci://$REG/app:v1" --key="$KD/nope.pub"
assert_fails --rc 2 "--bundle needs --sign-key" berth push artifact "oci://$REG/x:v1" \
    --path="$APP_DIR" --source="$SRC" --revision="$REV" --bundle
BERTH_PASSWORD=wrong assert_fails --rc 1 "cosign.key" berth sign "oci://$REG/app:v1" --key="$KD/cosign.key"

# ------------------------------------------------------------------ copy keeps signatures
it "berth copy through an oci-archive into a second registry keeps both signatures valid"
berth_ok copy "oci://$REG/app:v1" "oci-archive:$T/signed.tar:v1"
berth_ok copy "oci://$REG/app-b:v1" "oci-archive:$T/signed.tar:b1"
berth_ok copy "oci-archive:$T/signed.tar:v1" "oci://$REG2/app:v1"
berth_ok copy "oci-archive:$T/signed.tar:b1" "oci://$REG2/app-b:v1"
berth_ok verify "oci://$REG2/app:v1" --key="$KD/second.pub"
assert_contains "$OUT" "Verified $REG2/app@$APP with second.pub (classic)" "verify in the 2nd registry"
berth_ok verify "oci://$REG2/app-b:v1" --key="$KD/cosign.pub"
assert_contains "$OUT" "Verified $REG2/app-b@$APPB with cosign.pub (bundle)" "verify in the 2nd registry"
mkdir -p "$T/copy-out"
berth_ok pull artifact "oci://$REG2/app-b:v1" --output="$T/copy-out" --verify-key="$KD/cosign.pub"
assert_same_tree "$APP_DIR" "$T/copy-out"

# ================================================================== token registry
start_registry token
it "[token] push --sign-key (classic and bundle), verify and pull --verify-key"
push tok:v1 "$APP_DIR" --sign-key="$KD/cosign.key"
TOK=${OUT##*@}
push tok-b:v1 "$APP_DIR" --sign-key="$KD/cosign.key" --bundle
berth_ok verify "oci://$REG/tok:v1" --key="$KD/cosign.pub" "${BERTH_REG_ARGS[@]}"
assert_contains "$OUT" "Verified $REG/tok@$TOK with cosign.pub (classic)" "verify output"
berth_ok verify "oci://$REG/tok-b:v1" --key="$KD/cosign.pub" "${BERTH_REG_ARGS[@]}"
assert_contains "$OUT" "with cosign.pub (bundle)" "verify output"
mkdir -p "$T/tok-out"
berth_ok pull artifact "oci://$REG/tok-b:v1" --output="$T/tok-out" --verify-key="$KD/cosign.pub" \
    "${BERTH_REG_ARGS[@]}"
assert_same_tree "$APP_DIR" "$T/tok-out"
pull_must_fail_verify tok:v1 "$KD/second.pub"
assert_match "$(cat "$TOKEN_LOG")" "scope=repository:tok:[a-z,]*push" "token requests"

finish
