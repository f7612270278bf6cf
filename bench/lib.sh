# Shell helpers of the bench scripts (sourced: gateway.sh, ab.sh).

# ticks PID: the process's CPU time so far, user + system, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wrk_p50: the median latency, in ms, of wrk --latency's output on stdin.
wrk_p50() {
	awk '$1 == "50%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)}
		else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}'
}
