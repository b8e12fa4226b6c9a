#!/bin/bash
# test_airgap.sh: the disconnected workflow of issue 6 on loopback, with two separate registries:
# A (the CI side) gets a signed artifact from `berth push --sign-key`; `berth copy` writes an
# OCI archive; B (the site, its own storage) receives the archive; `berth bootstrap --host`
# against B writes the host files under $T/root (re-running it changes nothing and says so);
# `berth run --once` plays the systemd service and syncs the fleet to its target; a new version
# pushed to A and carried over by archive reaches the target; a byte-flipped archive is refused
# by `berth copy` at the site, and a consistent but unsigned archive is refused by the host's
# verification; both times the last good state stays. The unit passes `systemd-analyze verify`
# when that tool exists. Nothing reaches any network but the two loopback registries.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry curl jq python3 setsid tar

export BERTH_PASSWORD=airgap-it-password
SRC=https://ci.example/fleet.git
ROOT=$T/root
STATE=$ROOT/var/lib/berth
TGT=$STATE/target
mkdir -p "$ROOT" "$T/keys" "$T/carry"

start_registry plain reg-a
REG_A=$REG
REG_A_ROOT=$REG_ROOT
REG_A_LOG=$REG_LOG
start_registry plain reg-b
REG_B=$REG
assert_ne "$REG_A" "$REG_B" "the two registries"
assert_ne "$REG_A_ROOT" "$REG_ROOT" "the two registries' storage"

berth_ok generate-key-pair --output-key-prefix="$T/keys/cosign"

# the fleet's config, v1 and v2 (greeting changed, Service removed, a ConfigMap added)
cp -r "$APP_DIR" "$T/fleet-v1"
cp -r "$APP_DIR" "$T/fleet-v2"
sed -i 's/hello from berth/hello from berth v2/' "$T/fleet-v2/config/configmap.yaml"
rm "$T/fleet-v2/workloads/web/service.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: added-in-v2\n  namespace: berth-demo\ndata:\n  k: v\n' \
    >"$T/fleet-v2/config/added.yaml"

carry() { # TAG: A -> archive -> B, as the courier does
    rm -f "$T/carry/fleet.tar"
    berth_ok copy "oci://$REG_A/fleet:$1" "oci-archive:$T/carry/fleet.tar:$1"
    berth_ok copy "oci-archive:$T/carry/fleet.tar:$1" "oci://$REG_B/fleet:prod"
}
service_pass() { # the service's work, once
    bt run --once --config="$ROOT/etc/berth" --state-dir="$STATE"
}
greeting() { grep -h GREETING "$TGT"/berth-demo/core_ConfigMap_web-config.yaml; }

it "CI side: push a signed artifact to registry A, carry it to registry B by archive"
berth_ok push artifact "oci://$REG_A/fleet:v1" --path="$T/fleet-v1" --source="$SRC" \
    --revision=v1@sha1:1111111111111111111111111111111111111111 --sign-key="$T/keys/cosign.key" \
    -o json
V1=$(jq -r .digest <<<"$OUT")
carry v1
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG_B/fleet:prod"
assert_eq "$V1" "$(sha256_of "$T/.out")" "the manifest at B, as skopeo reads it"
berth_ok verify "oci://$REG_B/fleet:prod" --key="$T/keys/cosign.pub"
assert_contains "$OUT$ERR" "verified" "the signature travelled with the archive"

it "site: bootstrap the host against registry B (nothing but the public key there)"
a_requests=$(grep -c 'response completed' "$REG_A_LOG" || true)
[ "$a_requests" -gt 0 ] || fail "registry A logged no request at all: counting them proves nothing"
berth_ok bootstrap "oci://$REG_B/fleet:prod" --verify-key="$T/keys/cosign.pub" --host="$ROOT"
assert_match "$OUT" "^artifact +verified +oci://$REG_B/fleet:prod@$V1 " "bootstrap verified the artifact"
assert_match "$OUT" "^file +created +$ROOT/etc/berth/sync.yaml$"
assert_match "$OUT" "^file +created +$ROOT/etc/berth/verify-key.yaml$"
assert_match "$OUT" "^file +created +$ROOT/etc/systemd/system/berth.service$"
assert_contains "$OUT" "ROOT is not this host's /" "no systemctl for a foreign root"
assert_contains "$(cat "$ROOT/etc/berth/sync.yaml")" "url: \"oci://$REG_B/fleet\""
assert_not_contains "$(cat "$ROOT"/etc/berth/*)" "$REG_A" "the site's config names only registry B"
assert_contains "$(cat "$ROOT/etc/berth/verify-key.yaml")" "$(sed -n 2p "$T/keys/cosign.pub")"
assert_contains "$(cat "$ROOT/etc/systemd/system/berth.service")" \
    "ExecStart=$BERTH run --config=/etc/berth --state-dir=/var/lib/berth"
assert_eq 644 "$(stat -c %a "$ROOT/etc/berth/sync.yaml")" "config mode"

it "re-running bootstrap changes nothing and says so (text and -o json)"
before=$(cd "$ROOT" && find . -type f -printf '%p %T@ %s\n' | sort)
berth_ok bootstrap "oci://$REG_B/fleet:prod" --verify-key="$T/keys/cosign.pub" --host="$ROOT"
assert_eq 3 "$(grep -c '^file *unchanged ' <<<"$OUT")" "files unchanged"
assert_not_contains "$OUT" "created"
assert_contains "$OUT" "systemctl enable --now berth" "the command to start it"
berth_ok bootstrap "oci://$REG_B/fleet:prod" --verify-key="$T/keys/cosign.pub" --host="$ROOT" -o json
assert_eq '["unchanged","unchanged","unchanged"]' "$(jq -c '[.files[].state]' <<<"$OUT")"
assert_eq "$V1" "$(jq -r .digest <<<"$OUT")" "json digest"
assert_eq true "$(jq -r .verified <<<"$OUT")" "json verified"
assert_eq manual "$(jq -r .service <<<"$OUT")" "json service"
assert_eq "$before" "$(cd "$ROOT" && find . -type f -printf '%p %T@ %s\n' | sort)" "no file rewritten"

it "the unit passes systemd-analyze verify (when the tool exists)"
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$T/unitcheck"
    cp "$ROOT/etc/systemd/system/berth.service" "$T/unitcheck/"
    RC=0
    timeout 60 systemd-analyze verify "$T/unitcheck/berth.service" >"$T/.out" 2>&1 || RC=$?
    assert_eq 0 "$RC" "systemd-analyze verify: $(cat "$T/.out")"
    assert_eq "" "$(grep -v '^$' "$T/.out" || true)" "systemd-analyze warnings"
else
    log "systemd-analyze not installed: unit check skipped (the rest of the test runs)"
fi

it "the service (berth run --once on ROOT's config) syncs v1 to the target, verified offline"
service_pass
[ "$RC" = 0 ] || fail "berth run --once failed: $ERR"
assert_eq "  GREETING: hello from berth" "$(greeting)" "v1 greeting"
[ -f "$TGT/berth-demo/core_Service_web.yaml" ] || fail "v1 Service missing from the target"
assert_eq "$a_requests" "$(grep -c 'response completed' "$REG_A_LOG" || true)" \
    "requests to registry A while the site bootstrapped and synced"
berth_ok get sources oci --state-dir="$STATE" -o json
assert_eq "berth-system/berth-system prod@$V1" \
    "$(jq -r '.[0] | "\(.namespace)/\(.name) \(.status.artifact.revision)"' <<<"$OUT")" \
    "the host follows the artifact at B"

it "a new version pushed to A and carried by archive reaches the target"
berth_ok push artifact "oci://$REG_A/fleet:v2" --path="$T/fleet-v2" --source="$SRC" \
    --revision=v2@sha1:2222222222222222222222222222222222222222 --sign-key="$T/keys/cosign.key"
carry v2
service_pass
[ "$RC" = 0 ] || fail "berth run --once (v2) failed: $ERR"
assert_eq "  GREETING: hello from berth v2" "$(greeting)" "v2 greeting"
[ ! -e "$TGT/berth-demo/core_Service_web.yaml" ] || fail "the Service removed in v2 is still there"
[ -f "$TGT/berth-demo/core_ConfigMap_added-in-v2.yaml" ] || fail "v2's new ConfigMap is missing"
good=$(cd "$TGT" && find . -type f -exec sha256sum {} + | sort)

it "a byte-flipped archive is refused at the site; registry B and the target keep v2"
cp -r "$T/fleet-v2" "$T/fleet-v3"
sed -i 's/hello from berth v2/hello from berth v3/' "$T/fleet-v3/config/configmap.yaml"
berth_ok push artifact "oci://$REG_A/fleet:v3" --path="$T/fleet-v3" --source="$SRC" \
    --revision=v3@sha1:3333333333333333333333333333333333333333 --sign-key="$T/keys/cosign.key"
rm -f "$T/carry/fleet.tar"
berth_ok copy "oci://$REG_A/fleet:v3" "oci-archive:$T/carry/fleet.tar:v3"
mkdir "$T/evil" && tar -xf "$T/carry/fleet.tar" -C "$T/evil"
mf=$(jq -r '.manifests[] | select(.annotations."org.opencontainers.image.ref.name" == "v3") | .digest' \
    "$T/evil/index.json")
layer=$(jq -r '.layers[0].digest' "$T/evil/blobs/sha256/${mf#sha256:}")
[ -f "$T/evil/blobs/sha256/${layer#sha256:}" ] || fail "layer $layer not in the archive"
python3 - "$T/evil/blobs/sha256/${layer#sha256:}" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0xff
open(p, 'wb').write(bytes(b))
EOF
(cd "$T/evil" && tar -cf "$T/carry/evil.tar" .)
berth_ok list artifacts "oci://$REG_B/fleet" -o json
before_b=$OUT
assert_fails --rc 3 "sha256" berth copy "oci-archive:$T/carry/evil.tar:v3" "oci://$REG_B/fleet:prod"
berth_ok list artifacts "oci://$REG_B/fleet" -o json
assert_eq "$before_b" "$OUT" "registry B unchanged after the refused copy"
service_pass
[ "$RC" = 0 ] || fail "berth run --once after the refused copy: $ERR"
assert_eq "$good" "$(cd "$TGT" && find . -type f -exec sha256sum {} + | sort)" "target keeps v2"

it "a consistent but unsigned archive passes copy, is refused by the host, the target keeps v2"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: berth-demo\ndata:\n  GREETING: "owned"\n' \
    >"$T/evil.yaml"
mkdir -p "$T/evil-fleet" && cp "$T/evil.yaml" "$T/evil-fleet/"
berth_ok push artifact "oci://$REG_A/fleet:evil" --path="$T/evil-fleet" --source="$SRC" \
    --revision=evil@sha1:4444444444444444444444444444444444444444
carry evil
service_pass
assert_eq 1 "$RC" "berth run --once must fail on an unsigned artifact"
assert_match "$ERR$OUT" "verif" "the failure is a verification failure"
assert_eq "$good" "$(cd "$TGT" && find . -type f -exec sha256sum {} + | sort)" "target keeps v2"
berth_ok get sources oci --state-dir="$STATE"
assert_match "$OUT" "False" "the OCIRepository is not Ready"

it "uninstall removes the unit and config, keeps the applied objects; --prune deletes them"
berth_ok uninstall --host="$ROOT"
assert_match "$OUT" "^file +removed +$ROOT/etc/systemd/system/berth.service$"
[ ! -e "$ROOT/etc/berth" ] || fail "$ROOT/etc/berth should be gone (it held only berth's files)"
assert_eq "$good" "$(cd "$TGT" && find . -type f -exec sha256sum {} + | sort)" "objects kept"
berth_ok uninstall --host="$ROOT" --prune -o json
assert_eq '["absent","absent","absent"]' "$(jq -c '[.files[].state]' <<<"$OUT")"
n=$(jq -r .pruned <<<"$OUT")
assert_eq "$(grep -c . <<<"$good")" "$n" "every applied object pruned"
assert_eq "" "$(cd "$TGT" && find . -type f)" "target empty after --prune"

finish
