# Shared by the benchmarks: the klab binary, a scratch folder, VMs in their own run folder (stopped and
# removed on exit), and the two measures every figure uses.
#   . bench/lib.sh [RUNS]    (from the repository root)
KLAB=${KLAB:-build/klab}
case $KLAB in /*) ;; *) KLAB=$PWD/$KLAB ;; esac   # absolute: some benchmarks run it from other folders
RUNS=${RUNS:-${1:-5}}
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-bench-XXXXXX)
work=$(mktemp -d)
bench_cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap bench_cleanup EXIT
ms() { echo "scale=1; ($(date +%s%N) - $1) / 1000000" | bc; }   # milliseconds since a date +%s%N
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Debian's python3: a version manager's shim on PATH (pyenv) costs 150 ms a start, which the figures of
# benchmarks that start a helper per measure would carry.
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
