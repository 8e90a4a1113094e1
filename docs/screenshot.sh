#!/usr/bin/env bash
# Renders the audit page of the shipped sample in headless Chromium and saves it as
# docs/audit.png (the picture in the README). Needs Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --quiet --release -- split samples/shared-pop.mbox --domain example.com \
    --directory samples/directory.csv --out "$work/out" --html "$work/audit.html" >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --window-size=1200,1500 --hide-scrollbars \
    --screenshot="$PWD/docs/audit.png" "file://$work/audit.html" 2>/dev/null
echo "docs/audit.png written"
