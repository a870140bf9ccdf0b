#!/bin/sh
# Run the end-of-day migration every day at EOD_AT (UTC, HH:MM; default 00:05), forever.
# Used by the compose `eod` service. A failed day is logged and retried by the next run (eod
# without --date also retries earlier unfinished days from eod_migrations): nothing is skipped.
#   eod-daily.sh                 loop forever
#   eod-daily.sh --next-delay    print the seconds until the next run and exit (tests;
#                                EOD_NOW_EPOCH overrides "now")
set -eu
EOD_AT="${EOD_AT:-00:05}"

next_delay() {
    now="${EOD_NOW_EPOCH:-$(date -u +%s)}"
    hh="${EOD_AT%%:*}"; mm="${EOD_AT##*:}"
    hh="${hh#0}"; mm="${mm#0}"   # "05" -> "5": no octal surprises in $(( ))
    midnight=$(( now - now % 86400 ))
    at=$(( midnight + hh * 3600 + mm * 60 ))
    if [ "$at" -le "$now" ]; then at=$(( at + 86400 )); fi
    echo $(( at - now ))
}

if [ "${1:-}" = "--next-delay" ]; then
    next_delay
    exit 0
fi

while :; do
    delay=$(next_delay)
    echo "eod: next run in ${delay}s (daily at ${EOD_AT} UTC)"
    sleep "$delay"
    kalshi-platform eod ${KALSHI_EOD_ARGS:-} || echo "eod: run failed (exit $?); will retry tomorrow"
done
