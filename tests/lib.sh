# Shared by the integration tests: TAP-like result lines that tests/run.sh counts.
#   ok NAME | fail NAME WHY | check NAME CMD... (ok if CMD succeeds)
KLAB=${KLAB:-$PWD/build/asan/klab}
# KLAB_TEST_KERNEL=NAME (e.g. debian-6.12-amd64): the registered kernel the gdb tests boot instead of the
# architecture's default Debian 6.1 one; test_kernel holds the klab boot option for it.
test_kernel=(${KLAB_TEST_KERNEL:+--kernel "$KLAB_TEST_KERNEL"})
KLAB_CACHE=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
export KLAB_CACHE
# Sanitizer findings abort the program: a test that runs klab then fails loudly.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failures=0 checks=0
ok() { echo "ok - $1"; checks=$((checks + 1)); }
# A WHY of several lines keeps its first on the result line and indents the rest, so no line of it can be
# read as a result of its own.
fail() {
  printf 'not ok - %s: %s\n' "$1" "$(printf '%s\n' "$2" | head -n 1)"
  printf '%s\n' "$2" | tail -n +2 | sed 's/^/    /'
  failures=$((failures + 1)); checks=$((checks + 1))
}
# skip NAME WHY: a check that cannot be made here; tests/run.sh counts and shows it, never as a pass.
skip() { echo "skip - $1: $2"; checks=$((checks + 1)); }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else fail "$name" "command failed: $*"; fi; }
# expect_error NAME PATTERN CMD...: CMD must exit non-zero with exactly one line on stderr matching PATTERN.
expect_error() {
  local name=$1 pattern=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then fail "$name" "exit status 0 (stderr: $err)"; return; fi
  if [ "$(printf '%s\n' "$err" | grep -c .)" -ne 1 ]; then fail "$name" "wanted one line, got: $err"; return; fi
  if ! printf '%s\n' "$err" | grep -Eq -- "$pattern"; then fail "$name" "'$err' does not match /$pattern/"; return; fi
  ok "$name"
}
# finish: the plan (TAP "1..N") goes last, so a program that ends early — a killed gdb session, a shell
# error — prints none, and tests/run.sh fails it for that (run --plan).
finish() { echo "1..$checks"; exit $((failures > 0)); }
# gdb_ran NAME RC OUT [MARK]: a batch gdb session must have exited 0 (not by time-out) and, with MARK, reached
# it (the script's last line prints it): a session that died halfway fails here instead of passing on the
# checks it made before.
gdb_ran() {
  local name=$1 rc=$2 out=$3 mark=${4:-}
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then fail "$name: gdb session" "timed out: $(tail -3 "$out")"
  elif [ "$rc" -ne 0 ]; then fail "$name: gdb session" "gdb exited $rc: $(tail -3 "$out")"
  elif [ -n "$mark" ] && ! grep -qx -- "$mark" "$out"; then fail "$name: gdb session" "ended before '$mark': $(tail -3 "$out")"
  else ok "$name: gdb session ran to its end"; fi
}
# relay OUT: the check lines a script inside gdb printed, counted as this program's.
relay() {
  # result lines, and the indented lines that go on a failure's why (gdb_checks.fail)
  awk '/^(ok|not ok|skip) - / { print; more = /^not ok - /; next } more && /^    / { print; next } { more = 0 }' "$1"
  checks=$((checks + $(grep -cE '^(ok|not ok|skip) - ' "$1")))
  failures=$((failures + $(grep -c '^not ok - ' "$1")))
}
# gdb batch output split by `echo @@ NAME\n` markers: gdb_section FILE NAME prints what came after @@ NAME.
gdb_section() { tr -d "\r" <"$1" | awk -v s="@@ $2" '$0 == s { on = 1; next } /^@@ / { on = 0 } on'; }
# From gdb output: the PA `klab vtop` printed (vtop_pa) and the one QEMU's `monitor gva2gpa` printed (gpa_of).
vtop_pa() { awk '/^VIRTUAL/ { getline; print $2; exit }'; }
# QEMU prints with %#lx, so PA 0 is "gpa: 0", without the 0x; gpa_of prints the hex digits either way.
gpa_of() { sed -n 's/^.*gpa: \(0x\)\{0,1\}\([0-9a-f]\{1,\}\).*$/\2/p'; }
# same_pa HEXDIGITS 0xPA: true when QEMU's digits and klab's 0x-number are one address.
same_pa() { [ -n "$1" ] && [ -n "$2" ] && [ $((16#$1)) -eq $(($2)) ]; }
