#!/usr/bin/env bash
# The whole suite with the clock set to chosen instants (libfaketime from Debian's
# `faketime` package), each under another machine time zone: a month boundary,
# the new year in Paris (gapless invoice numbering per year) or a DST change must
# not turn a test red. The fake clock is an offset from the real one, so it runs
# on from the instant, and the embedded PostgreSQL the suite starts inherits it.
#
#   bash test/clock/suite-at.sh                                   # the four instants below
#   bash test/clock/suite-at.sh '2027-10-31T02:45:00+02:00@UTC'   # one: an instant `date -d` reads, @ the machine's TZ
#   bash test/clock/suite-at.sh '2027-01-01T00:00:00+01:00' -- test/invoices   # some test files only
#
# Run n writes var/test-results-at-<n>.json (vitest's JSON reporter); the script
# exits non-zero if any run failed or ran no test.
set -uo pipefail
cd "$(dirname "$0")/../.."

# the multithreaded build: node and PostgreSQL both run threads
LIB=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n 1)
if [ -z "$LIB" ]; then
  echo "libfaketime not found: apt-get install faketime" >&2
  exit 2
fi

instants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do instants+=("$1"); shift; done
[ $# -gt 0 ] && shift # "--": what follows goes to vitest
if [ ${#instants[@]} -eq 0 ]; then
  instants=(
    '2027-02-01T00:00:00+01:00@Europe/Paris'        # the first second of a month
    '2027-04-30T23:59:58+02:00@America/Los_Angeles' # the last seconds of a month: it ends while the suite runs
    '2027-01-01T00:00:00+01:00@Pacific/Auckland'    # 1 January 00:00 in Paris: a new invoice-numbering year
    '2027-10-31T02:45:00+02:00@UTC'                 # 15 minutes before Paris leaves summer time
  )
fi

mkdir -p var
status=0
n=0
for spec in "${instants[@]}"; do
  n=$((n + 1))
  instant=${spec%@*}
  zone=UTC
  [ "$instant" != "$spec" ] && zone=${spec##*@}
  target=$(date -d "$instant" +%s) || { echo "not an instant: $instant" >&2; exit 2; }
  offset=$((target - $(date +%s)))
  sign=+
  [ "$offset" -lt 0 ] && sign=
  out="var/test-results-at-$n.json"
  rm -f "$out"
  echo "== suite at $instant ($(TZ=UTC date -d "@$target" '+%Y-%m-%d %H:%M:%S UTC'), TZ=$zone)"
  # only the wall clock moves: monotonic timers and timeouts keep real durations
  TZ=$zone LD_PRELOAD=$LIB FAKETIME="$sign${offset}s" FAKETIME_DONT_FAKE_MONOTONIC=1 \
    npx vitest run "$@" --reporter=default --reporter=json --outputFile.json="$out" || status=1
  if [ ! -f "$out" ] || ! node -e 'process.exit(require(process.argv[1]).numTotalTests > 0 ? 0 : 1)' "$PWD/$out"; then
    echo "no test ran at $instant" >&2
    status=1
  fi
done
exit $status
