#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# guest.sh FLAVOUR MODE: pack a busybox initramfs with the modules of the
# FLAVOUR kernel, our kselftests and upstream's hmm-tests, boot it in QEMU
# and keep the serial console in out/console-MODE.log.
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: guest.sh plain|check MODE}
mode=${2:?usage: guest.sh plain|check MODE}
kbuild=$BUILD/$flavour
stage=$BASE_DIR/guest-$flavour
initrd=$BASE_DIR/initramfs-$flavour.cpio.gz
console=$OUT/console-$mode.log
[ -f "$kbuild/arch/x86/boot/bzImage" ] || die "no $flavour kernel: build it first"
[ -x /bin/busybox ] || die "no /bin/busybox: install busybox-static"

rm -rf "$stage"
mkdir -p "$stage"/{bin,usr/bin,proc,sys,dev,tmp,upstream}
cp /bin/busybox "$stage/bin/busybox"
cp "$REPO/pipeline/guest/init" "$stage/init"
cp "$REPO/pipeline/guest/timeout" "$stage/usr/bin/timeout"
[ "$mode" = quick ] && cp "$OUT/quick-cmd" "$stage/quick-cmd"

make -C "$SRC_TREE" O="$kbuild" -s INSTALL_MOD_PATH="$stage" INSTALL_MOD_STRIP=1 modules_install

# Our kselftests, static for busybox, when the tree has them.
if [ -d "$SRC_TREE/tools/testing/selftests/hmm" ]; then
	make -C "$SRC_TREE/tools/testing/selftests" TARGETS=hmm \
		O="$BASE_DIR/kselftest-$flavour" KHDR_INCLUDES="-isystem $kbuild/usr/include" \
		USERLDFLAGS=-static INSTALL_PATH="$stage/kselftest" install
fi

# Upstream's hmm-tests, built from the tree being tested, unchanged, with
# the helpers of selftests/mm it includes (newer trees have some).
mmtests=$SRC_TREE/tools/testing/selftests/mm
helpers=()
for h in vm_util hugepage_settings thp_settings; do
	grep -qE "#include [<\"](mm/)?$h\.h[>\"]" "$mmtests/hmm-tests.c" && helpers+=("$mmtests/$h.c")
done
# hugepage_settings.c needs vm_util.c even when hmm-tests does not.
[ ${#helpers[@]} -gt 0 ] && [ -f "$mmtests/vm_util.c" ] &&
	! printf '%s\n' "${helpers[@]}" | grep -q /vm_util.c && helpers+=("$mmtests/vm_util.c")
gcc -static -O2 -Wall -isystem "$kbuild/usr/include" -I "$SRC_TREE" \
	-I "$SRC_TREE/tools/testing/selftests" -I "$mmtests" -I "$SRC_TREE/tools/include" \
	-o "$stage/upstream/hmm-tests" "$mmtests/hmm-tests.c" "${helpers[@]}" -lpthread

(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

# The peer run's benchmark_thp_migration holds 256 MiB buffers, their
# mirror copies and the device's backing: 2G for run as for check.
mem=2G
# The benchmark holds a 256 MiB buffer, its copy and the device's backing.
case "$mode" in bench | benchwall) mem=3G ;; esac
accel=tcg
# KVM hangs on these machines; use it only when asked to.
[ "${HMM_KVM:-0}" = 1 ] && accel=kvm
# The counting benchmark: the guest's clock advances one nanosecond per
# instruction executed, so its figures are the work done, not the host's.
# One vCPU there: with two, round-robin TCG lets an idle CPU spin in a
# cross-CPU call until RCU reports a stall, and the other CPU's work
# would leak into the count.
clock=()
cpus=2
[ "$mode" = bench ] && clock=(-icount shift=0,sleep=off) && cpus=1
echo "booting $flavour kernel, mode $mode, console in $console"
rc=0
timeout -k 10 "${GUEST_TIMEOUT:-1500}" qemu-system-x86_64 -accel "$accel" "${clock[@]}" -m "$mem" -smp "$cpus" \
	-nographic -no-reboot -kernel "$kbuild/arch/x86/boot/bzImage" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 hmm.mode=$mode" </dev/null >"$console" 2>&1 || rc=$?
tr -d '\r' <"$console" >"$console.tmp" && mv "$console.tmp" "$console"
[ $rc -eq 124 ] && echo "guest timed out after ${GUEST_TIMEOUT:-1500}s"
grep -q '^@@@ GUEST DONE' "$console" || echo "the guest did not finish (qemu rc $rc)"
exit 0
