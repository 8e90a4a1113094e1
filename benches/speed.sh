#!/usr/bin/env bash
# Speed and memory benchmark: popsplit against the bare floor, each run on a file system
# made fresh for it.
#
#   sudo benches/speed.sh [CASE...]          (default: 1000 kernel)
#
# Cases:
#   SIZE_MB     a generated mailbox of about SIZE_MB (Postfix style, ~40 KB messages, one
#               copy per envelope recipient; examples/generate.rs)
#   small:N     a generated mailbox of about N small messages (2-4 KB each)
#   kernel      the real mail of ../shared/corpora/kernel-lists (31 MB, 2,202 messages)
#   gzip        the 1000 MB mailbox gzip'd (gzip -6) against itself plain, popsplit default
#   jobs        the 1000 MB mailbox with --jobs 1 against --jobs 2, popsplit default
#
# POPSPLIT_BENCH_BASE=PATH adds a fourth side to each mailbox case: the popsplit binary at
# PATH (an earlier build) with the default options, timed in the same rounds, so that a
# change is measured against the code before it on the same fresh file systems.
#
# POPSPLIT_BENCH_NAMES=1 adds the floor with Maildir-length file names (bare_floor
# --maildir-names: Dovecot's `secs.MmicrosPpidQn.host,S=size`, as long as popsplit's
# names) as one more side: how much of a gap to the floor is only the length of the
# directory entries, which on a large output decides how many directory blocks every
# journal commit writes.
#
# Each mailbox case alternates, RUNS times (POPSPLIT_BENCH_RUNS, default 5; kernel at least
# 9, as its runs last a fraction of a second and spread by tens of percent), each round
# starting with the next side (the gzip and jobs pairs likewise): the bare floor
# (examples/bare_floor.rs, none of popsplit's code: split at `From ` lines, write each
# message into one Maildir's tmp/, rename into new/, one syncfs at the end), popsplit's
# default (--sync batch, crash-safe) and popsplit --sync none followed by one syncfs (so
# that it pays for its writes as the floor does). It prints medians of wall (the shell's
# microsecond clock), user and system time (/usr/bin/time), the largest peak RSS, the
# ratios to the floor, and the median of each round's ratio to that round's floor.
#
# Every timed run writes to an ext4 made for it: a loop file, mkfs.ext4, mounted with
# noinit_itable (so no lazy inode-table zeroing runs behind the timing), unmounted after.
# On a file system where the last output was just deleted, ext4's recently_deleted scan in
# ext4_create took most of popsplit's kernel time (perf), so no run may inherit another's
# deleted inodes. Before each run the page cache is dropped and the input read back into
# it. Without root (no mount) the runs go to a new folder under the work folder, with a
# note saying so. Work files go to $POPSPLIT_BENCH_DIR (default a new temporary folder),
# removed at the end unless POPSPLIT_BENCH_KEEP=1; generated inputs there are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${POPSPLIT_BENCH_RUNS:-5}
BASE=${POPSPLIT_BENCH_BASE:-}
NAMES=${POPSPLIT_BENCH_NAMES:-0}
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(1000 kernel)
WORK=${POPSPLIT_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
MNT="$WORK/mnt"
IMG="$WORK/fs.img"
LOOP=
unmount() {
    if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT"; fi
    if [ -n "$LOOP" ]; then losetup -d "$LOOP" 2>/dev/null || true; LOOP=; fi
    rm -f "$IMG"
}
cleanup() { unmount; [ "${POPSPLIT_BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null; }; }
need /usr/bin/time time
ROOT=0
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then ROOT=1; fi

cargo build --release --quiet --bin popsplit --example generate --example bare_floor
# Where cargo put them: a CARGO_TARGET_DIR of the caller's is honoured.
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/popsplit
GEN=$TARGET/release/examples/generate
FLOOR=$TARGET/release/examples/bare_floor

echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r); work folder on $(df -T "$WORK" | awk 'NR==2 {print $2}')"
echo "popsplit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo '+changes'), $(rustc --version)"
if [ "$ROOT" = 1 ]; then
    echo "each run: a fresh ext4 ($(mkfs.ext4 -V 2>&1 | head -1)) on a loop file (direct I/O) in the work folder, mounted -o noinit_itable"
else
    echo "note: not root: no fresh file system per run and no dropped caches; each run writes to a new folder under $WORK (expect a wide spread, and ext4's recently_deleted scan when outputs are removed)"
fi

# fresh SIZE_MB: a new, empty file system at $MNT (or a new folder without root), the page
# cache dropped, and the input $INPUT read back into it. $INODES, when set, is the number of
# inodes to make (mkfs.ext4's default of one per 16 KB is too few for small messages).
RUN=0
fresh() {
    RUN=$((RUN + 1))
    if [ "$ROOT" = 1 ]; then
        unmount
        mkdir -p "$MNT"
        truncate -s "$1M" "$IMG"
        LOOP=$(losetup --find --show --direct-io=on "$IMG")
        mkfs.ext4 -q -F ${INODES:+-N "$INODES"} "$LOOP"
        mount -o noinit_itable "$LOOP" "$MNT"
        OUT="$MNT/out"
        sync
        echo 1 >/proc/sys/vm/drop_caches
    else
        rm -rf "$WORK/runs"
        OUT="$WORK/runs/$RUN"
        mkdir -p "$WORK/runs"
    fi
    cat "$INPUT" >/dev/null
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# timed NAME CMD...: appends "wall user sys rss_kb" of the command to $WORK/NAME.t. Wall
# comes from the shell's microsecond clock: /usr/bin/time's %e has 10 ms steps, coarse
# beside kernel-lists' 0.08 s floor.
timed() {
    local name=$1; shift
    local t0=${EPOCHREALTIME/,/.}
    /usr/bin/time -f "%U %S %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; exit 1; }
    local t1=${EPOCHREALTIME/,/.}
    awk -v a="$t0" -v b="$t1" '{printf "%.3f %s %s %s\n", b - a, $1, $2, $3}' "$WORK/time" >>"$WORK/$name.t"
}
col() { awk -v c="$2" '{print $c}' "$WORK/$1.t" | median; }
paired() { paste -d ' ' "$WORK/floor.t" "$WORK/$1.t" | awk '{print $5 / $1}' | median | awk '{printf "%.2f", $1}'; }
peak() { awk '$4 > m {m = $4} END {printf "%.0f", m / 1024}' "$WORK/$1.t"; }

# turns RUN SIDE...: RUNS rounds of `RUN SIDE` for every side, each round starting with the
# next side: the first runs of a case were sometimes much slower whichever side had them
# (1 GB: the floor's 2.3 and 3.0 s, then 1.2 s), and the side always first had them most.
turns() {
    local run=$1 r k i; shift
    for r in $(seq "$RUNS"); do
        for k in $(seq 0 $(($# - 1))); do
            i=$(((r + k) % $# + 1))
            "$run" "${!i}"
        done
    done
}

# one_side SIDE: one timed run of `sides` (whose locals pop and disk it reads) on a fresh
# file system.
one_side() {
    fresh "$disk"
    case $1 in
        floor) timed floor "$FLOOR" "$INPUT" "$OUT" ;;
        names) timed names "$FLOOR" "$INPUT" "$OUT" --maildir-names ;;
        batch) timed batch $pop "$OUT" ;;
        none) timed none sh -c "$pop $OUT --sync none && sync -f $OUT" ;;
        base) timed base $basepop "$OUT" ;;
    esac
}

# sides CASE_LABEL INPUT DIRECTORY DOMAIN DISK_MB: the floor, popsplit default, popsplit
# --sync none (and the base build), alternating, RUNS times; then the table.
sides() {
    local label=$1 dir=$3 domain=$4 disk=$5
    INPUT=$2
    local msgs; msgs=$(grep -c '^From ' "$INPUT" || true)
    rm -f "$WORK"/{floor,names,batch,none,base}.t
    local pop="$BIN split $INPUT --domain $domain --directory $dir --out"
    local basepop="$BASE split $INPUT --domain $domain --directory $dir --out"
    local all=(floor batch none)
    [ "$NAMES" != 1 ] || all+=(names)
    [ -z "$BASE" ] || all+=(base)
    turns one_side "${all[@]}"
    unmount
    echo
    echo "== $label: $(stat -c %s "$INPUT") bytes, $msgs messages; medians of $RUNS alternating runs"
    echo "  floor:    $FLOOR $INPUT OUT"
    [ "$NAMES" != 1 ] || echo "  names:    $FLOOR $INPUT OUT --maildir-names"
    echo "  popsplit: $pop OUT [--sync none && sync -f OUT]"
    [ -z "$BASE" ] || echo "  base:     $basepop OUT"
    local f; f=$(col floor 1)
    printf '  %-34s %8s %8s %8s %8s %9s %13s\n' run wall ratio user sys "peak RSS" messages/s
    for side in "${all[@]}"; do
        local w u name
        w=$(col $side 1); u=$(col $side 2)
        case $side in
            floor) name="bare floor (one syncfs)" ;;
            names) name="floor, Maildir-length names" ;;
            batch) name="popsplit default (--sync batch)" ;;
            none) name="popsplit --sync none + syncfs" ;;
            base) name="base (POPSPLIT_BENCH_BASE) default" ;;
        esac
        printf '  %-34s %7ss %7.2fx %7ss %7ss %6s MB %13.0f\n' "$name" "$w" "$(echo "$w $f" | awk '{print $1/$2}')" \
            "$u" "$(col $side 3)" "$(peak $side)" "$(echo "$msgs $w" | awk '{print $1/$2}')"
        echo "    runs (wall): $(awk '{printf "%s ", $1}' "$WORK/$side.t")"
    done
    # Each round's ratio to that round's floor, whose median a drift of the machine's
    # speed across the case moves less than it moves the ratio of medians.
    echo "  paired (median of each round's ratio to its floor): default $(paired batch)x, --sync none $(paired none)x$([ "$NAMES" != 1 ] || echo ", floor with Maildir-length names $(paired names)x")$([ -z "$BASE" ] || echo ", base $(paired base)x")"
    awk -v b="$(col batch 1)" -v n="$(col none 1)" -v f="$f" -v ub="$(col batch 2)" -v uf="$(col floor 2)" 'BEGIN {
        printf "  targets: default %.2fx (<= 1.30), --sync none %.2fx (<= 1.10), ", b/f, n/f
        if (uf > 0) printf "user CPU %.1fx the floor'"'"'s (<= 3)\n", ub/uf
        else print "user CPU not compared (the floor'"'"'s is under 0.01 s)" }'
}

# one_of_pair a|b: one timed run of the gzip or jobs case's side A or B (globals A, AA, B,
# BA, in) on a fresh file system.
one_of_pair() {
    local args=$AA; INPUT=$A
    if [ "$1" = b ]; then args=$BA; INPUT=$B; fi
    fresh 5000
    timed "$1" $BIN split "$INPUT" --domain example.com --directory "$in.csv" --out "$OUT" $args
}

generated() { # SIZE_MB [BODY_BYTES]: path of a generated mailbox, made once
    local p="$WORK/gen-$1-${2:-40000}.mbox"
    [ -s "$p" ] || $GEN "$p" "$1" postfix "${2:-40000}" >/dev/null
    echo "$p"
}

for c in "${CASES[@]}"; do
    case $c in
        small:*)
            n=${c#small:}
            # 2,500 body bytes make messages of 2-4 KB (3.2 KB on average, with their headers).
            in=$(generated $((n * 32 / 10000)) 2500)
            INODES=$((n * 5 / 2)) sides "$n small messages" "$in" "$in.csv" example.com $((n * 32 / 10000 * 3 + 2000))
            ;;
        kernel)
            k=../shared/corpora/kernel-lists
            if [ ! -d "$k" ]; then
                # CI has ../shared: there a missing corpus is a failure, not a skip.
                [ "${CI:-}" != true ] || { echo "$k is missing under CI=true" >&2; exit 1; }
                echo; echo "== kernel: skipped, $k is not beside this clone"; continue
            fi
            [ -s "$WORK/kernel.mbox" ] || gzip -dc "$k/mailbox.mbox.gz" >"$WORK/kernel.mbox"
            RUNS=$((RUNS < 9 ? 9 : RUNS)) sides "kernel-lists (real mail)" "$WORK/kernel.mbox" "$k/directory.csv" lfdr.de 1000
            ;;
        gzip | jobs)
            in=$(generated 1000)
            rm -f "$WORK"/{a,b}.t
            if [ $c = gzip ]; then
                [ -s "$in.gz" ] || gzip -c "$in" >"$in.gz"
                A="$in"; B="$in.gz"; AA=""; BA=""
            else
                A="$in"; B="$in"; AA="--jobs 1"; BA="--jobs 2"
            fi
            turns one_of_pair a b
            unmount
            echo
            echo "== $c: $BIN split IN --domain example.com --directory IN.csv --out OUT, medians of $RUNS alternating runs"
            echo "  ${A##*/} $AA: wall $(col a 1) s, user $(col a 2) s, sys $(col a 3) s   runs: $(awk '{printf "%s ", $1}' "$WORK/a.t")"
            echo "  ${B##*/} $BA: wall $(col b 1) s, user $(col b 2) s, sys $(col b 3) s   runs: $(awk '{printf "%s ", $1}' "$WORK/b.t")"
            awk -v a="$(col a 1)" -v b="$(col b 1)" 'BEGIN {printf "  ratio %.2f\n", b/a}'
            ;;
        *[!0-9]* | '') echo "unknown case: $c" >&2; exit 2 ;;
        *)
            in=$(generated "$c")
            sides "generated, $c MB" "$in" "$in.csv" example.com $((c * 3 + 2000))
            [ "$c" -le 2000 ] || rm -f "$in" "$in.csv"
            ;;
    esac
done
