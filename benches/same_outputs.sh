#!/bin/bash
# Do two builds of popsplit write the same thing? For a change that must not change
# behaviour (a restructuring, a speed lever): both binaries split the shipped sample
# (Maildir, mbox output, a rerun, the audit page), profile and explain it, and split a
# generated 100 MB mailbox and, when ../shared is beside the repo, its real-mail corpora;
# every output file, its mode, stdout, stderr and the exit status are compared.
#
#   benches/same_outputs.sh OLD_BINARY NEW_BINARY
#
# e.g. build the old commit in a worktree: git worktree add /tmp/old COMMIT &&
# (cd /tmp/old && cargo build --release) && benches/same_outputs.sh
# /tmp/old/target/release/popsplit target/release/popsplit
#
# Prints the checksum of each side's list of sums and "identical", or the differences and
# exit status 1. Left out: the lock file (it holds the process id), and Outlook PST input,
# because readpst writes new MIME boundaries on every run. Both binaries run from the same
# path and write to the same paths, as the audit page quotes the command line.
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,16p' "$0"; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$REPO/../shared/corpora
if [ ! -d "$SHARED" ]; then
    # CI has ../shared: there a missing corpus is a failure, not a skip.
    [ "${CI:-}" != true ] || { echo "$SHARED is missing under CI=true" >&2; exit 1; }
    echo "skipped: ../shared/corpora is not beside this clone; the sample and the generated mailbox only"
fi
# A fixed place, so that the checksums printed are the same from one invocation to the next.
WORK=${TMPDIR:-/tmp}/popsplit-same-outputs
# One comparison at a time in that place: a second one waits for the first.
exec 9>"$WORK.lock"
flock 9
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
cp "$1" "$WORK/old"
cp "$2" "$WORK/new"
cargo build --release --quiet --example generate --manifest-path "$REPO/Cargo.toml"
"${CARGO_TARGET_DIR:-$REPO/target}/release/examples/generate" "$WORK/gen.mbox" 100 postfix >/dev/null

sums() { # SIDE: run every job with that side's binary, print the sums of what it wrote
    local bin=$WORK/bin/popsplit o=$WORK/run
    rm -rf "$o" "$WORK/bin" && mkdir -p "$o" "$WORK/bin" && cp "$WORK/$1" "$bin"
    run() {
        local name=$1
        shift
        (cd "$o" && "$bin" "$@" >"$name.stdout" 2>"$name.stderr"; echo "exit $?" >>"$name.stdout") || true
    }
    local s=$REPO/samples office=(--domain example.com --directory "$REPO/samples/directory.csv")
    run sample split "$s/shared-pop.mbox" "${office[@]}" --out "$o/sample" --report "$o/sample.jsonl" --html "$o/sample.html" --sync none
    run rerun split "$s/shared-pop.mbox" "${office[@]}" --out "$o/sample" --report "$o/rerun.jsonl" --sync none
    run mbox split "$s/shared-pop.mbox" "${office[@]}" --out "$o/mbox" --output-format mbox --sync none
    run profile profile "$s/shared-pop.mbox" "${office[@]}"
    run profile-json profile "$s/shared-pop.mbox" "${office[@]}" --json
    for n in 1 5 12 20 33; do run "explain$n" explain "$s/shared-pop.mbox" "${office[@]}" "$n"; done
    run gen split "$WORK/gen.mbox" --domain example.com --directory "$WORK/gen.mbox.csv" --out "$o/gen" --report "$o/gen.jsonl" --sync none
    if [ -d "$SHARED" ]; then
        run kernel split "$SHARED/kernel-lists/mailbox.mbox.gz" --domain lfdr.de --directory "$SHARED/kernel-lists/directory.csv" --out "$o/kernel" --report "$o/kernel.jsonl" --sync none
        run spamassassin split "$SHARED/spamassassin-tdata.mbox" --domain example.com --allow-unseen-domain --out "$o/sa" --report "$o/sa.jsonl" --sync none
        run sisimai split "$SHARED/sisimai-set-of-emails.mbox" --domain example.com --allow-unseen-domain --out "$o/sis" --report "$o/sis.jsonl" --sync none
    fi
    (cd "$o" && find . -type f ! -name .popsplit.lock | LC_ALL=C sort | while read -r f; do
        printf '%s %s %s\n' "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -c1-64)" "$f"
    done && find . -type d | LC_ALL=C sort | while read -r d; do printf '%s %s\n' "$(stat -c %a "$d")" "$d"; done)
}

sums old >"$WORK/old.sums"
sums new >"$WORK/new.sums"
echo "old: $(sha256sum <"$WORK/old.sums" | cut -c1-16) ($(wc -l <"$WORK/old.sums") entries)"
echo "new: $(sha256sum <"$WORK/new.sums" | cut -c1-16) ($(wc -l <"$WORK/new.sums") entries)"
if diff "$WORK/old.sums" "$WORK/new.sums"; then
    echo identical
else
    exit 1
fi
