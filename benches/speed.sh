#!/usr/bin/env bash
# Speed and memory benchmark: popsplit against the floor (a bare split-and-write with the
# same splitter and the same durability policy), one thread against two, gzip against
# plain, peak memory at two input sizes, and formail+procmail on the same kind of input.
#
#   benches/speed.sh [SIZE_MB] [RUNS]      (defaults: 1000 MB, 5 runs of each)
#
# Inputs come from the project's generator (examples/generate.rs, Postfix style, ~40 KB
# messages, one copy per envelope recipient). Work files go to $POPSPLIT_BENCH_DIR (default
# a new temporary folder), and are removed at the end unless POPSPLIT_BENCH_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1000}
RUNS=${2:-5}
WORK=${POPSPLIT_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
cleanup() { [ "${POPSPLIT_BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null; }; }
need /usr/bin/time time
need procmail procmail
need gzip gzip

cargo build --release --quiet --bin popsplit --example generate --example floor
BIN=target/release/popsplit
GEN=target/release/examples/generate
FLOOR=target/release/examples/floor

# Every timed run starts alike: a new output folder, caches dropped (when root), the input
# read back into the page cache. Outputs are removed only between sections, followed by a
# minute's wait: for a minute after files are deleted, ext4 (without a journal, as here)
# skips their inodes one by one when it creates new files (perf: up to 40% of samples in
# recently_deleted/find_get_block_common), which slows and spreads the runs that follow.
# Disk needed: about 12 x SIZE_MB for the outputs of one section.
RUN=0
prep() {
    RUN=$((RUN + 1)); OUT="$WORK/runs/$RUN"
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 1 >/proc/sys/vm/drop_caches; fi
    cat "$1" >/dev/null
}
# As prep, but the input is not read back: an archive of hundreds of GB is never cached.
prep_cold() {
    RUN=$((RUN + 1)); OUT="$WORK/runs/$RUN"
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 1 >/proc/sys/vm/drop_caches; fi
}
settle() { rm -rf "$WORK/runs"; sync; sleep "${POPSPLIT_BENCH_SETTLE:-61}"; }
[ -w /proc/sys/vm/drop_caches ] || echo "note: not root, caches are not dropped between runs: expect a wide spread"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# time_run LABEL CMD... : wall seconds on stdout, peak RSS in KB in $WORK/rss
time_run() {
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; exit 1; }
    read -r secs rss <"$WORK/time"
    echo "$rss" >"$WORK/rss"
    echo "$secs"
}
split_cmd() { echo "$BIN split $1 --domain example.com --directory $WORK/in.mbox.csv --out $2 ${3:-}"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), output on $(df -T "$WORK" | awk 'NR==2 {print $2}')"
$GEN "$WORK/in.mbox" "$SIZE"
MSGS=$(grep -c '^From ' "$WORK/in.mbox" || true)

echo
echo "== popsplit against the floor (--sync batch for both), $RUNS runs each, alternating"
: >"$WORK/floor.t"; : >"$WORK/pop.t"
for i in $(seq "$RUNS"); do
    prep "$WORK/in.mbox"; time_run $FLOOR "$WORK/in.mbox" "$OUT" batch >>"$WORK/floor.t"
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT") >>"$WORK/pop.t"
done
F=$(median <"$WORK/floor.t"); P=$(median <"$WORK/pop.t")
echo "floor    median ${F} s   runs: $(tr '\n' ' ' <"$WORK/floor.t")"
echo "popsplit median ${P} s   runs: $(tr '\n' ' ' <"$WORK/pop.t")"
awk -v p="$P" -v f="$F" -v m="$MSGS" 'BEGIN {printf "ratio popsplit/floor = %.2f (target <= 1.30); popsplit %.0f messages/s\n", p/f, m/p}'

settle
echo
echo "== one worker thread against two, 3 runs each"
: >"$WORK/j1.t"; : >"$WORK/j2.t"
for i in 1 2 3; do
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT" "--jobs 1") >>"$WORK/j1.t"
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT" "--jobs 2") >>"$WORK/j2.t"
done
J1=$(median <"$WORK/j1.t"); J2=$(median <"$WORK/j2.t")
awk -v a="$J1" -v b="$J2" 'BEGIN {printf "--jobs 1 median %s s, --jobs 2 median %s s: speed-up %.2fx\n", a, b, a/b}'

settle
echo
echo "== gzip input against plain: gzip's default level (-6), then -1"
gzip -c "$WORK/in.mbox" >"$WORK/in.mbox.gz"
: >"$WORK/gz.t"; : >"$WORK/plain.t"; : >"$WORK/gzn.t"; : >"$WORK/plainn.t"
for i in $(seq "$RUNS"); do
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT") >>"$WORK/plain.t"
    prep "$WORK/in.mbox.gz"; time_run $(split_cmd "$WORK/in.mbox.gz" "$OUT") >>"$WORK/gz.t"
done
settle
for i in 1 2 3; do
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT" "--sync none") >>"$WORK/plainn.t"
    prep "$WORK/in.mbox.gz"; time_run $(split_cmd "$WORK/in.mbox.gz" "$OUT" "--sync none") >>"$WORK/gzn.t"
done
G=$(median <"$WORK/gz.t"); PL=$(median <"$WORK/plain.t"); GN=$(median <"$WORK/gzn.t"); PN=$(median <"$WORK/plainn.t")
awk -v g="$G" -v p="$PL" -v s="$(stat -c %s "$WORK/in.mbox.gz")" -v n="$RUNS" 'BEGIN {printf "--sync batch, %d runs each: plain median %s s, gzip -6 (%.0f MB) median %s s: ratio %.2f (target <= 1.50)\n", n, p, s/1e6, g, g/p}'
echo "  runs: plain $(tr '\n' ' ' <"$WORK/plain.t"), gzip $(tr '\n' ' ' <"$WORK/gz.t")"
awk -v g="$GN" -v p="$PN" 'BEGIN {printf "--sync none, 3 runs each:  plain median %s s, gzip -6 median %s s: ratio %.2f\n", p, g, g/p}'
: >"$WORK/gzd.t"; : >"$WORK/plaind.t"
for i in 1 2 3; do
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT" "--dry-run") >>"$WORK/plaind.t"
    prep "$WORK/in.mbox.gz"; time_run $(split_cmd "$WORK/in.mbox.gz" "$OUT" "--dry-run") >>"$WORK/gzd.t"
done
awk -v g="$(median <"$WORK/gzd.t")" -v p="$(median <"$WORK/plaind.t")" 'BEGIN {printf "--dry-run (no output, so the difference is inflating): plain median %s s, gzip -6 median %s s\n", p, g}'
if [ -w /proc/sys/vm/drop_caches ]; then
    settle
    : >"$WORK/gzc.t"; : >"$WORK/plainc.t"
    for i in 1 2 3; do
        prep_cold; time_run $(split_cmd "$WORK/in.mbox" "$OUT") >>"$WORK/plainc.t"
        prep_cold; time_run $(split_cmd "$WORK/in.mbox.gz" "$OUT") >>"$WORK/gzc.t"
    done
    awk -v g="$(median <"$WORK/gzc.t")" -v p="$(median <"$WORK/plainc.t")" 'BEGIN {printf "--sync batch, input not cached (read from disk), 3 runs each: plain median %s s, gzip -6 median %s s: ratio %.2f\n", p, g, g/p}'
fi
settle
gzip -1 -c "$WORK/in.mbox" >"$WORK/in.mbox.gz"
: >"$WORK/gz.t"; : >"$WORK/plain.t"
for i in 1 2 3; do
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT") >>"$WORK/plain.t"
    prep "$WORK/in.mbox.gz"; time_run $(split_cmd "$WORK/in.mbox.gz" "$OUT") >>"$WORK/gz.t"
done
awk -v g="$(median <"$WORK/gz.t")" -v p="$(median <"$WORK/plain.t")" -v s="$(stat -c %s "$WORK/in.mbox.gz")" 'BEGIN {printf "--sync batch, 3 runs each: plain median %s s, gzip -1 (%.0f MB, inflates slower) median %s s: ratio %.2f\n", p, s/1e6, g, g/p}'
rm -f "$WORK/in.mbox.gz"

settle
echo
echo "== peak resident memory at two input sizes (the 4x input is generated, then removed)"
prep "$WORK/in.mbox"
time_run $(split_cmd "$WORK/in.mbox" "$OUT") >/dev/null
echo "$(stat -c %s "$WORK/in.mbox") bytes, $MSGS messages: peak RSS $(( $(cat "$WORK/rss") / 1024 )) MB"
$GEN "$WORK/big.mbox" $((SIZE * 4)) >/dev/null
cp "$WORK/in.mbox.csv" "$WORK/big.mbox.csv"
prep "$WORK/big.mbox"
time_run $BIN split "$WORK/big.mbox" --domain example.com --directory "$WORK/big.mbox.csv" --out "$OUT" >/dev/null
echo "$(stat -c %s "$WORK/big.mbox") bytes, $(grep -c '^From ' "$WORK/big.mbox") messages: peak RSS $(( $(cat "$WORK/rss") / 1024 )) MB (target <= 256 MB)"
rm -f "$WORK/big.mbox"
settle

echo
echo "== formail | procmail, one process per message (procmail fsyncs every file it delivers)"
SMALL=$((SIZE / 20 > 20 ? SIZE / 20 : 20))
$GEN "$WORK/small.mbox" "$SMALL" >/dev/null
SMSGS=$(grep -c '^From ' "$WORK/small.mbox" || true)
# The same job as popsplit's: one recipe per directory address (^TO_ matches To, Cc and the
# envelope fields), a copy per matching user, the rest to _unassigned.
ADDRS=$(tail -n +2 "$WORK/in.mbox.csv" | cut -d, -f1 | sort -u | sed 's/[.]/\\./g' | paste -sd'|')
{
    echo 'LOGFILE=/dev/null'
    tail -n +2 "$WORK/in.mbox.csv" | while IFS=, read -r addr user; do
        printf ':0c\n* ^TO_%s\n%s/pm/%s/\n' "$(printf %s "$addr" | sed 's/[.]/\\./g')" "$WORK" "$user"
    done
    printf ':0\n* ! ^TO_(%s)\n%s/pm/_unassigned/\n:0\n/dev/null\n' "$ADDRS" "$WORK"
} >"$WORK/route.rc"
printf 'LOGFILE=/dev/null\n:0\n%s/pm/all/\n' "$WORK" >"$WORK/one.rc"
pm_rate() { # RC: messages per second of formail+procmail on the small input
    rm -rf "$WORK/pm"; mkdir -p "$WORK/pm"; sync
    local s e; s=$(date +%s.%N)
    formail -s procmail -m "$WORK/$1" <"$WORK/small.mbox"
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" -v n="$SMSGS" 'BEGIN {printf "%.1f", n / (e - s)}'
}
: >"$WORK/route.r"; : >"$WORK/one.r"
for i in 1 2 3; do pm_rate route.rc >>"$WORK/route.r"; echo >>"$WORK/route.r"; pm_rate one.rc >>"$WORK/one.r"; echo >>"$WORK/one.r"; done
ROUTE=$(median <"$WORK/route.r"); ONE=$(median <"$WORK/one.r")
: >"$WORK/none.t"
for i in 1 2 3; do
    prep "$WORK/in.mbox"; time_run $(split_cmd "$WORK/in.mbox" "$OUT" "--sync none") >>"$WORK/none.t"
done
N=$(median <"$WORK/none.t")
awk -v r="$ROUTE" -v o="$ONE" -v n="$SMSGS" -v m="$MSGS" -v p="$P" -v q="$N" 'BEGIN {
    pp = m / p; pq = m / q;
    printf "formail+procmail on %d messages ('"$SMALL"' MB of the same kind; per message, so size matters little):\n", n;
    printf "  medians of 3: routing to each user like popsplit %.0f messages/s (runs: '"$(tr '\n' ' ' <"$WORK/route.r")"'); into one Maildir, no routing, %.0f messages/s\n", r, o;
    printf "popsplit --sync batch (durable, as procmail): %.0f messages/s = %.1fx the routing pipeline (target >= 30x), %.1fx the one-Maildir one\n", pp, pp / r, pp / o;
    printf "popsplit --sync none (median of 3, %s s): %.0f messages/s = %.1fx, %.1fx\n", q, pq, pq / r, pq / o }'
