# Shell helpers of the bench scripts (sourced: gateway.sh, ab.sh).

# ticks PID: the process's CPU time so far, user + system, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# median of the arguments (numbers)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# idle: the machine's idle and total CPU time so far, in clock ticks
# ("idle total"): whether a run left cores unused, i.e. waited rather
# than worked.
idle() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t}' /proc/stat; }

# wrk_p50: the median latency, in ms, of wrk --latency's output on stdin.
wrk_p50() {
	awk '$1 == "50%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)}
		else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}'
}

# stages ADMIN_PORT REDIS_PORT: the sums behind where a metered request's
# time goes, so far: "measure_s measure_n commit_s commit_n fcall_us
# fcall_n", from the gateway's metrics (the page count; the settle as the
# handler waits for it, group call and all) and Redis's commandstats (the
# scripts' execution). Two readings around a run give its means (spent).
stages() {
	{
		curl -sf "http://127.0.0.1:$1/metrics" | awk '
			/^caddy_meter_measure_duration_seconds_sum/ {ms = $2} /^caddy_meter_measure_duration_seconds_count/ {mn = $2}
			/^caddy_meter_store_duration_seconds_sum\{op="commit"\}/ {cs = $2}
			/^caddy_meter_store_duration_seconds_count\{op="commit"\}/ {cn = $2}
			END {printf "%s %s %s %s ", ms + 0, mn + 0, cs + 0, cn + 0}'
		redis-cli -p "$2" INFO commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_fcall:/ {u = $5; c = $3} END {print u + 0, c + 0}'
	}
}

# spent BEFORE AFTER REQUESTS: the means of a run from two stages
# readings: "measure_us settle_us fcall_us requests_per_fcall".
spent() {
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		m = y[2] - x[2]; c = y[4] - x[4]; f = y[6] - x[6]
		printf "%.0f %.0f %.0f %.1f\n", m ? (y[1] - x[1]) / m * 1e6 : 0, c ? (y[3] - x[3]) / c * 1e6 : 0,
			f ? (y[5] - x[5]) / f : 0, f ? n / f : 0 }'
}
