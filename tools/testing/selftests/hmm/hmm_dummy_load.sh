#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Load, unload and load hmm_dummy again: the device nodes and the device
# memory ranges in /proc/iomem come and go with the module, the module
# cannot go while a device file is open, and bad parameters are refused.
# Unloading with pages of a live process in device memory brings them
# back to RAM intact; unloading while a process's pages are held for
# exclusive device access leaves them to the CPU, intact.
# Leaves the module loaded with its default parameters, as it found it
# when it was loaded at all.

ksft_skip=4
n=0
failed=0
plan=17

result() {	# result OK|FAIL description
	n=$((n + 1))
	if [ "$1" = OK ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		failed=$((failed + 1))
	fi
}

check() {	# check description command...
	desc=$1
	shift
	if "$@"; then result OK "$desc"; else result FAIL "$desc"; fi
}

nodes() {
	ls /dev/hmm_dummy* 2>/dev/null | wc -l
}

ranges() {
	grep -c ': hmm_dummy[0-9]' /proc/iomem
}

loaded() {
	grep -q '^hmm_dummy ' /proc/modules
}

unload() {
	loaded || return 0
	rmmod hmm_dummy
}

# Device nodes appear asynchronously through devtmpfs: wait, bounded.
wait_nodes() {
	tries=50
	while [ "$(nodes)" -ne "$1" ] && [ $tries -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	[ "$(nodes)" -eq "$1" ]
}

wait_gone() {
	wait_nodes 0 && [ "$(ranges)" -eq 0 ]
}

not_loaded() {
	! loaded
}

load_three() {
	modprobe hmm_dummy nr_devices=3 chunk_mb=16 && wait_nodes 3
}

reload_defaults() {
	modprobe hmm_dummy && wait_nodes 2 && [ "$(ranges)" -eq 2 ]
}

# A holder that died early must fail its check, not kill this script.
trap '' PIPE

holder_pid=
holder_in=
holder_out=

# Start hmm_dummy_holder: it moves pages to device 0 (or, with the argument
# exclusive, takes them for exclusive access), closes the device and says
# "ready", then waits for a line on its stdin before checking them.
start_holder() {
	holder_in=$(mktemp -u) && holder_out=$(mktemp) && mkfifo "$holder_in" || return 1
	"$(dirname "$0")/hmm_dummy_holder" 256 $1 <"$holder_in" >"$holder_out" &
	holder_pid=$!
	exec 4>"$holder_in"
	tries=100
	while ! grep -q ready "$holder_out" && [ $tries -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	grep -q ready "$holder_out"
}

# Let the holder check its pages; its exit status says whether they are intact.
finish_holder() {
	[ -n "$holder_pid" ] || return 1
	echo go >&4
	exec 4>&-
	wait "$holder_pid"
	status=$?
	rm -f "$holder_in" "$holder_out"
	return $status
}

echo "TAP version 13"
if [ "$(id -u)" -ne 0 ] || ! modinfo hmm_dummy >/dev/null 2>&1; then
	echo "1..0 # SKIP needs root and the hmm_dummy module"
	exit $ksft_skip
fi
echo "1..$plan"

unload
check "unload takes the module out" not_loaded
check "no node and no range left" wait_gone
check "bad nr_devices is refused" sh -c '! modprobe hmm_dummy nr_devices=0 2>/dev/null'
check "bad chunk_mb is refused" sh -c '! modprobe hmm_dummy chunk_mb=3 2>/dev/null'
check "load with nr_devices=3: 3 nodes" load_three
check "each of the 3 devices registered its memory" [ "$(ranges)" -eq 3 ]

# An open file holds the module.
exec 3</dev/hmm_dummy0
check "unload is refused while a file is open" sh -c '! rmmod hmm_dummy 2>/dev/null'
exec 3<&-
check "unload succeeds once the file is closed" unload
check "load again with defaults: 2 nodes and 2 ranges" reload_defaults

check "a process keeps pages in device memory with no file open" start_holder
check "unload succeeds with those pages in device memory" unload
check "the pages came back to RAM intact" finish_holder
check "load again after that: 2 nodes and 2 ranges" reload_defaults

check "a process keeps pages held exclusive with no file open" start_holder exclusive
check "unload succeeds with those pages held exclusive" unload
check "the CPU takes the exclusive pages back intact" finish_holder
check "load again after that too: 2 nodes and 2 ranges" reload_defaults

echo "# Totals: pass:$((n - failed)) fail:$failed"
[ "$failed" -eq 0 ]
