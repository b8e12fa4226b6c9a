#!/bin/bash
# test_bootstrap.sh: `berth bootstrap --path` (push DIR plus berth-system/, signed) with and
# without --host, idempotence per artifact and per file, what changes when DIR or a flag
# changes, the artifact's content read back with skopeo and GNU tar, the engine applying it
# (berth-system objects included, as Flux applies flux-system), and bad input: a bad or
# digest reference, a missing DIR, a --verify-key that is not --sign-key's public half, an
# artifact signed with another key, a file that is not a key, a wrong key password, --kube misuse,
# nothing to do, a missing ROOT, a bad --interval, an unsafe --berth-bin.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid tar skopeo

export BERTH_PASSWORD=bootstrap-it-password
ROOT=$T/root
mkdir -p "$ROOT" "$T/keys"
start_registry plain
berth_ok generate-key-pair --output-key-prefix="$T/keys/cosign"
BERTH_PASSWORD= berth_ok generate-key-pair --output-key-prefix="$T/keys/other"
cp -r "$APP_DIR" "$T/fleet"
URL=oci://$REG/fleet

it "CI side: --path pushes DIR plus berth-system/, signed; nothing installed"
berth_ok bootstrap "$URL:prod" --path="$T/fleet" --sign-key="$T/keys/cosign.key" -o json
assert_eq created "$(jq -r .artifact <<<"$OUT")" "artifact state"
D1=$(jq -r .digest <<<"$OUT")
assert_eq '[]' "$(jq -c .files <<<"$OUT")" "no files without --host"
assert_contains "$ERR" "Signed $REG/fleet@$D1"
berth_ok verify "$URL:prod" --key="$T/keys/cosign.pub"
sk copy "${SKOPEO_SRC_ARGS[@]}" "docker://$REG/fleet:prod" "oci:$T/layout:prod"
mf=$(jq -r '.manifests[0].digest' "$T/layout/index.json")
assert_eq "$D1" "$mf" "skopeo sees the digest berth printed"
layer=$(jq -r '.layers[0].digest' "$T/layout/blobs/sha256/${mf#sha256:}")
mkdir "$T/content" && tar -xzf "$T/layout/blobs/sha256/${layer#sha256:}" -C "$T/content"
for f in berth-system/kustomization.yaml berth-system/sync.yaml berth-system/verify-key.yaml \
    config/configmap.yaml workloads/web/deployment.yaml; do
    [ -f "$T/content/$f" ] || fail "the artifact lacks $f"
done
assert_contains "$(cat "$T/content/berth-system/sync.yaml")" "url: \"$URL\""
assert_contains "$(cat "$T/content/berth-system/sync.yaml")" "tag: \"prod\""
assert_contains "$(cat "$T/content/berth-system/verify-key.yaml")" "$(sed -n 2p "$T/keys/cosign.pub")"
[ ! -e "$T/fleet/berth-system" ] || fail "bootstrap must not write into --path"

it "--path and --host: same digest (reproducible), files created; the config equals the artifact's"
berth_ok bootstrap "$URL:prod" --path="$T/fleet" --sign-key="$T/keys/cosign.key" --host="$ROOT" \
    --verify-key="$T/keys/cosign.pub"
assert_match "$OUT" "^artifact +unchanged +$URL:prod@$D1$"
assert_match "$OUT" "^artifact +verified "
assert_contains "$ERR" "already signed with this key"
assert_eq 3 "$(grep -c '^file *created ' <<<"$OUT")" "files created"
assert_same_file "$T/content/berth-system/sync.yaml" "$ROOT/etc/berth/sync.yaml"
assert_same_file "$T/content/berth-system/verify-key.yaml" "$ROOT/etc/berth/verify-key.yaml"

it "the engine applies the artifact, berth-system objects included"
bt run --once --config="$ROOT/etc/berth" --state-dir="$ROOT/var/lib/berth"
[ "$RC" = 0 ] || fail "berth run --once: $ERR"
TGT=$ROOT/var/lib/berth/target
for f in berth-demo/core_ConfigMap_web-config.yaml \
    berth-system/source.toolkit.fluxcd.io_OCIRepository_berth-system.yaml \
    berth-system/kustomize.toolkit.fluxcd.io_Kustomization_berth-system.yaml \
    berth-system/core_Secret_berth-system-verify.yaml; do
    [ -f "$TGT/$f" ] || fail "target lacks $f: $(cd "$TGT" && find . -type f)"
done

it "a changed DIR updates the artifact only; a changed --interval updates sync.yaml only"
sed -i 's/hello from berth/hello again/' "$T/fleet/config/configmap.yaml"
berth_ok bootstrap "$URL:prod" --path="$T/fleet" --sign-key="$T/keys/cosign.key" --host="$ROOT" -o json
assert_eq updated "$(jq -r .artifact <<<"$OUT")"
assert_ne "$D1" "$(jq -r .digest <<<"$OUT")" "new digest"
assert_eq '["unchanged","unchanged","unchanged"]' "$(jq -c '[.files[].state]' <<<"$OUT")"
berth_ok bootstrap "$URL:prod" --path="$T/fleet" --sign-key="$T/keys/cosign.key" --host="$ROOT" \
    --interval=5m -o json
assert_eq updated "$(jq -r .artifact <<<"$OUT")" "the artifact carries sync.yaml too"
assert_eq '["updated","unchanged","unchanged"]' "$(jq -c '[.files[].state]' <<<"$OUT")"
assert_contains "$(cat "$ROOT/etc/berth/sync.yaml")" "interval: 5m"

it "--no-start leaves systemd alone and says how to start the service"
berth_ok bootstrap "$URL:prod" --verify-key="$T/keys/cosign.pub" --host="$ROOT" --interval=5m --no-start
assert_contains "$OUT" "not started: --no-start"

it "--bundle signs with a Sigstore bundle referrer, which the host check accepts"
mkdir "$T/root2"
berth_ok bootstrap "$URL:bundled" --path="$T/fleet" --sign-key="$T/keys/cosign.key" --bundle \
    --host="$T/root2" --no-start
assert_contains "$ERR" "(bundle)"
assert_match "$OUT" "^artifact +verified +$URL:bundled@"
bt run --once --config="$T/root2/etc/berth" --state-dir="$T/root2/var/lib/berth"
assert_eq 0 "$RC" "the engine verifies the bundle: $ERR"

it "bad input: references"
assert_fails --rc 2 "invalid" berth bootstrap "oci://$REG/Fleet:prod" --path="$T/fleet" --host="$ROOT"
assert_fails --rc 2 "berth follows a tag" berth bootstrap "$URL@$D1" --host="$ROOT"
assert_fails --rc 2 "berth follows a tag" berth bootstrap "$URL" --host="$ROOT"
assert_fails --rc 2 "nothing to do" berth bootstrap "$URL:prod"
assert_fails --rc 1 "not found" berth bootstrap "$URL:nope" --host="$ROOT" --verify-key="$T/keys/cosign.pub"

it "bad input: a missing or wrong DIR"
assert_fails --rc 1 "$T/missing" berth bootstrap "$URL:prod" --path="$T/missing"
assert_contains "$ERR" "No such file or directory"
assert_fails --rc 1 "is not a directory" berth bootstrap "$URL:prod" --path="$T/keys/cosign.pub"

it "bad input: keys"
assert_fails --rc 2 "is not the public half" berth bootstrap "$URL:prod" --path="$T/fleet" \
    --sign-key="$T/keys/cosign.key" --verify-key="$T/keys/other.pub"
assert_fails --rc 3 "no signature" berth bootstrap "$URL:prod" --host="$T/root" \
    --verify-key="$T/keys/other.pub"
assert_contains "$ERR" "failed" "each signature's reason is listed"
assert_fails --rc 1 "$T/keys/cosign.key" berth bootstrap "$URL:prod" --host="$ROOT" \
    --verify-key="$T/keys/cosign.key"
berth_ok list artifacts "$URL" -o json
tags_before=$OUT
echo "# changed" >>"$T/fleet/config/configmap.yaml"
BERTH_PASSWORD=wrong assert_fails --rc 1 "cosign.key" berth bootstrap "$URL:prod" --path="$T/fleet" \
    --sign-key="$T/keys/cosign.key"
berth_ok list artifacts "$URL" -o json
assert_eq "$tags_before" "$OUT" "a wrong password pushes nothing"

it "bad input: --kube, ROOT, --interval, --berth-bin"
assert_fails --rc 2 "--push-only needs --path" berth bootstrap "$URL:prod" --kube --push-only
# --kube alone installs what is in the registry: without a cluster it stops before pulling
assert_fails --rc 1 "no Kubernetes configuration" berth bootstrap "$URL:prod" --kube
assert_fails --rc 2 "give one of them" berth bootstrap "$URL:prod" --kube --path="$T/fleet" --host="$ROOT"
assert_fails --rc 2 "--image needs --kube" berth bootstrap "$URL:prod" --path="$T/fleet" --image=berth:2
assert_fails --rc 1 "--image \"berth:\"" berth bootstrap "$URL:prod" --path="$T/fleet" --kube --image=berth:
assert_fails --rc 1 "is not a directory" berth bootstrap "$URL:prod" --host="$T/no-root" \
    --path="$T/fleet" --sign-key="$T/keys/cosign.key"
berth_ok list artifacts "$URL" -o json
assert_eq "$tags_before" "$OUT" "a bad ROOT is found before anything is pushed"
assert_fails --rc 1 "interval" berth bootstrap "$URL:prod" --host="$ROOT" --interval=soon \
    --verify-key="$T/keys/cosign.pub"
assert_fails --rc 1 "absolute path" berth bootstrap "$URL:prod" --host="$ROOT" \
    --verify-key="$T/keys/cosign.pub" --berth-bin="bin/berth --evil"
bt bootstrap "$URL:prod" --host="$ROOT" --no-start
assert_eq 0 "$RC" "no key is allowed"
assert_contains "$ERR" "will not verify signatures" "but warned about"
assert_match "$OUT" "^file +removed +$ROOT/etc/berth/verify-key.yaml$"
assert_not_contains "$(cat "$ROOT/etc/berth/sync.yaml")" "verify:"

it "ROOT=/ with systemd running (a private mount namespace over /etc and /run): systemctl is driven"
# The real / is never written: /etc and /run are fresh tmpfs mounts inside `unshare --mount`
# (private propagation), and systemctl is a stub on PATH that records its arguments.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && unshare --mount --fork true 2>/dev/null &&
    [ ! -e /etc/berth ] && [ ! -e /etc/systemd/system/berth.service ]; then
    mkdir -p "$T/fakebin"
    printf '#!/bin/sh\necho "$*" >>"%s/systemctl.log"\n' "$T" >"$T/fakebin/systemctl"
    chmod +x "$T/fakebin/systemctl"
    cat >"$T/live.sh" <<'LIVE'
set -euo pipefail
cache=$(mktemp "$T/ldcache.XXXXXX")
[ ! -f /etc/ld.so.cache ] || cp /etc/ld.so.cache "$cache"
mount -t tmpfs berth-it-etc /etc
mount -t tmpfs berth-it-run /run
[ ! -s "$cache" ] || cp "$cache" /etc/ld.so.cache
mkdir -p /run/systemd/system
export PATH="$T/fakebin:$PATH"
"$BERTH" bootstrap "$URL:prod" --verify-key="$T/keys/cosign.pub" --host=/ >"$T/live1.out" 2>&1
echo "--" >>"$T/systemctl.log"
"$BERTH" bootstrap "$URL:prod" --verify-key="$T/keys/cosign.pub" --host=/ >"$T/live2.out" 2>&1
echo "--" >>"$T/systemctl.log"
"$BERTH" uninstall --host=/ >"$T/live3.out" 2>&1
find /etc -path /etc/ld.so.cache -prune -o -print | sort >"$T/live-etc.txt"
LIVE
    RC=0
    T=$T BERTH=$BERTH URL=$URL timeout 120 unshare --mount --fork bash "$T/live.sh" || RC=$?
    assert_eq 0 "$RC" "the live-host run: $(cat "$T"/live*.out 2>/dev/null)"
    assert_eq "daemon-reload|enable berth|restart berth|--|enable --now berth|--|disable --now berth|daemon-reload" \
        "$(paste -sd'|' "$T/systemctl.log")" "systemctl calls"
    assert_contains "$(cat "$T/live1.out")" "file      created   /etc/berth/sync.yaml"
    assert_contains "$(cat "$T/live1.out")" "service   restarted berth.service"
    assert_contains "$(cat "$T/live2.out")" "service   enabled berth.service (already up to date)"
    assert_contains "$(cat "$T/live3.out")" "file      removed   /etc/systemd/system/berth.service"
    assert_eq "/etc|/etc/systemd|/etc/systemd/system" "$(paste -sd'|' "$T/live-etc.txt")" \
        "uninstall left only the directories"
    [ ! -e /etc/berth ] || fail "the namespace leaked: /etc/berth exists on the real host"
else
    log "no root, unshare or a clean /etc here: the live-host check is skipped (the rest runs)"
fi

it "uninstall: usage and --kube"
assert_fails --rc 2 "--host=ROOT is required" berth uninstall
assert_fails --rc 2 "no --host or --prune" berth uninstall --kube --host="$ROOT"
assert_fails --rc 1 "is not a directory" berth uninstall --host="$T/no-root"

finish
