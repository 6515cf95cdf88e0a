# SPDX-License-Identifier: GPL-2.0
# apt_private ARGS...: run apt-get (or apt-cache, as $APT) on a private
# configuration in the cache that reads the suites in $HMM_APT_SUITES from
# the archive this machine's own sources name. The system's sources, lists
# and package state are never touched. Sourced, never run.

HMM_APT_SUITES=${HMM_APT_SUITES:-"trixie trixie-backports sid"}
APT_DIR=$CACHE/apt

apt_archive_uri() {	# the Debian archive the system's sources point to
	apt-cache policy 2>/dev/null |
		awk '$2 ~ /^(https?|file|ftp):/ && $3 ~ /\/main$/ && $3 !~ /security/ { print $2; exit }'
}

apt_private_opts() {
	echo "-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$APT_DIR/sources.list.d" \
	     "-o Dir::State::Lists=$APT_DIR/lists -o Dir::Cache=$APT_DIR/cache" \
	     "-o Dir::Cache::archives=$APT_DIR/archives -o APT::Sandbox::User=root" \
	     "-o Debug::NoLocking=1"
}

# apt_private_update: write the private sources and refresh their lists,
# at most once an hour; a failed refresh keeps the lists it had.
apt_private_update() {
	local uri
	uri=$(apt_archive_uri)
	[ -n "$uri" ] || die "no Debian archive in the system's apt sources"
	mkdir -p "$APT_DIR"/{sources.list.d,lists/partial,cache,archives/partial}
	cat >"$APT_DIR/sources.list.d/hmm.sources.new" <<-SRC
	Types: deb deb-src
	URIs: $uri
	Suites: $HMM_APT_SUITES
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	SRC
	if ! cmp -s "$APT_DIR/sources.list.d/hmm.sources.new" "$APT_DIR/sources.list.d/hmm.sources" ||
	   [ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*InRelease' -mmin -60)" ]; then
		mv "$APT_DIR/sources.list.d/hmm.sources.new" "$APT_DIR/sources.list.d/hmm.sources"
		# shellcheck disable=SC2046
		apt-get $(apt_private_opts) -q update >"$APT_DIR/update.log" 2>&1 ||
			echo "warning: apt-get update of $HMM_APT_SUITES failed; using the lists in the cache"
	fi
	rm -f "$APT_DIR/sources.list.d/hmm.sources.new"
}

apt_private() {	# apt_private apt-get|apt-cache ARGS...
	local tool=$1
	shift
	# shellcheck disable=SC2046
	"$tool" $(apt_private_opts) "$@"
}
