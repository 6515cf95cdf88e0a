#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# robot.sh [full|reduced]: what the kernel test robot would build. The
# series' own objects (the C files it adds, tools/ aside) are compiled with
# W=1 at every commit that changes a kernel file, so that each stays
# bisectable, in every cell of a matrix of architectures, compilers and
# configurations; any warning or error fails the cell. One line per cell.
#
# A cell's config is tinyconfig plus the guest's fragments (qemu.config,
# plain.config or check.config, the selftests' config; options another
# architecture does not know are dropped) plus the cell's own options, the
# same at every commit, as pipeline/bisect.sh does. Each cell keeps its
# build tree under the cache, so a second run only compiles what changed.
#
# "reduced" (make check) takes the cells the pipeline's own kernels do not
# already cover: the options off, clang, arm64.
. "$(dirname "$0")/lib.sh"

set_name=${1:-full}
head=$(cat "$OUT/applied-head" 2>/dev/null) || die "no applied series: run pipeline/apply.sh"
ROBOT=$BASE_DIR/robot
TREE=$ROBOT/src

# Options a driver author's kernel may well lack: each path that depends
# on one must build without it.
OFF="TRANSPARENT_HUGEPAGE=n SWAP=n HUGETLBFS=n USERFAULTFD=n COMPACTION=n"

# name, architecture (ARCH=), compiler, flavour fragment, options.
CELLS=(
	"x86_64-gcc		x86_64	gcc	plain"
	"x86_64-gcc-builtin	x86_64	gcc	plain	HMM_DUMMY=y"
	"x86_64-gcc-off		x86_64	gcc	plain	$OFF"
	"x86_64-gcc-debug	x86_64	gcc	check"
	"x86_64-clang		x86_64	clang	plain"
	"x86_64-clang-off	x86_64	clang	plain	$OFF HMM_DUMMY=y"
	"arm64-gcc		arm64	gcc	plain"
	"arm64-gcc-off		arm64	gcc	plain	$OFF HMM_DUMMY=y"
	"riscv64-gcc		riscv	gcc	plain	SPARSEMEM_MANUAL=y"
)
REDUCED="x86_64-gcc-off x86_64-clang arm64-gcc"

# The cross compilers' prefixes, by ARCH=.
declare -A CROSS=([x86_64]="" [arm64]=aarch64-linux-gnu- [riscv]=riscv64-linux-gnu-)

# The make command line of a cell: KMAKE=(...).
cell_make() {	# cell_make ARCH COMPILER BUILD_DIR
	local arch=$1 compiler=$2 out=$3 cross=${CROSS[$1]}
	KMAKE=(make -C "$TREE" O="$out" -j"$JOBS" ARCH="$arch" HOSTCC="ccache gcc")
	if [ "$compiler" = clang ]; then
		KMAKE+=(LLVM="-$(robot_clang_version)" CC="ccache clang-$(robot_clang_version)")
	else
		KMAKE+=(CROSS_COMPILE="$cross" CC="ccache ${cross}gcc")
	fi
}

# The config of a cell at the commit TREE is at: made in a scratch build
# tree (OUT/kconfig) and kept under $ROBOT/configs by what it is made from,
# so that a run that changes none of that makes none. Prints its path.
cell_config() {	# cell_config OUT SRCARCH FLAVOUR OPTIONS...
	local out=$1 srcarch=$2 flavour=$3 opt fragments key saved scratch=$1/kconfig
	shift 3
	fragments=("$REPO/pipeline/kconfig/qemu.config" "$REPO/pipeline/kconfig/$flavour.config"
		   "$ROBOT/selftests.config" "$out/cell.config")
	for opt in "$@"; do
		case "$opt" in
		*=n) echo "# CONFIG_${opt%=n} is not set" ;;
		*) echo "CONFIG_$opt" ;;
		esac
	done >"$out/cell.config"
	key=$({ cat "${fragments[@]}"; echo "${KMAKE[*]}"
		git -C "$TREE" ls-tree -r HEAD | grep -E 'Kconfig|Makefile'; } | sha1sum | cut -c1-16)
	saved=$ROBOT/configs/$key.config
	if [ ! -f "$saved" ]; then
		mkdir -p "$scratch" "$ROBOT/configs"
		"${KMAKE[@]/#O=*/O=$scratch}" -s tinyconfig >&2
		"$TREE/scripts/kconfig/merge_config.sh" -m -O "$scratch" "$scratch/.config" \
			"${fragments[@]}" >/dev/null
		"${KMAKE[@]/#O=*/O=$scratch}" -s olddefconfig >&2
		config_survives "$TREE" "$scratch/.config" "$srcarch" "$out/cell.config" >&2
		cp "$scratch/.config" "$saved"
	fi
	echo "$saved"
}

# Whether the config builds OBJ: the option of its line in its directory's
# Makefile (that of the composite object it is part of, if so) is y or m.
obj_enabled() {	# obj_enabled CONFIG OBJ
	local config=$1 dir=${2%/*} name=${2##*/} line sym
	line=$(sed -e ':a' -e '/\\$/N' -e 's/\\\n/ /' -e 'ta' "$TREE/$dir/Makefile" |
		grep -E "(^|[[:space:]=])$name([[:space:]]|$)" | head -n 1)
	if [[ $line =~ ^obj-\$\((CONFIG_[A-Za-z0-9_]+)\) ]]; then
		sym=${BASH_REMATCH[1]}
		grep -qE "^$sym=(y|m)$" "$config"
	elif [[ $line =~ ^([A-Za-z0-9_-]+)-(y|objs) ]]; then
		obj_enabled "$config" "$dir/${BASH_REMATCH[1]}.o"
	else
		[[ $line =~ ^obj-y ]]
	fi
}

# One cell over every commit; prints its line, returns non-zero on failure.
# Only the objects the config builds are compiled: before the driver,
# nothing selects the core, whose code is then in no kernel at all. At the
# last commit every object must be built, or the cell tests nothing.
run_cell() {	# run_cell NAME ARCH COMPILER FLAVOUR OPTIONS...
	local name=$1 arch=$2 compiler=$3 flavour=$4 start rev all obj objs config n=0 commits=0
	local out=$ROBOT/$name srcarch=$2 log=$LOGS/robot-$1.log
	shift 4
	[ "$arch" = x86_64 ] && srcarch=x86
	start=$(date +%s)
	mkdir -p "$out"
	cell_make "$arch" "$compiler" "$out"
	: >"$log"
	for rev in $(git -C "$BASE_GIT" rev-list --reverse "$BASE_TAG..$head"); do
		git -C "$BASE_GIT" diff --name-only "$rev^" "$rev" |
			grep -qEv '^(tools/|Documentation/|MAINTAINERS$)' || continue
		git -C "$TREE" checkout -q -f --detach "$rev"
		all=$(git -C "$TREE" diff --name-only --diff-filter=A "$BASE_TAG" "$rev" -- '*.c' |
			grep -v '^tools/' | sed 's/\.c$/.o/' || true)
		echo "==== $(git -C "$TREE" log -1 --format='%h %s' "$rev")" >>"$log"
		config=$(cell_config "$out" "$srcarch" "$flavour" "$@" 2>>"$log") || {
			echo "robot: $name: FAILED to configure at $(git -C "$TREE" log -1 --format='%h %s' "$rev")"
			tail -n 5 "$log" | sed 's/^/    /'
			return 1
		}
		objs=
		for obj in $all; do
			obj_enabled "$config" "$obj" && objs="$objs $obj"
		done
		[ -n "$objs" ] || continue
		# An unchanged .config keeps its date: nothing is configured again.
		cmp -s "$config" "$out/.config" || cp "$config" "$out/.config"
		# Compiled again every time, so that a warning is seen again:
		# ccache gives back the compiler's output with the object.
		(cd "$out" && rm -f $objs)
		# shellcheck disable=SC2086
		if ! "${KMAKE[@]}" W=1 $objs >>"$log" 2>&1 || grep -qE '(warning|error):' "$log"; then
			echo "robot: $name: FAILED at $(git -C "$TREE" log -1 --format='%h %s' "$rev")"
			grep -E '(warning|error):' "$log" | head -n 5 | sed 's/^/    /'
			[ -n "$(grep -E '(warning|error):' "$log")" ] || tail -n 5 "$log" | sed 's/^/    /'
			return 1
		fi
		commits=$((commits + 1))
		n=$(wc -w <<<"$objs")
	done
	if [ "$n" -ne "$(wc -w <<<"$all")" ]; then
		echo "robot: $name: FAILED: its config builds $n of the series' $(wc -w <<<"$all") objects"
		return 1
	fi
	echo "robot: $name: ok, $n objects at $commits commits, W=1, $(($(date +%s) - start))s" \
	     "($("${KMAKE[@]}" -s kernelversion 2>/dev/null | head -n 1), $(compiler_id "$compiler" "$arch"))"
}

compiler_id() {	# compiler_id COMPILER ARCH: the compiler's first line
	if [ "$1" = clang ]; then
		"clang-$(robot_clang_version)" --version | head -n 1
	else
		"${CROSS[$2]}gcc" --version | head -n 1
	fi
}

git -C "$BASE_GIT" worktree prune
[ -e "$TREE/.git" ] || git -C "$BASE_GIT" worktree add -q -f --detach "$TREE" "$BASE_TAG" >/dev/null
git -C "$BASE_GIT" show "$head:tools/testing/selftests/hmm/config" >"$ROBOT/selftests.config"
export KBUILD_BUILD_TIMESTAMP="$SERIES_DATE" KBUILD_BUILD_USER=hmm KBUILD_BUILD_HOST=qemu

failed=0
for cell in "${CELLS[@]}"; do
	# shellcheck disable=SC2086
	set -- $cell
	if [ "$set_name" = reduced ] && [[ " $REDUCED " != *" $1 "* ]]; then
		continue
	fi
	run_cell "$@" || failed=1
done
git -C "$TREE" checkout -q -f --detach "$head"
exit $failed
