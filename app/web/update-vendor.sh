#!/usr/bin/env bash
# Refresh the vendored uPlot (the web page's charts) from the npm registry: one command, pinned version.
#   app/web/update-vendor.sh [VERSION]      (default: the version in VENDOR.txt)
set -euo pipefail
cd "$(dirname "$0")"
version="${1:-$(sed -n 's/^uplot //p' vendor/VENDOR.txt)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "uplot@$version" --silent >/dev/null && tar -xzf "uplot-$version.tgz")
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" vendor/
cp "$tmp/package/LICENSE" vendor/uPlot.LICENSE
printf 'uplot %s\n' "$version" > vendor/VENDOR.txt
echo "uPlot $version vendored into app/web/vendor/"
