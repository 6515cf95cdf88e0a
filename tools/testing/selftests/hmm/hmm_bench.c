// SPDX-License-Identifier: GPL-2.0
/*
 * hmm_bench: how fast hmm_dummy moves pages to its device and back, and
 * reads a range through its mirror, next to the base tree's lib/test_hmm
 * (same ioctl numbers and layout, so one program drives both) and to a
 * plain memcpy of the same size. A program that prints figures, not a
 * test: make bench runs it.
 *
 * Usage: hmm_bench [-i] [-r ROUNDS] OURS_NODE UPSTREAM_NODE
 *
 * -i: the guest runs under QEMU -icount shift=0,sleep=off, where the clock
 * advances by one nanosecond per instruction executed: a "time" is then
 * the work done, in instructions, whatever the host's load, and the same
 * run gives the same figures within a fraction of a percent. Figures are
 * printed in millions of instructions, and ROUNDS defaults to 3 (a median
 * needs no more when nothing is noise). Without -i, times are wall-clock
 * and rates in GB/s, for what instructions cannot show (cache misses,
 * waits between CPUs); ROUNDS then defaults to a table per size.
 *
 * Method. Times under QEMU TCG are emulated and noisy, and drift from one
 * boot to the next, so the two devices are only compared inside one run,
 * round by round. Each round times a memcpy, then ours and upstream, one
 * after the other (upstream first every other round), each on a buffer
 * mapped and filled afresh, and takes the ratio of the two rates. A row
 * gives the median rate of each side over its rounds, the median of the
 * per-round ratios ours/upstream with their interquartile range (q1, q3),
 * and the median of the per-round ratios ours/memcpy. Only the ioctl (or
 * the memcpy) is timed. Every byte moved or read is checked against the
 * pattern of pat_fill(), written once into a reference buffer that fresh
 * buffers are copied from and compared with (pat_fill() and pat_diff(),
 * a byte at a time, would take seconds per 256 MiB under TCG); the
 * destination is overwritten before each command, so stale data fails.
 * MIGRATE_TO_DEV and READ must report every page; MIGRATE_TO_SYS at least
 * one (lib/test_hmm counts a THP as one), then SNAPSHOT must show no page
 * left in device memory.
 *
 * After each of our migrations, HMM_DUMMY_PHASE_TIMES says where its
 * time went: for each migration row a "phases" line gives, per page,
 * the mean over the rounds of the phases of migrate_vma() and the
 * driver's callbacks (collect, prepare, unmap, alloc_and_copy, pages,
 * finalize_and_map, finalize), what the driver did around them (driver:
 * the mmap lock, batching, reading the pages back to the caller), the
 * whole command as the driver saw it, then ours and upstream's per page
 * as the ioctl took from user space.
 *
 * Rows, for 2, 32 and 256 MiB:
 *   4KiB>dev 4KiB>sys	MIGRATE_TO_DEV (which also reads the data back from
 *			the device), then MIGRATE_TO_SYS, of 4 KiB pages
 *   THP>dev THP>sys	the same on a buffer advised for THP, mapped after
 *			compacting memory
 *   read-new		device READ of a range never touched: the mirror
 *			faults in zero pages
 *   read-full		device READ of a range filled first (4 KiB pages)
 * Rates are in GB/s (10^9 bytes), counts in millions of instructions
 * (10^6). A failed round is reported on stderr
 * and ends its row; the exit code is then 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "hmm_dummy_util.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define MIB		(1024UL * 1024)
#define MAX_LEN		(256 * MIB)
#define MAX_ROUNDS	151
#define BENCH_SEED	0xbe9c
/* What a destination holds before a command; never a whole pattern. */
#define STALE_BYTE	0xff

enum { OURS, UPSTREAM, NR_SIDES };

enum kind { MIGRATE_4K, MIGRATE_THP, READ_NEW, READ_FULL, NR_KINDS };

/* Row names of each kind, one per timed command. */
static const char * const names[NR_KINDS][2] = {
	[MIGRATE_4K]	= { "4KiB>dev", "4KiB>sys" },
	[MIGRATE_THP]	= { "THP>dev", "THP>sys" },
	[READ_NEW]	= { "read-new" },
	[READ_FULL]	= { "read-full" },
};

static const size_t sizes_mib[] = { 2, 32, 256 };

/*
 * Wall-clock rounds of each kind at each size, about five minutes in all
 * under TCG. Their medians move by 10% from run to run, and by up to 20%
 * for THP>dev at 256 MiB, where the side that goes second in a round is
 * often the slower: these rows are for reference, the instruction counts
 * (-i) are the figures to compare.
 */
static const int wall_rounds[NR_KINDS][ARRAY_SIZE(sizes_mib)] = {
	[MIGRATE_4K]	= { 51, 21, 5 },
	[MIGRATE_THP]	= { 51, 21, 11 },
	[READ_NEW]	= { 51, 21, 7 },
	[READ_FULL]	= { 51, 21, 7 },
};

/* Rounds of every row when counting instructions. */
#define ICOUNT_ROUNDS	3

/*
 * The times of one row's rounds, in seconds (instructions / 10^9 under
 * -i): [side][command][round]; and where our migrations spent theirs,
 * summed over the rounds that completed: [command][HMM_DUMMY_PHASE_*].
 */
struct samples {
	int n;
	double t[NR_SIDES][2][MAX_ROUNDS];
	double copy[MAX_ROUNDS];
	double phase[2][HMM_DUMMY_NR_PHASES];
};

static const char *nodes[NR_SIDES];
static int fds[NR_SIDES];
static char *ref;	/* MAX_LEN bytes of pattern BENCH_SEED */
static char *zeros;	/* MAX_LEN bytes never written: reads as zeros */
static char *mirror;	/* where commands and memcpy copy to */
static long page_size;
static int icount;	/* -i: the clock counts instructions */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What a row shows of @seconds for @len bytes: GB/s, or M instructions. */
static double figure(size_t len, double seconds)
{
	if (icount)
		return seconds * 1e3;
	return seconds > 0 ? len / seconds / 1e9 : 0;
}

/* Add what our last command's phases took to @phase; 0 or -1. */
static int add_phase_times(double phase[HMM_DUMMY_NR_PHASES])
{
	struct hmm_dummy_phase_times pt;
	int i;

	if (ioctl(fds[OURS], HMM_DUMMY_PHASE_TIMES, &pt)) {
		fprintf(stderr, "hmm_bench: %s: PHASE_TIMES: %s\n", nodes[OURS],
			strerror(errno));
		return -1;
	}
	for (i = 0; i < HMM_DUMMY_NR_PHASES; i++)
		phase[i] += pt.ns[i] / 1e9;
	return 0;
}

/*
 * Compact memory, so that each THP buffer, and the huge pages a device
 * allocates to move it, start from free memory in a like state, whatever
 * the side before left behind. Best effort.
 */
static void compact(void)
{
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0)
		perror("hmm_bench: compact_memory");
	close(fd);
}

/* A fresh buffer of @len bytes, 2 MiB aligned, THP or not; NULL on error. */
static char *map_buffer(size_t len, int thp, char **raw)
{
	char *p;

	if (thp && len >= SZ_2M)
		compact();
	*raw = mmap(NULL, len + SZ_2M, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*raw == MAP_FAILED) {
		perror("hmm_bench: mmap");
		return NULL;
	}
	p = (char *)(((uintptr_t)*raw + SZ_2M - 1) & ~(SZ_2M - 1));
	if (madvise(p, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
		perror("hmm_bench: madvise");
		munmap(*raw, len + SZ_2M);
		return NULL;
	}
	return p;
}

/* 0 if @p holds the first @len bytes of @want, else -1 saying where not. */
static int check(const char *who, const char *what, const char *p,
		 const char *want, size_t len)
{
	long off;

	if (!memcmp(p, want, len))
		return 0;
	off = want == zeros ? zero_diff(p, len) : pat_diff(p, len, BENCH_SEED);
	fprintf(stderr, "hmm_bench: %s: %s of %zu MiB: byte %ld is wrong\n",
		who, what, len / MIB, off);
	return -1;
}

/*
 * Command @req on the @len bytes at @buf through device @side, copying to
 * the mirror buffer; its time goes to @t. It must report every page, or
 * some unless @all. 0, or -1 saying why.
 */
static int timed_cmd(int side, unsigned long req, const char *what,
		     char *buf, size_t len, double *t, int all)
{
	unsigned long npages = len / page_size;
	struct hmm_dummy_cmd out = { 0 };
	double start;
	int ret;

	start = now();
	ret = dummy_cmd(fds[side], req, (uintptr_t)buf, mirror, npages, &out);
	*t = now() - start;
	if (!ret && (out.cpages == npages || (!all && out.cpages)))
		return 0;
	fprintf(stderr, "hmm_bench: %s: %s of %zu MiB: %s, %llu of %lu pages\n",
		nodes[side], what, len / MIB, ret ? strerror(-ret) : "short",
		(unsigned long long)out.cpages, npages);
	return -1;
}

/* 0 if device @side sees none of the @len bytes at @buf in its memory. */
static int check_in_ram(int side, char *buf, size_t len)
{
	static unsigned char snap[MAX_LEN / 4096];
	unsigned long i, npages = len / page_size;
	int ret;

	ret = dev_snap(fds[side], buf, snap, npages, NULL);
	if (ret) {
		fprintf(stderr, "hmm_bench: %s: SNAPSHOT of %zu MiB: %s\n",
			nodes[side], len / MIB, strerror(-ret));
		return -1;
	}
	for (i = 0; i < npages; i++) {
		/* DEV_PRIVATE_LOCAL, DEV_PRIVATE_REMOTE and ERROR have it. */
		if (snap[i] & HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL) {
			fprintf(stderr, "hmm_bench: %s: MIGRATE_TO_SYS left page %lu: %#x\n",
				nodes[side], i, snap[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * One go of @kind through device @side on a fresh buffer, its times in
 * @t and, for ours, where they went added to @phase; 0 or -1.
 */
static int run_side(int side, enum kind kind, size_t len, double t[2],
		    double phase[2][HMM_DUMMY_NR_PHASES])
{
	const char *who = nodes[side];
	char *raw, *buf;
	int ret = -1;

	buf = map_buffer(len, kind == MIGRATE_THP, &raw);
	if (!buf)
		return -1;
	if (kind != READ_NEW)
		memcpy(buf, ref, len);
	memset(mirror, STALE_BYTE, len);

	if (kind == READ_NEW || kind == READ_FULL) {
		if (timed_cmd(side, HMM_DUMMY_READ, "READ", buf, len, &t[0], 1) ||
		    check(who, "READ", mirror, kind == READ_NEW ? zeros : ref, len))
			goto out;
	} else {
		if (timed_cmd(side, HMM_DUMMY_MIGRATE_TO_DEV, "MIGRATE_TO_DEV",
			      buf, len, &t[0], 1) ||
		    (side == OURS && add_phase_times(phase[0])) ||
		    check(who, "MIGRATE_TO_DEV", mirror, ref, len))
			goto out;
		if (timed_cmd(side, HMM_DUMMY_MIGRATE_TO_SYS, "MIGRATE_TO_SYS",
			      buf, len, &t[1], 0) ||
		    (side == OURS && add_phase_times(phase[1])) ||
		    check_in_ram(side, buf, len) ||
		    check(who, "MIGRATE_TO_SYS", buf, ref, len))
			goto out;
	}
	ret = 0;
out:
	munmap(raw, len + SZ_2M);
	return ret;
}

/* A memcpy of @len bytes from a fresh buffer to the mirror; 0 or -1. */
static int run_memcpy(size_t len, int thp, double *t)
{
	char *raw, *buf = map_buffer(len, thp, &raw);
	double start;
	int ret;

	if (!buf)
		return -1;
	memcpy(buf, ref, len);
	memset(mirror, STALE_BYTE, len);
	start = now();
	memcpy(mirror, buf, len);
	*t = now() - start;
	ret = check("memcpy", "memcpy", mirror, ref, len);
	munmap(raw, len + SZ_2M);
	return ret;
}

/* @nr rounds of @kind on @len bytes into @s; 0, or -1 if one failed. */
static int run_row(enum kind kind, size_t len, int nr, struct samples *s)
{
	double t[NR_SIDES][2] = { { 0 } }, copy, phase[2][HMM_DUMMY_NR_PHASES];
	struct hmm_dummy_phase_times left_over;
	int r, i, side, cmd, p;

	if (nr > MAX_ROUNDS)
		nr = MAX_ROUNDS;
	memset(s->phase, 0, sizeof(s->phase));
	/* What a failed round of the row before left counted is not ours. */
	if (ioctl(fds[OURS], HMM_DUMMY_PHASE_TIMES, &left_over))
		return -1;
	for (s->n = 0; s->n < nr; s->n++) {
		r = s->n;
		if (run_memcpy(len, kind == MIGRATE_THP, &copy))
			return -1;
		memset(phase, 0, sizeof(phase));
		for (i = 0; i < NR_SIDES; i++) {
			side = (i + r) % NR_SIDES;
			if (run_side(side, kind, len, t[side], phase))
				return -1;
		}
		for (cmd = 0; cmd < 2; cmd++)
			for (p = 0; p < HMM_DUMMY_NR_PHASES; p++)
				s->phase[cmd][p] += phase[cmd][p];
		s->copy[r] = copy;
		for (side = 0; side < NR_SIDES; side++)
			for (cmd = 0; cmd < 2; cmd++)
				s->t[side][cmd][r] = t[side][cmd];
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Quantile @q (0 to 1) of the @n values at @v, which it sorts. */
static double quantile(double *v, int n, double q)
{
	double pos = q * (n - 1);
	int i = (int)pos;

	qsort(v, n, sizeof(*v), cmp_double);
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

static void print_row(const char *name, size_t len, const struct samples *s,
		      int cmd, double secs)
{
	double ours[MAX_ROUNDS], up[MAX_ROUNDS], copy[MAX_ROUNDS];
	double ratio[MAX_ROUNDS], vs_copy[MAX_ROUNDS];
	int i, n = s->n;

	if (!n) {
		printf("bench: %-9s %4zu %3d | failed\n", name, len / MIB, n);
		return;
	}
	for (i = 0; i < n; i++) {
		ours[i] = figure(len, s->t[OURS][cmd][i]);
		up[i] = figure(len, s->t[UPSTREAM][cmd][i]);
		copy[i] = figure(len, s->copy[i]);
		/* Upstream's time over ours: above 1, ours did less work. */
		ratio[i] = s->t[OURS][cmd][i] > 0 ?
			   s->t[UPSTREAM][cmd][i] / s->t[OURS][cmd][i] : 0;
		vs_copy[i] = s->t[OURS][cmd][i] > 0 ?
			     s->copy[i] / s->t[OURS][cmd][i] : 0;
	}
	printf("bench: %-9s %4zu %3d | %8.3f %8.3f %8.3f | %6.3f %6.3f %6.3f | %6.3f | %4.0f\n",
	       name, len / MIB, n, quantile(ours, n, 0.5), quantile(up, n, 0.5),
	       quantile(copy, n, 0.5), quantile(ratio, n, 0.5),
	       quantile(ratio, n, 0.25), quantile(ratio, n, 0.75),
	       quantile(vs_copy, n, 0.5), secs);
}

/*
 * Where our command @cmd of a migration row went, per 4 KiB page over all
 * rounds (instructions under -i, else nanoseconds), next to ours and
 * upstream's whole per page as timed from user space.
 */
static void print_phases(const char *name, size_t len, const struct samples *s, int cmd)
{
	static const char * const phase_names[HMM_DUMMY_PHASE_COMMAND] = {
		"collect", "prepare", "unmap", "alloc_and_copy", "pages",
		"finalize_and_map", "finalize",
	};
	double pages = (double)s->n * (len / page_size), inside = 0, ours = 0, up = 0;
	const double *ph = s->phase[cmd];
	int i;

	if (!s->n)
		return;
	printf("bench: %-9s %4zu phases/page:", name, len / MIB);
	for (i = 0; i < HMM_DUMMY_PHASE_COMMAND; i++) {
		printf(" %s %.0f", phase_names[i], ph[i] * 1e9 / pages);
		inside += ph[i];
	}
	for (i = 0; i < s->n; i++) {
		ours += s->t[OURS][cmd][i];
		up += s->t[UPSTREAM][cmd][i];
	}
	printf(" driver %.0f command %.0f | ours %.0f up %.0f\n",
	       (ph[HMM_DUMMY_PHASE_COMMAND] - inside) * 1e9 / pages,
	       ph[HMM_DUMMY_PHASE_COMMAND] * 1e9 / pages, ours * 1e9 / pages,
	       up * 1e9 / pages);
}

int main(int argc, char **argv)
{
	static struct samples s;
	double start = now(), row_start;
	char *ref_raw, *zeros_raw, *mirror_raw;
	int failed = 0, kind, side, opt, nr, fixed_rounds = 0;
	struct hmm_dummy_phase_times pt;
	unsigned int i;

	while ((opt = getopt(argc, argv, "ir:")) != -1) {
		if (opt == 'i')
			icount = 1;
		else if (opt == 'r' && atoi(optarg) > 0)
			fixed_rounds = atoi(optarg);
		else
			fixed_rounds = -1;
	}
	if (fixed_rounds < 0 || fixed_rounds > MAX_ROUNDS || argc - optind != 2) {
		fprintf(stderr, "usage: %s [-i] [-r ROUNDS (1-%d)] OURS_NODE UPSTREAM_NODE\n",
			argv[0], MAX_ROUNDS);
		return 2;
	}
	if (icount && !fixed_rounds)
		fixed_rounds = ICOUNT_ROUNDS;
	page_size = sysconf(_SC_PAGESIZE);
	for (side = 0; side < NR_SIDES; side++) {
		nodes[side] = argv[optind + side];
		fds[side] = open(nodes[side], O_RDWR | O_CLOEXEC);
		if (fds[side] < 0) {
			fprintf(stderr, "hmm_bench: %s: %s\n", nodes[side], strerror(errno));
			return 1;
		}
	}
	ref = map_buffer(MAX_LEN, 0, &ref_raw);
	zeros = map_buffer(MAX_LEN, 0, &zeros_raw);
	mirror = map_buffer(MAX_LEN, 0, &mirror_raw);
	if (!ref || !zeros || !mirror)
		return 1;
	pat_fill(ref, MAX_LEN, BENCH_SEED);
	/* Our driver counts phases from its first PHASE_TIMES on. */
	if (ioctl(fds[OURS], HMM_DUMMY_PHASE_TIMES, &pt)) {
		fprintf(stderr, "hmm_bench: %s: PHASE_TIMES: %s\n", nodes[OURS],
			strerror(errno));
		return 1;
	}

	printf("bench: clock: %s\n", icount ?
	       "instructions (QEMU -icount shift=0,sleep=off)" : "wall (QEMU TCG)");
	printf("bench: each round: a memcpy, then ours and upstream in turn, upstream\n");
	printf("bench: first every other round, each on a fresh buffer; n: rounds\n");
	printf("bench: ours, up, memcpy: medians, %s\n",
	       icount ? "in millions of instructions (less is better)" :
	       "rates in GB/s (more is better)");
	printf("bench: s: the guest's seconds the row took%s\n",
	       icount ? " (10^9 instructions)" : "");
	printf("bench: o/u: median of the per-round ratios upstream's time / ours\n");
	printf("bench: (above 1: ours is faster); q1, q3: their interquartile range\n");
	printf("bench: o/m: median of the per-round ratios memcpy's time / ours\n");
	printf("bench: %-9s %4s %3s | %8s %8s %8s | %6s %6s %6s | %6s | %4s\n",
	       "row", "MiB", "n", "ours", "up", "memcpy", "o/u", "q1", "q3",
	       "o/m", "s");
	fflush(stdout);
	for (kind = 0; kind < NR_KINDS; kind++) {
		for (i = 0; i < ARRAY_SIZE(sizes_mib); i++) {
			size_t len = sizes_mib[i] * MIB;

			nr = fixed_rounds ? fixed_rounds : wall_rounds[kind][i];
			row_start = now();
			failed |= run_row(kind, len, nr, &s);
			print_row(names[kind][0], len, &s, 0, now() - row_start);
			if (names[kind][1])
				print_row(names[kind][1], len, &s, 1, now() - row_start);
			if (names[kind][1]) {
				print_phases(names[kind][0], len, &s, 0);
				print_phases(names[kind][1], len, &s, 1);
			}
			fflush(stdout);
		}
	}
	printf("bench: total %.0f s\n", now() - start);
	for (side = 0; side < NR_SIDES; side++)
		close(fds[side]);
	return failed ? 1 : 0;
}
