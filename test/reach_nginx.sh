#!/usr/bin/env bash
# How long a dry run takes on a real, stripped daemon: 21 runs of
#   livepatch --dry-run -p PID -f nginx:ngx_http_parse_request_line -t nginx:ngx_http_parse_status_line
# against a running nginx master; prints the median wall time in milliseconds on stdout.
# On stderr: every time, and the dynamic symbols (.dynsym entries, and how many are
# defined functions) of nginx and of each library it maps, which is what resolution reads.
#
# Usage: test/reach_nginx.sh [PID]     (root; without PID, starts its own nginx on 127.0.0.1
#                                      at a free port in a temporary directory, stops it after)
# Env:   LP (default: ./livepatch of this tree), RUNS (default 21)
set -euo pipefail
cd "$(dirname "$0")/.."
lp_env=${LP:-}
# shellcheck source=test/lib.bash
source test/lib.bash
LP=${lp_env:-$LP}
RUNS=${RUNS:-21}
F=nginx:ngx_http_parse_request_line
G=nginx:ngx_http_parse_status_line
[[ -x $LP ]] || { echo "reach_nginx: no $LP (run make)" >&2; exit 1; }

pid=${1:-}
LP_TMP=$(mktemp -d /tmp/reach_nginx.XXXXXX)
cleanup() {
	((${#DAEMON_PIDS[@]} == 0)) || daemon_stop >/dev/null 2>&1 || true
	rm -rf "$LP_TMP"
}
trap cleanup EXIT

if [[ -z $pid ]]; then
	[[ -x /usr/sbin/nginx ]] || { echo "reach_nginx: no /usr/sbin/nginx (make deps)" >&2; exit 1; }
	nginx_start
	pid=$NGINX_PID
fi

# Dynamic symbols of every object nginx maps.
total=0
while read -r obj; do
	n=$(LC_ALL=C readelf --dyn-syms -W "$obj" | awk '$1 ~ /^[0-9]+:$/' | wc -l)
	fn=$(LC_ALL=C readelf --dyn-syms -W "$obj" | awk '$1 ~ /^[0-9]+:$/ && $4 ~ /FUNC/ && $7 != "UND"' | wc -l)
	printf 'dynsym %6d (%5d defined functions)  %s\n' "$n" "$fn" "$obj" >&2
	total=$((total + n))
done < <(awk '$6 ~ /^\// && $6 !~ /^\/(dev|memfd)/ { print $6 }' "/proc/$pid/maps" | sort -u)
printf 'dynsym %6d total\n' "$total" >&2

times=()
for ((i = 0; i < RUNS; i++)); do
	t0=$(date +%s%N)
	"$LP" --dry-run --quiet -p "$pid" -f "$F" -t "$G" || { echo "reach_nginx: dry run failed ($?)" >&2; exit 1; }
	t1=$(date +%s%N)
	times+=($(((t1 - t0) / 1000)))
done
printf '%s\n' "${times[@]}" | sort -n | awk '{ printf "%s%.1f", (NR > 1 ? " " : "run times (ms): "), $1 / 1000 } END { print "" }' >&2
printf '%s\n' "${times[@]}" | sort -n | awk -v n="${#times[@]}" 'NR == int((n + 1) / 2) { printf "%.1f\n", $1 / 1000 }'
