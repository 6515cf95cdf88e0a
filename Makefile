# The HMM series pipeline. See README.md.
#   make run      install what is missing, make the series, apply it, build
#                 the plain kernel, boot it and run the kselftests
#   make check    everything: checkpatch, bisect builds, W=1 and sparse, the
#                 debug kernel, kselftests, coexistence and peer suites
#   make series   only write out/series/
#   make bench    boot the plain kernel and measure migration through
#                 hmm_dummy, through lib/test_hmm and a memcpy (out/bench.txt)
#   make robot    compile the series' objects at every commit with W=1 over
#                 a matrix of architectures, compilers and configs
#   make pristine record upstream's hmm-tests on the unpatched base
#   make move TO=linux-source-X.Y
#                 move the series onto another base and rewrite the repo's
#                 fragments from the result (README: Following mainline)
#   make clean    remove out/; make clean-cache wipes the caches too

.PHONY: run check series bench robot pristine move clean clean-cache

run check series bench robot pristine:
	@bash pipeline/main.sh $@

move:
	@bash pipeline/main.sh move $(TO)

clean:
	rm -rf out

clean-cache: clean
	rm -rf "$${HMM_SERIES_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/hmm-series}"
