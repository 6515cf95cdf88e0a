#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what the pipeline needs with apt-get; a no-op when all is there.
. "$(dirname "$0")/lib.sh"

PKGS="build-essential ccache qemu-system-x86 busybox-static
flex bison bc cpio kmod xz-utils libelf-dev libssl-dev codespell
python3 perl git rsync debian-archive-keyring python3-sphinx python3-yaml
gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu"
# The robot's clang: the newest clang-N the archive has, with its linker
# and tools (LLVM=-N).
clang=$(apt-cache pkgnames clang- 2>/dev/null | grep -xE 'clang-[0-9]+' | sort -V | tail -n 1)
[ -n "$clang" ] && PKGS="$PKGS $clang lld-${clang#clang-} llvm-${clang#clang-}"

missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && { echo "all packages present"; exit 0; }

echo "installing:$missing"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q || die "apt-get update failed: is the Debian archive reachable?"
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing ||
	die "could not install:$missing"
