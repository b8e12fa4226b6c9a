#!/usr/bin/env bash
# build-image.sh: build berth's container image without a Docker daemon or Docker Hub, from
# Debian's own tools, following deploy/Containerfile's recipe.
#
# Design: deploy/Containerfile's runtime stage is bookworm-slim plus the shared libraries the
# binary links; its build stage compiles berth on bookworm. Here the runtime root filesystem is
# made by debootstrap (minbase, with exactly the packages the Containerfile's runtime stage
# installs, read from that file so there is one list), and berth is built on this machine, which
# must itself be Debian bookworm (so it links the same library versions the image ships). umoci
# turns the tree into an OCI image layout with the Containerfile's USER, WORKDIR, ENTRYPOINT and
# CMD; `berth copy` pushes it when asked. Then the image is checked: unpacked again, every
# library of the binary resolves inside it, and `berth version` runs in it as uid 65532.
#
# Usage: scripts/build-image.sh [--tag=NAME:TAG] [--out=DIR] [--push=REG/REPO:TAG] [--keep]
#   --tag   the image's tag in the layout (default berth:VERSION, as bootstrap --kube's default)
#   --out   where the OCI layout goes (default build-image/oci)
#   --push  push it to a registry with berth copy (flags for the registry: BERTH_COPY_ARGS)
#   --keep  keep the work directory (build-image/work)
# Needs root (debootstrap, chroot), network to a Debian mirror (BERTH_DEBIAN_MIRROR), about
# 400 MB of disk. Not part of the test suite: it is slow and needs the network.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^project(berth VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
tag=berth:${version:-0.0.0}
out=build-image/oci
push=""
keep=false
for a in "$@"; do
    case "$a" in
    --tag=*) tag=${a#--tag=} ;;
    --out=*) out=${a#--out=} ;;
    --push=*) push=${a#--push=} ;;
    --keep) keep=true ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "build-image.sh: unknown argument \"$a\" (see --help)" >&2
        exit 2
        ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "build-image.sh: run as root (debootstrap, chroot)" >&2; exit 1; }
# shellcheck disable=SC1091
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || {
    echo "build-image.sh: this machine is ${PRETTY_NAME:-unknown}, not Debian bookworm: build" \
        "with deploy/Containerfile instead (docker/podman/buildah)" >&2
    exit 1
}

step() { printf '\n== %s\n' "$*" >&2; }
SECONDS=0

step "tools"
need=()
for p in debootstrap umoci; do command -v "$p" >/dev/null || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y --no-install-recommends "${need[@]}"
fi

step "the runtime packages of deploy/Containerfile"
pkgs=$(sed -n '/^FROM debian:bookworm-slim/,$p' deploy/Containerfile | tr -d '\\\n' |
    sed -n 's/.*--no-install-recommends *\([^&]*\)&&.*/\1/p' | xargs)
[ -n "$pkgs" ] || { echo "build-image.sh: no package list found in deploy/Containerfile" >&2; exit 1; }
echo "$pkgs" >&2

step "berth, built on this machine (RelWithDebInfo, as the Containerfile's build stage)"
bash scripts/install-deps.sh >/dev/null
cmake -S . -B build-image/build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERTH_WERROR=ON >/dev/null
cmake --build build-image/build -j"$(nproc)" --target berth_cli >/dev/null

work=build-image/work
rm -rf "$work" "$out"
mkdir -p "$work" "$(dirname "$out")"
rootfs=$work/rootfs
step "the root filesystem: debootstrap --variant=minbase bookworm + $pkgs"
debootstrap --variant=minbase --include="$(tr ' ' , <<<"$pkgs")" bookworm "$rootfs" \
    "${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
# what bookworm-slim leaves out, and what `rm -rf /var/lib/apt/lists/*` removes
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log
install -D -m 0755 build-image/build/berth "$rootfs/usr/local/bin/berth"
strip --strip-debug "$rootfs/usr/local/bin/berth"
mkdir -p "$rootfs/var/lib/berth"
chown 65532:65532 "$rootfs/var/lib/berth"

step "the OCI image ($out:${tag##*:}) with the Containerfile's USER, WORKDIR, ENTRYPOINT, CMD"
umoci init --layout "$out"
umoci new --image "$out:${tag##*:}"
umoci unpack --image "$out:${tag##*:}" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"
mv "$rootfs" "$work/bundle/rootfs"
umoci repack --image "$out:${tag##*:}" "$work/bundle"
umoci config --image "$out:${tag##*:}" --config.user=65532:65532 --config.workingdir=/var/lib/berth \
    --config.entrypoint=/usr/local/bin/berth --config.cmd=--help \
    --history.comment="scripts/build-image.sh (deploy/Containerfile's recipe)"
umoci gc --layout "$out"

step "check: unpacked again, every library resolves, berth runs as uid 65532"
check=$work/check
umoci unpack --image "$out:${tag##*:}" "$check" >/dev/null
missing=$(chroot "$check/rootfs" ldd /usr/local/bin/berth | grep -c 'not found' || true)
[ "$missing" = 0 ] || { chroot "$check/rootfs" ldd /usr/local/bin/berth >&2; exit 1; }
user=$(jq -r '.process.user | "\(.uid):\(.gid)"' "$check/config.json")
[ "$user" = 65532:65532 ] || { echo "build-image.sh: image user is $user" >&2; exit 1; }
chroot --userspec=65532:65532 "$check/rootfs" /usr/local/bin/berth version
chroot --userspec=65532:65532 "$check/rootfs" /usr/local/bin/berth --help >/dev/null

manifest=$(jq -r '.manifests[0].digest' "$out/index.json")
layers=$(jq '[.layers[].size] | add' "$out/blobs/sha256/${manifest#sha256:}")
unpacked=$(du -sb "$check/rootfs" | cut -f1)
printf '\nimage     %s (OCI layout %s, manifest %s)\n' "$tag" "$out" "$manifest"
printf 'size      %s compressed (layers), %s unpacked\n' \
    "$(numfmt --to=iec --suffix=B "$layers")" "$(numfmt --to=iec --suffix=B "$unpacked")"
if [ -n "$push" ]; then
    # shellcheck disable=SC2086
    build-image/build/berth copy "oci-layout:$out:${tag##*:}" "oci://$push" ${BERTH_COPY_ARGS:-}
fi
$keep || rm -rf "$work"
printf 'time      %d s\n' "$SECONDS"
