#!/bin/bash
# test_negative.sh: berth must fail safely and say why. Servers: docker-registry plain, TLS +
# htpasswd, mTLS, and token auth (testdata/tokensrv.py). Covers rejected credentials (message
# names the registry), TLS without the CA or without the client certificate, a blob and a
# manifest corrupted in the registry's storage (exit 3, "digest", output untouched), hostile
# tars pushed by skopeo as Flux artifacts (refused, nothing written anywhere), unknown tags.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo openssl htpasswd curl jq tar gzip setsid

SRC=https://example.com/berth/neg.git
REV=main@sha1:1111111111111111111111111111111111111111

# push_flux_tar TAR REF: wrap TAR as a Flux artifact and push it with skopeo to REF (current REG).
push_flux_tar() {
    local lay
    lay=$(mktemp -d "$T/layout.XXXX")
    rmdir "$lay"
    flux_layout_from_tar "$1" "$lay" v1 "$SRC" "$REV"
    skopeo_push_layout "$lay" v1 "$2"
}

# ------------------------------------------------------------------ credentials and TLS
start_registry tls
TLS_REG=$REG
TLS_CA=$CA_FILE
flux_tar_of_dir "$APP_DIR" "$T/app.tar"
push_flux_tar "$T/app.tar" "$REG/app:v1"

it "wrong password on the htpasswd registry: non-zero exit naming the registry"
mkdir -p "$T/out-auth"
assert_fails "$TLS_REG" berth pull artifact "oci://$TLS_REG/app:v1" --output="$T/out-auth" \
    --ca-file="$TLS_CA" --creds="$TEST_USER:wrong-password"
assert_eq 1 "$RC" "exit code for rejected credentials"
assert_not_contains "$OUT$ERR" "wrong-password" "berth output (the password must never be printed)"
assert_empty_dir "$T/out-auth"
assert_fails "$TLS_REG" berth push artifact "oci://$TLS_REG/app:v2" --path="$APP_DIR" \
    --source="$SRC" --revision="$REV" --ca-file="$TLS_CA" --creds="$TEST_USER:wrong-password"
assert_not_contains "$OUT$ERR" "wrong-password" "berth output (the password must never be printed)"

it "no credentials on the htpasswd registry: non-zero exit naming the registry"
assert_fails "$TLS_REG" berth pull artifact "oci://$TLS_REG/app:v1" --output="$T/out-auth" \
    --ca-file="$TLS_CA"
assert_empty_dir "$T/out-auth"

it "TLS without --ca-file: the self-signed chain is rejected"
assert_fails "$TLS_REG" berth pull artifact "oci://$TLS_REG/app:v1" --output="$T/out-auth" \
    --creds="$TEST_USER:$TEST_PASS"
assert_empty_dir "$T/out-auth"

start_registry mtls
push_flux_tar "$T/app.tar" "$REG/app:v1"
it "mTLS registry without a client certificate: refused"
assert_fails "$REG" berth list artifacts "oci://$REG/app" --ca-file="$CA_FILE"
it "mTLS registry with the client certificate: accepted (control)"
berth_ok list artifacts "oci://$REG/app" "${BERTH_REG_ARGS[@]}"
assert_contains "$OUT" "$REG/app:v1" "list output"

start_registry token
TOKEN_REG=$REG
push_flux_tar "$T/app.tar" "$REG/app:v1"
it "wrong password at the token server: non-zero exit naming the registry"
assert_fails "$TOKEN_REG" berth pull artifact "oci://$TOKEN_REG/app:v1" --output="$T/out-auth" \
    --creds="$TEST_USER:wrong-password"
assert_eq 1 "$RC" "exit code for rejected credentials"
assert_not_contains "$OUT$ERR" "wrong-password" "berth output (the password must never be printed)"
assert_empty_dir "$T/out-auth"
assert_match "$(cat "$TOKEN_LOG")" '^GET user=\? .* 401$|^POST user=\? .* 401$' "token server log (berth asked it)"

it "anonymous pull works on the token registry (pull-only grant), anonymous push is denied"
mkdir -p "$T/out-anon"
berth_ok pull artifact "oci://$TOKEN_REG/app:v1" --output="$T/out-anon"
assert_same_tree "$APP_DIR" "$T/out-anon"
assert_fails "$TOKEN_REG" berth push artifact "oci://$TOKEN_REG/app:v2" --path="$APP_DIR" \
    --source="$SRC" --revision="$REV"

# ------------------------------------------------------------------ corrupted storage
start_registry plain
push_flux_tar "$T/app.tar" "$REG/corrupt/blob:v1"
LAYER=$FLUX_LAYER_DIGEST
it "a layer blob corrupted in the registry's storage: exit 3, message says digest, output empty"
BLOB=$(registry_blob_path "$REG_ROOT" "$LAYER")
[ -f "$BLOB" ] || fail "layer blob not found in storage at $BLOB"
# Rewrite byte 9 of the gzip header (the OS field, ignored by every inflater): the stream still
# inflates to the very same tar, so only a digest check can notice.
os_byte=$(od -An -tu1 -j9 -N1 "$BLOB" | tr -d ' ')
if [ "$os_byte" = 255 ]; then new_os='\003'; else new_os='\377'; fi
printf "%b" "$new_os" | dd of="$BLOB" bs=1 seek=9 count=1 conv=notrunc status=none
served=$(curl -fsS "http://$REG/v2/corrupt/blob/blobs/$LAYER" | sha256_stdin)
assert_ne "$LAYER" "$served" "digest of the bytes the registry now serves"
assert_eq "$(gzip -dc "$BLOB" | sha256_stdin)" "$(sha256_of "$T/app.tar")" "corrupted blob still inflates to the same tar"
mkdir -p "$T/corrupt/out"
assert_fails --rc 3 digest berth pull artifact "oci://$REG/corrupt/blob:v1" --output="$T/corrupt/out"
assert_contains "$OUT$ERR" "${LAYER#sha256:}" "the message names the layer digest"
assert_empty_dir "$T/corrupt/out" "output dir after a failed verification"
assert_eq out "$(ls -A "$T/corrupt")" "entries beside the output dir (staging must be removed)"

it "a manifest corrupted in storage, pulled by digest: exit 3, message says digest"
push_flux_tar "$T/app.tar" "$REG/corrupt/manifest:v1"
MDIG=$FLUX_MANIFEST_DIGEST
MBLOB=$(registry_blob_path "$REG_ROOT" "$MDIG")
grep -q '"org.opencontainers.image.created":"2025-01-02T03:04:05Z"' "$MBLOB" ||
    fail "unexpected manifest bytes in $MBLOB"
# Same length, still valid JSON: only the digest changes.
sed -i 's/"2025-01-02T03:04:05Z"/"2025-01-02T03:04:06Z"/' "$MBLOB"
mkdir -p "$T/corrupt-m/out"
assert_fails --rc 3 digest berth pull artifact "oci://$REG/corrupt/manifest@$MDIG" --output="$T/corrupt-m/out"
assert_empty_dir "$T/corrupt-m/out"

# ------------------------------------------------------------------ hostile archives
# Each tar starts with a harmless ok.yaml so a partial extraction would show in the output dir.
mkdir -p "$T/outside"
for kind in dotdot absolute symlink hardlink; do
    it "a Flux artifact whose tar has a $kind escape (pushed by skopeo): refused, nothing written"
    case $kind in # ARG for mk_evil_tar, and the entry name the error should mention
    dotdot) arg="" entry="../x" ;;
    absolute) arg="$T/outside/absolute.txt" entry="absolute.txt" ;;
    symlink) arg="$T/outside" entry="link" ;;
    hardlink) arg="$T/outside/target.txt" entry="hl" ;;
    esac
    [ "$kind" != hardlink ] || echo secret >"$T/outside/target.txt"
    mk_evil_tar "$kind" "$T/evil-$kind.tar" "$arg"
    push_flux_tar "$T/evil-$kind.tar" "$REG/evil/$kind:v1"
    mkdir -p "$T/evil-$kind/out"
    assert_fails "$entry" berth pull artifact "oci://$REG/evil/$kind:v1" --output="$T/evil-$kind/out"
    assert_empty_dir "$T/evil-$kind/out" "output dir after refusing a $kind entry"
    assert_eq out "$(ls -A "$T/evil-$kind")" "entries beside the output dir (../x or staging left over?)"
    assert_eq "$([ "$kind" = hardlink ] && echo target.txt)" "$(ls -A "$T/outside")" "files outside the output dir"
done

# ------------------------------------------------------------------ not found
it "an unknown tag: exit 1, not-found error naming the reference"
mkdir -p "$T/out-404"
assert_fails --rc 1 "not found" berth pull artifact "oci://$REG/corrupt/blob:does-not-exist" \
    --output="$T/out-404"
assert_contains "$OUT$ERR" "corrupt/blob:does-not-exist" "the message names the reference"
assert_empty_dir "$T/out-404"
it "an unknown repository: exit 1, naming the repository"
assert_fails --rc 1 "no/such/repo" berth pull artifact "oci://$REG/no/such/repo:v1" --output="$T/out-404"

finish
