#!/usr/bin/env bash
# get-kubectl.sh: print the path of Debian's kubectl (package kubernetes-client, v1.20), fetching
# it on first use. The test API server (testdata/kubeapi) is checked against this kubectl so its
# responses are shaped like a real server's.
#
# Design: `apt-get download kubernetes-client` into a temp dir, `dpkg-deb -x` it into a cache dir,
# print <cache>/root/usr/bin/kubectl. Idempotent: when the cached binary runs, nothing is fetched.
# The package is never installed: its /usr/bin/kubectl would replace a kubectl some machines
# already have (a google-cloud-sdk 1.32 on the reference machine). /usr/bin/kubectl is never
# touched.
#
# Usage: scripts/get-kubectl.sh [CACHE_DIR]
#   CACHE_DIR defaults to $BERTH_KUBECTL_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubectl.
# Exit codes: 0 path printed; 1 the download or extraction failed (reason on stderr).
set -euo pipefail

cache=${1:-${BERTH_KUBECTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubectl}}
bin=$cache/root/usr/bin/kubectl

if [ -x "$bin" ] && "$bin" version --client >/dev/null 2>&1; then
    echo "$bin"
    exit 0
fi

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "get-kubectl: '$tool' is not installed (a Debian system is needed)" >&2
        exit 1
    }
done

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get download writes into the current directory; as root it warns that the _apt user
# cannot write there, which is harmless.
if ! (cd "$work" && apt-get download kubernetes-client >"$work/apt.log" 2>&1); then
    echo "get-kubectl: 'apt-get download kubernetes-client' failed:" >&2
    tail -n 5 "$work/apt.log" >&2
    exit 1
fi
deb=
for f in "$work"/kubernetes-client_*.deb; do
    [ -f "$f" ] && deb=$f
done
[ -n "$deb" ] || {
    echo "get-kubectl: apt-get download left no kubernetes-client .deb in '$work'" >&2
    exit 1
}
# Extract next to the final place, then rename, so a concurrent caller never sees half a tree.
dpkg-deb -x "$deb" "$work/root"
[ -x "$work/root/usr/bin/kubectl" ] || {
    echo "get-kubectl: '$(basename "$deb")' holds no usr/bin/kubectl" >&2
    exit 1
}
rm -rf "$cache/root.old"
[ ! -e "$cache/root" ] || mv "$cache/root" "$cache/root.old"
mv "$work/root" "$cache/root"
rm -rf "$cache/root.old"
basename "$deb" >"$cache/package"
"$bin" version --client >/dev/null 2>&1 || {
    echo "get-kubectl: the extracted '$bin' does not run" >&2
    exit 1
}
echo "$bin"
