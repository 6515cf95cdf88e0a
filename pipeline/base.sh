#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch the base kernel and turn it into a git repo tagged "base": Debian's
# newest linux-source-X.Y package across $HMM_APT_SUITES (or the one
# HMM_BASE_PKG names), downloaded through the private apt configuration
# and unpacked in the cache; nothing is installed on the system. Redone
# only when the package version changes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apt.sh"

apt_private_update
if [ -z "${HMM_BASE_PKG:-}" ]; then
	# The highest X.Y among the linux-source-X.Y packages the suites carry.
	pkg=$(apt_private apt-cache pkgnames linux-source- |
		grep -E '^linux-source-[0-9]+\.[0-9]+$' | sort -V | tail -n1)
	[ -n "$pkg" ] || die "no linux-source-X.Y package in $HMM_APT_SUITES"
	echo "$pkg" >"$CACHE/base-pkg"
	base_paths
fi
pkgver=$(apt_private apt-cache policy "$BASE_PKG" | awk '/Candidate:/ { print $2 }')
[ -n "$pkgver" ] && [ "$pkgver" != "(none)" ] || die "$BASE_PKG is in none of $HMM_APT_SUITES"

if [ -f "$BASE_GIT/hmm-base-pkg" ] && [ "$(cat "$BASE_GIT/hmm-base-pkg")" = "$pkgver" ]; then
	echo "base repo up to date: $BASE_PKG $pkgver, Linux $(base_version)"
	exit 0
fi

rm -rf "$BASE_DIR"
mkdir -p "$BASE_DIR/extract"
(cd "$APT_DIR/archives" && rm -f "${BASE_PKG}"_*.deb &&
	apt_private apt-get -q download "$BASE_PKG=$pkgver") || die "could not download $BASE_PKG $pkgver"
dpkg-deb --fsys-tarfile "$APT_DIR/archives/${BASE_PKG}"_*.deb |
	tar -xO --wildcards './usr/src/linux-source-*.tar.xz' | tar -C "$BASE_DIR/extract" -xJ
top=$(ls "$BASE_DIR/extract")
git init -q --bare "$BASE_GIT"
export GIT_DIR=$BASE_GIT GIT_WORK_TREE=$BASE_DIR/extract/$top
export GIT_AUTHOR_NAME="Debian $BASE_PKG" GIT_AUTHOR_EMAIL="debian-kernel@lists.debian.org"
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
export GIT_AUTHOR_DATE=$SERIES_DATE GIT_COMMITTER_DATE=$SERIES_DATE
git config core.autocrlf false
git config gc.auto 0
# The tarball's own .gitignore ignores everything: force-add the lot.
git add -f -A
git commit -q -m "Linux from Debian $BASE_PKG $pkgver"
git tag -f "$BASE_TAG" >/dev/null
unset GIT_DIR GIT_WORK_TREE
rm -rf "$BASE_DIR/extract" "$APT_DIR/archives/${BASE_PKG}"_*.deb
ver=$(base_version)
git -C "$BASE_GIT" tag -f "v$ver-debian" >/dev/null
echo "$pkgver" >"$BASE_GIT/hmm-base-pkg"
echo "base repo made: $BASE_PKG $pkgver, Linux $ver"
