#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# sparse.sh: print the path of a sparse that the base kernel accepts. The
# system's sparse when scripts/checker-valid.sh takes it; otherwise the
# newest sparse source package of $HMM_APT_SUITES, fetched through the
# private apt configuration and built once in the cache (only its C
# program: no LLVM, GTK or sqlite parts). Fails when none is accepted,
# since the kernel would otherwise skip C=2 with a mere warning.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apt.sh"

[ -e "$SRC_TREE/scripts/checker-valid.sh" ] || die "no base tree at $SRC_TREE"

accepted() {	# the kernel's own test of a checker
	[ -x "$1" ] && [ "$(sh "$SRC_TREE/scripts/checker-valid.sh" "$1")" = 1 ]
}

system=$(command -v sparse || true)
if [ -n "$system" ] && accepted "$system"; then
	echo "$system"
	exit 0
fi

apt_private_update >&2
ver=$(apt_private apt-cache showsrc sparse | awk '/^Version:/ { print $2 }' | sort -V | tail -n1)
[ -n "$ver" ] || die "no sparse source package in $HMM_APT_SUITES"
dir=$CACHE/sparse-$ver
if ! accepted "$dir/sparse"; then
	rm -rf "$dir" "$APT_DIR/sparse-src"
	mkdir -p "$APT_DIR/sparse-src"
	(cd "$APT_DIR/sparse-src" &&
		apt_private apt-get -q source --download-only "sparse=$ver") >&2 ||
		die "could not fetch the sparse $ver source package"
	mkdir -p "$dir"
	tar -C "$dir" --strip-components=1 -xf "$APT_DIR"/sparse-src/sparse_*.orig.tar.*
	make -C "$dir" -j"$JOBS" HAVE_LLVM=no HAVE_GTK=no HAVE_SQLITE=no sparse >&2 ||
		die "sparse $ver does not build"
	rm -rf "$APT_DIR/sparse-src"
fi
accepted "$dir/sparse" || die "the base rejects sparse $ver too ($dir/sparse)"
echo "$dir/sparse"
