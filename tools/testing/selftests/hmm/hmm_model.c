// SPDX-License-Identifier: GPL-2.0
/*
 * hmm_model: a model-based random test of hmm_dummy and the mm under it.
 *
 * Scenario tests prove what their authors thought of; this one drives a
 * seeded random sequence of operations over a few regions of anonymous
 * memory and checks, after every operation, that the kernel agrees with a
 * reference model of every page: the bytes it holds and where it lives
 * (system memory, device 0, device 1, nowhere). The pages mix every state
 * the model knows: never touched, zero page, written, PMD-mapped THP,
 * THP moved whole to a device (one device-private PMD), read-only,
 * PROT_NONE, MADV_FREE'd, swapped out, in device memory, copy-on-write
 * shared with a child, mlocked, GUP-pinned, poisoned and held by a
 * device for exclusive access. A quarter of the operations on the THP
 * region take it whole, every fresh seed starts with it in a device THP,
 * and new memory there is written and often moved whole at once; a run
 * fails if no page was seen in a device THP (coverage count dev-thp).
 *
 * The model only asks what the ABI promises. Where the outcome may
 * legitimately go either way (a migration cut short at a batch boundary,
 * a page MADV_PAGEOUT may or may not have swapped, a child faulting a
 * shared device page back) the model learns the page's location from
 * SNAPSHOT and /proc/self/pagemap, and then checks the bytes are right
 * wherever the page is. Bytes are never allowed to be wrong: a page only
 * reads back as zeros instead of its data when it was MADV_FREE'd and
 * not written since, by the CPU or a device.
 *
 * Exclusive access is two things the model follows apart: the device's
 * mark (CHECK_EXCLUSIVE) and the CPU's device-exclusive entry (pagemap,
 * whose swap type for it is learned at the start). A CPU access, fork,
 * munmap, mremap, MADV_DONTNEED and MADV_FREE, a protection change, mlock,
 * a pin, the other device's access or EXCLUSIVE, and closing the file end
 * the mark for sure; a device access through the same device's marked
 * entries keeps it. Where the kernel may drop it or not (reclaim, a
 * migration's reach, khugepaged in the THP region) the model only bounds
 * it: the mark may go, never come. A marked page must always be one the
 * CPU does not map. The probe at the start only leaves the exclusive
 * operations out on ENOTTY (a driver without EXCLUSIVE) or a pagemap
 * hiding the type; any other error fails the seed, and a whole run ends
 * with a result that fails if they were on and took no page.
 *
 * Each page holds a 64-bit stamp of (seed, operation, page), spread over
 * the page, so a stale, swapped, torn or misplaced page cannot pass.
 *
 * Every seed runs in a process of its own. A failure prints the seed, the
 * last operations that led to it and how to replay it; then, time
 * permitting, the sequence is shrunk by replaying it without some of its
 * operations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "hmm_dummy_uapi.h"

#include "../kselftest.h"
#include "../../../../mm/gup_test.h"
#include "hmm_dummy_util.h"

#define PSZ		4096UL
#define WORDS		(PSZ / sizeof(__u64))
#define THP_PAGES	(SZ_2M / PSZ)
#define NR_REGIONS	4
#define MAX_PAGES	THP_PAGES
/* Room for a region anywhere in a slot, 2 MiB aligned or not. */
#define SLOT_SIZE	(2 * SZ_2M)
#define NR_SLOTS	(2 * NR_REGIONS + 2)
#define MAX_PIN		8
#define LOG_LINES	30
#define LOG_LEN		200
#define MAX_NESTED	4
#define GOLDEN		0x9e3779b97f4a7c15ULL

#define DEFAULT_OPS	300
#define DEFAULT_TIME	20
#define DEFAULT_SHRINK	10
#define SEED_ALARM	240
#define GUP_TEST_PATH	"/sys/kernel/debug/gup_test"
#define PM_PRESENT	0x8000000000000000ULL
#define PM_SWAP		0x4000000000000000ULL

/*
 * The seeds every default run replays, as kselftest runs it. Each of the
 * first five found a page left behind by MIGRATE_TO_DEV or a THP split
 * by MIGRATE_TO_SYS within 40 operations on the kernel before those
 * fixes; the others found a device write lost to MADV_PAGEOUT after
 * MADV_FREE (...225, ...234) and a MADV_FREE'd page left behind by
 * MIGRATE_TO_DEV after a CPU hop (...227). They date from before the
 * exclusive-access operations and are drawn as they were then (see
 * legacy_seed()); the seeds after them draw those operations too.
 */
static const unsigned long fixed_seeds[] = {
	1, 2, 3, 4, 5, 1795953243225UL, 1795953243227UL, 1795953243234UL,
	11, 12, 13,
};

#define NR_LEGACY_SEEDS	8

enum loc { LOC_SYS, LOC_DEV0, LOC_DEV1, LOC_UNKNOWN };
/* Is the CPU's page table entry a device-exclusive one? */
enum cpu_excl { CE_NO, CE_YES, CE_MAYBE };
#define EXCL_BIT(d)	(1U << (d))
#define PM_SWP_TYPE(pm)	((int)((pm) & 0x1f))
enum prot { PR_RW, PR_RO, PR_NONE };

/* Where a page must be after MIGRATE_TO_DEV. */
enum expect { EX_MOVE, EX_STAY, EX_EITHER };

/**
 * struct mpage - what the model knows of one page
 * @tag: the stamp the page's data is made of, 0 for zeros
 * @loc: where the page is, LOC_*
 * @prot: the protection of its VMA, PR_*
 * @mapped: a VMA covers it
 * @maybe_zero: MADV_FREE'd and not written since: zeros are fine too
 * @poisoned: lost by a MIGRATE_PFN_ERROR: any access raises SIGBUS
 * @mlocked: its VMA is VM_LOCKED
 * @pinned: the GUP pin holds the very page mapped here
 * @swapped: the last look found it swapped out
 * @cow: mapped by a live child too, not written by us since the fork
 * @excl_must: EXCL_BIT() of the devices that must hold it exclusive
 * @excl_may: EXCL_BIT() of the devices that may (a superset of @excl_must)
 * @cpu_excl: CE_*, whether the CPU maps it by a device-exclusive entry
 */
struct mpage {
	__u64 tag;
	__u8 loc;
	__u8 prot;
	bool mapped:1;
	bool maybe_zero:1;
	bool poisoned:1;
	bool mlocked:1;
	bool pinned:1;
	bool swapped:1;
	bool cow:1;
	__u8 excl_must;
	__u8 excl_may;
	__u8 cpu_excl;
};

struct region {
	unsigned char *p;
	unsigned int n;
	bool thp;
	int slot;
	struct mpage pg[MAX_PAGES];
};

enum op_kind {
	OP_CPU_READ, OP_CPU_WRITE, OP_DEV_READ, OP_DEV_WRITE, OP_TO_DEV,
	OP_TO_SYS, OP_ALLOC_FAIL, OP_POISON, OP_SNAPSHOT, OP_DONTNEED,
	OP_FREE, OP_PAGEOUT, OP_MPROTECT, OP_MLOCK, OP_MUNLOCK, OP_MREMAP,
	OP_MUNMAP, OP_MMAP, OP_FORK, OP_RELEASE, OP_REOPEN, OP_COPY_MODE,
	OP_PIN, OP_HOP, OP_EXCLUSIVE, OP_CHECK_EXCL, NR_OP_KINDS
};

static const char * const op_names[NR_OP_KINDS] = {
	"cpu_read", "cpu_write", "dev_read", "dev_write", "to_dev",
	"to_sys", "alloc_fail", "poison", "snapshot", "dontneed",
	"free", "pageout", "mprotect", "mlock", "munlock", "mremap",
	"munmap", "mmap", "fork", "release", "reopen", "copy_mode",
	"pin", "hop", "exclusive", "check_excl",
};

/* How often each operation is drawn, out of the sum. */
static const unsigned int op_weight[NR_OP_KINDS] = {
	[OP_CPU_READ] = 8, [OP_CPU_WRITE] = 12, [OP_DEV_READ] = 6,
	[OP_DEV_WRITE] = 9, [OP_TO_DEV] = 14, [OP_TO_SYS] = 8,
	[OP_ALLOC_FAIL] = 3, [OP_POISON] = 2, [OP_SNAPSHOT] = 3,
	[OP_DONTNEED] = 3, [OP_FREE] = 5, [OP_PAGEOUT] = 6,
	[OP_MPROTECT] = 5, [OP_MLOCK] = 2, [OP_MUNLOCK] = 2,
	[OP_MREMAP] = 2, [OP_MUNMAP] = 1, [OP_MMAP] = 2, [OP_FORK] = 2,
	[OP_RELEASE] = 1, [OP_REOPEN] = 1, [OP_COPY_MODE] = 2, [OP_PIN] = 2,
	[OP_HOP] = 4, [OP_EXCLUSIVE] = 8, [OP_CHECK_EXCL] = 2,
};

/*
 * One operation, drawn from the seed alone so that a sequence replays
 * the same with some of its operations left out; what it does is then
 * fitted to the state of the pages when it runs.
 */
struct op {
	__u8 kind;
	__u8 reg;
	__u8 dev;
	__u8 arg;
	__u16 first;
	__u16 n;
	__u16 sub_first;
	__u16 sub_n;
};

/* Coverage: how often the interesting states were met. */
enum {
	CV_THP, CV_SWAPPED, CV_MOVED, CV_BACK, CV_POISONED, CV_PINNED_STAYED,
	CV_MLOCKED_MOVED, CV_LAZY_ZEROED, CV_FORKS, CV_REMAPS, CV_ENOENT,
	CV_KHUGEPAGED, CV_HOPS, CV_EXCL, CV_EXCL_KEPT, CV_EXCL_READ, CV_DEV_THP, NR_CV
};

static const char * const cv_names[NR_CV] = {
	"thp", "swapped", "moved", "back", "poisoned", "pin-stayed",
	"mlock-moved", "lazy-zeroed", "forks", "mremaps", "cut-short",
	"thp-dev-back", "cpu-hops", "exclusive", "excl-kept", "excl-read",
	"dev-thp",
};

/* What a seed's process tells the parent. */
struct seed_result {
	int failed;
	unsigned long ops;
	long fail_op;
	char kind[32];
	unsigned long cover[NR_CV];
	int excl_on;		/* the probe enabled the exclusive operations */
	unsigned long excl_ops;	/* EXCLUSIVE operations run with them on */
};

/* The whole state of one seed's run, in its own process. */
struct world {
	unsigned long seed;
	struct region reg[NR_REGIONS];
	unsigned char *arena;
	int slot_owner[NR_SLOTS];
	int fd[2];
	unsigned int copy_mode[2];
	long used0[2];
	int gup_fd;
	bool pin_on;
	int pin_reg;
	unsigned int pin_first;
	unsigned int pin_n;
	pid_t child;
	int child_go;
	long child_until;
	int pagemap_fd;
	int excl_type;
	unsigned long excl_ops;
	bool legacy;
	bool fixed;
	bool dev_thp_seen[2];
	cpu_set_t cpus;
	int nr_cpus;
	long opno;
	__u64 stamp_ctr;
	unsigned char *buf;
	unsigned char *snap[2];
	unsigned char *present;
	__u64 *tags;
	__u64 *pm;
	__u64 *pat;
	char log[LOG_LINES][LOG_LEN];
	long log_op[LOG_LINES];
	unsigned int log_next;
	const char *fail_kind;
	char fail_msg[512];
	unsigned long cover[NR_CV];
};

static struct world W;

/* Options. */
static bool verbose;

/* 1. Small helpers. */

static __u64 mix64(__u64 x)
{
	x += GOLDEN;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static __u64 rng_state;

static __u64 rnd(void)
{
	rng_state += GOLDEN;
	return mix64(rng_state);
}

static unsigned int rnd_below(unsigned int n)
{
	return n ? rnd() % n : 0;
}

static unsigned char *page_addr(int ri, unsigned int i)
{
	return W.reg[ri].p + i * PSZ;
}

static const char *loc_name(int loc)
{
	static const char * const names[] = { "sys", "dev0", "dev1", "?" };

	return names[loc & 3];
}

/* Word i of the page made of stamp @tag; a zero tag is a zeroed page. */
static __u64 pat_word(__u64 tag, unsigned int i)
{
	return tag ? tag ^ (GOLDEN * (i + 1)) : 0;
}

static void fill_page(void *page, __u64 tag)
{
	__u64 *w = page;
	unsigned int i;

	for (i = 0; i < WORDS; i++)
		w[i] = pat_word(tag, i);
}

static long page_diff(const void *page, __u64 tag)
{
	const __u64 *w = page;
	unsigned int i;

	for (i = 0; i < WORDS; i++)
		if (w[i] != pat_word(tag, i))
			return i;
	return -1;
}

/* A fresh stamp, never zero, unique in the seed's run. */
static __u64 new_stamp(int ri, unsigned int i)
{
	__u64 s = mix64(W.seed * 0x100000001b3ULL ^ mix64(++W.stamp_ctr) ^
			   ((__u64)ri << 12 | i));

	return s ? s : 1;
}

/* 2. The operation log and failures. */

static void log_op(long idx, const char *fmt, ...)
{
	unsigned int slot = W.log_next++ % LOG_LINES;
	va_list ap;

	W.log_op[slot] = idx;
	va_start(ap, fmt);
	vsnprintf(W.log[slot], LOG_LEN, fmt, ap);
	va_end(ap);
	if (verbose)
		ksft_print_msg("op %ld: %s\n", idx, W.log[slot]);
}

/* Append to the log line of the current operation. */
static void log_note(const char *fmt, ...)
{
	char *line = W.log[(W.log_next + LOG_LINES - 1) % LOG_LINES];
	size_t len = strlen(line);
	va_list ap;

	if (len >= LOG_LEN - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(line + len, LOG_LEN - len, fmt, ap);
	va_end(ap);
}

static void dump_log(void)
{
	unsigned int i, n = W.log_next < LOG_LINES ? W.log_next : LOG_LINES;

	ksft_print_msg("seed %lu: the last %u operations, oldest first:\n",
		       W.seed, n);
	for (i = W.log_next - n; i < W.log_next; i++)
		ksft_print_msg("  op %ld: %s\n", W.log_op[i % LOG_LINES],
			       W.log[i % LOG_LINES]);
}

/* Record the first failure; the run stops at the end of the operation. */
static __printf(2, 3) int fail(const char *kind, const char *fmt, ...)
{
	va_list ap;

	if (W.fail_kind)
		return -1;
	W.fail_kind = kind;
	va_start(ap, fmt);
	vsnprintf(W.fail_msg, sizeof(W.fail_msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* 3. CPU accesses that may fault. */

static sigjmp_buf probe_jmp;
static int probe_armed;
static int probe_sig;

static void on_signal(int sig)
{
	if (__atomic_load_n(&probe_armed, __ATOMIC_RELAXED)) {
		__atomic_store_n(&probe_armed, 0, __ATOMIC_RELAXED);
		probe_sig = sig;
		siglongjmp(probe_jmp, 1);
	}
	/* Not a probe: the test itself broke, or it hung (SIGALRM). */
	if (W.child > 0)
		kill(W.child, SIGKILL);
	ksft_print_msg("seed %lu: unexpected signal %d in op %ld\n",
		       W.seed, sig, W.opno);
	dump_log();
	fflush(stdout);
	_exit(3);
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
}

/*
 * Copy @len bytes, catching SIGSEGV and SIGBUS: returns 0 or the signal.
 * Nothing local changes after sigsetjmp(), so nothing needs volatile.
 */
static int guarded_copy(void *dst, const void *src, size_t len)
{
	probe_sig = 0;
	if (sigsetjmp(probe_jmp, 1))
		return probe_sig;
	__atomic_store_n(&probe_armed, 1, __ATOMIC_RELAXED);
	memcpy(dst, src, len);
	__atomic_store_n(&probe_armed, 0, __ATOMIC_RELAXED);
	return 0;
}

/* The signal a CPU read (or write) of the page must raise, or 0. */
static int cpu_sig(const struct mpage *mp, bool write)
{
	if (!mp->mapped || mp->prot == PR_NONE || (write && mp->prot != PR_RW))
		return SIGSEGV;
	return mp->poisoned ? SIGBUS : 0;
}

static const char *sig_name(int sig)
{
	return sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" :
	       sig ? "a signal" : "no signal";
}

/* 4. The devices. */

static int check_exclusive(int d, void *addr, __u64 n, struct hmm_dummy_cmd *c)
{
	return dummy_cmd(W.fd[d], HMM_DUMMY_CHECK_EXCLUSIVE, (uintptr_t)addr, NULL, n, c);
}

/* The devices in @mask lose the page's mark for sure. */
static void excl_drop(struct mpage *mp, unsigned int mask)
{
	mp->excl_must &= ~mask;
	mp->excl_may &= ~mask;
}

/* The page's marks and its CPU entry may have gone, or not. */
static void excl_loosen(struct mpage *mp)
{
	mp->excl_must = 0;
	if (mp->cpu_excl == CE_YES)
		mp->cpu_excl = CE_MAYBE;
}

/* A fault put the page back in the CPU page table: no device holds it. */
static void excl_restored(struct mpage *mp)
{
	excl_drop(mp, EXCL_BIT(0) | EXCL_BIT(1));
	mp->cpu_excl = CE_NO;
}

static void excl_loosen_range(int ri, unsigned int first, unsigned int n)
{
	unsigned int i;

	for (i = first; i < first + n; i++)
		excl_loosen(&W.reg[ri].pg[i]);
}

/* Does pagemap entry @pm say the CPU maps a device-exclusive entry? */
static bool pm_excl(bool pm_ok, __u64 pm)
{
	return pm_ok && W.excl_type >= 0 && (pm & PM_SWAP) &&
	       PM_SWP_TYPE(pm) == W.excl_type;
}

static int to_dev(int d, void *addr, void *buf, __u64 n, struct hmm_dummy_cmd *c)
{
	return dummy_cmd(W.fd[d], HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)addr,
			 buf, n, c);
}

static int to_sys(int d, void *addr, __u64 n, struct hmm_dummy_cmd *c)
{
	return dummy_cmd(W.fd[d], HMM_DUMMY_MIGRATE_TO_SYS, (uintptr_t)addr,
			 NULL, n, c);
}

static int inject(int d, void *addr, __u64 n, __u32 kind)
{
	struct hmm_dummy_inject inj = {
		.addr = (uintptr_t)addr,
		.npages = n,
		.kind = kind,
	};

	return ioctl(W.fd[d], HMM_DUMMY_INJECT, &inj) < 0 ? -errno : 0;
}

static long pages_used(int d)
{
	struct hmm_dummy_info info;

	return get_info(W.fd[d], &info) ? -1 : (long)info.pages_used;
}

static int gup_test_open(void)
{
	int fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT &&
	    !mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL))
		fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	return fd;
}

/* 5. Learning the kernel's view and checking the model against it. */

static int read_pagemap(int ri, unsigned int first, unsigned int n)
{
	off_t off = (uintptr_t)page_addr(ri, first) / PSZ * sizeof(__u64);
	size_t len = n * sizeof(__u64);

	if (W.pagemap_fd < 0)
		return -1;
	if (pread(W.pagemap_fd, W.pm, len, off) != (ssize_t)len)
		return -1;
	return 0;
}

/* Both devices' SNAPSHOT of the range, in W.snap[]. */
static int snapshot_both(int ri, unsigned int first, unsigned int n)
{
	struct hmm_dummy_cmd c;
	int d, ret;

	for (d = 0; d < 2; d++) {
		memset(W.snap[d], 0x5a, n);
		ret = dev_snap(W.fd[d], page_addr(ri, first), W.snap[d], n, &c);
		if (ret || c.cpages != n)
			return fail("snapshot", "SNAPSHOT of dev%d r%d [%u,+%u): %d, %llu pages",
				    d, ri, first, n, ret, (unsigned long long)c.cpages);
	}
	return 0;
}

/* Data the CPU or a device read for a page, checked against the model. */
static int check_data(int ri, unsigned int i, const void *data, const char *how)
{
	struct mpage *mp = &W.reg[ri].pg[i];
	const __u64 *w = data;
	long bad = page_diff(data, mp->tag);

	if (bad < 0)
		return 0;
	if (mp->maybe_zero && page_diff(data, 0) < 0) {
		/* Reclaim dropped the MADV_FREE'd page: zeros from now on. */
		mp->tag = 0;
		mp->maybe_zero = false;
		W.cover[CV_LAZY_ZEROED]++;
		return 0;
	}
	return fail(page_diff(data, 0) < 0 ? "data_lost" : "data_wrong",
		    "%s of r%d page %u (%p, %s): word %ld is %016llx, expected %016llx%s",
		    how, ri, i, page_addr(ri, i), loc_name(mp->loc), bad,
		    (unsigned long long)w[bad],
		    (unsigned long long)pat_word(mp->tag, bad),
		    mp->maybe_zero ? " or zeros" : "");
}

/* Does the page hold zeros, or may it? */
static bool zero_ok(const struct mpage *mp)
{
	return !mp->tag || mp->maybe_zero;
}

/*
 * Check one page's SNAPSHOT bytes @s0 and @s1 (device 0 and 1) and its
 * pagemap entry @pm (if @pm_ok) against the model, and learn its
 * location. Sets *@present when the page is present in system memory.
 */
static int check_snap(int ri, unsigned int i, unsigned char s0, unsigned char s1,
		      bool pm_ok, __u64 pm, bool *present)
{
	struct mpage *mp = &W.reg[ri].pg[i];
	unsigned char s[2] = { s0, s1 };
	int d, loc = LOC_SYS;

	*present = false;
	if (!mp->mapped || mp->prot == PR_NONE) {
		if (s0 != HMM_DUMMY_PROT_ERROR || s1 != HMM_DUMMY_PROT_ERROR)
			return fail("snapshot", "r%d page %u is %s but SNAPSHOT says 0x%02x/0x%02x",
				    ri, i, mp->mapped ? "PROT_NONE" : "unmapped", s0, s1);
		return 0;
	}
	for (d = 0; d < 2; d++) {
		if (s[d] == HMM_DUMMY_PROT_ERROR)
			return fail("snapshot", "r%d page %u: dev%d SNAPSHOT ERROR", ri, i, d);
		if (!(s[d] & HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL))
			continue;
		if (loc != LOC_SYS)
			return fail("snapshot", "r%d page %u on both devices", ri, i);
		loc = LOC_DEV0 + d;
		/* The other device cannot use it: not present for it. */
		if (s[!d] != HMM_DUMMY_PROT_NONE)
			return fail("snapshot", "r%d page %u on dev%d, dev%d sees 0x%02x",
				    ri, i, d, !d, s[!d]);
		/* A device THP, behind one device-private PMD. */
		if ((s[d] & HMM_DUMMY_PROT_PMD) && !W.reg[ri].thp)
			return fail("snapshot", "r%d page %u: device THP outside the THP region",
				    ri, i);
		if (s[d] & HMM_DUMMY_PROT_PMD) {
			W.cover[CV_DEV_THP]++;
			W.dev_thp_seen[d] = true;
		}
	}
	/*
	 * khugepaged swaps in what it collapses, device pages included: in
	 * the THP region a device page may come back to RAM by itself.
	 */
	if (W.reg[ri].thp && mp->loc != LOC_UNKNOWN && mp->loc != LOC_SYS &&
	    loc == LOC_SYS) {
		W.cover[CV_KHUGEPAGED]++;
		mp->loc = loc;
	}
	if (mp->loc != LOC_UNKNOWN && mp->loc != loc)
		return fail("location",
			    "r%d page %u (%p) should be in %s, SNAPSHOT says %s (0x%02x/0x%02x)",
			    ri, i, page_addr(ri, i), loc_name(mp->loc), loc_name(loc), s0, s1);
	mp->loc = loc;
	if (mp->prot == PR_RO && ((s0 | s1) & HMM_DUMMY_PROT_WRITE))
		return fail("snapshot", "r%d page %u is read-only, SNAPSHOT 0x%02x/0x%02x",
			    ri, i, s0, s1);
	mp->swapped = false;
	if (loc != LOC_SYS)
		return mp->poisoned ? fail("poison", "r%d page %u poisoned but on a device",
					   ri, i) : 0;
	if (s0 != s1)
		return fail("snapshot", "r%d page %u: the devices disagree: 0x%02x/0x%02x",
			    ri, i, s0, s1);
	if (s0 & ~(HMM_DUMMY_PROT_READ | HMM_DUMMY_PROT_WRITE | HMM_DUMMY_PROT_PMD |
		   HMM_DUMMY_PROT_ZERO) ||
	    ((s0 & HMM_DUMMY_PROT_PMD) && !W.reg[ri].thp))
		return fail("snapshot", "r%d page %u: SNAPSHOT 0x%02x", ri, i, s0);
	if (s0 & HMM_DUMMY_PROT_PMD)
		W.cover[CV_THP]++;
	if (s0 & HMM_DUMMY_PROT_ZERO) {
		if (!zero_ok(mp))
			return fail("data_lost", "r%d page %u maps the zero page, expected %016llx",
				    ri, i, (unsigned long long)mp->tag);
		mp->tag = 0;
		mp->maybe_zero = false;
	}
	if (s0 != HMM_DUMMY_PROT_NONE) {
		if (mp->poisoned)
			return fail("poison", "r%d page %u poisoned but present (0x%02x)",
				    ri, i, s0);
		*present = true;
		return 0;
	}
	if (!pm_ok)
		return 0;
	/* A device-exclusive entry: check_excl() looks at it. */
	if (pm_excl(pm_ok, pm))
		return 0;
	if (pm & PM_SWAP) {
		/* A swap entry, or the poison marker. */
		if (!mp->poisoned) {
			mp->swapped = true;
			W.cover[CV_SWAPPED]++;
		}
		return 0;
	}
	if (mp->poisoned)
		return fail("poison", "r%d page %u lost its poison (pagemap %016llx)",
			    ri, i, (unsigned long long)pm);
	if (pm & PM_PRESENT)
		return 0;
	/* Nothing mapped at all: a read would give zeros. */
	if (!zero_ok(mp))
		return fail("data_lost", "r%d page %u (%p) has no page any more, expected %016llx",
			    ri, i, page_addr(ri, i), (unsigned long long)mp->tag);
	if (mp->maybe_zero)
		W.cover[CV_LAZY_ZEROED]++;
	mp->tag = 0;
	mp->maybe_zero = false;
	return 0;
}

/*
 * Check the exclusive marks of pages [first, first + n) of @ri against the
 * model, with the pagemap entries in W.pm (if @pm_ok), and learn them.
 */
static int check_excl(int ri, unsigned int first, unsigned int n, bool pm_ok)
{
	long count[2];
	struct hmm_dummy_cmd c;
	unsigned int i, got;
	int d, ret;

	if (W.excl_type < 0)
		return 0;
	for (d = 0; d < 2; d++) {
		ret = check_exclusive(d, page_addr(ri, first), n, &c);
		if ((ret && ret != -EPERM) || !ret != !c.cpages || c.cpages > n)
			return fail("check_excl",
				    "CHECK_EXCLUSIVE of dev%d r%d [%u,+%u): %d, %llu pages",
				    d, ri, first, n, ret, (unsigned long long)c.cpages);
		count[d] = c.cpages;
	}
	for (i = first; i < first + n; i++) {
		struct mpage *mp = &W.reg[ri].pg[i];
		bool cpu = pm_excl(pm_ok, W.pm[i - first]);

		got = 0;
		for (d = 0; d < 2; d++) {
			if (!count[d])
				continue;
			ret = check_exclusive(d, page_addr(ri, i), 1, &c);
			if (ret == -EPERM && c.cpages == 1)
				got |= EXCL_BIT(d);
			else if (ret || c.cpages)
				return fail("check_excl",
					    "CHECK_EXCLUSIVE of dev%d r%d page %u: %d, %llu",
					    d, ri, i, ret, (unsigned long long)c.cpages);
			count[d] -= !!(got & EXCL_BIT(d));
		}
		if (mp->excl_must & ~got)
			return fail("exclusive_lost",
				    "r%d page %u (%p) must be exclusive on %#x, is on %#x",
				    ri, i, page_addr(ri, i), mp->excl_must, got);
		if (got & ~mp->excl_may)
			return fail("exclusive_kept",
				    "r%d page %u (%p) exclusive on %#x, may be on %#x",
				    ri, i, page_addr(ri, i), got, mp->excl_may);
		if (got == (EXCL_BIT(0) | EXCL_BIT(1)))
			return fail("exclusive_twice",
				    "r%d page %u exclusive on both devices", ri, i);
		if (got && pm_ok && !cpu)
			return fail("exclusive_mapped",
				    "r%d page %u exclusive on %#x but the CPU maps it (pagemap %016llx)",
				    ri, i, got, (unsigned long long)W.pm[i - first]);
		if (pm_ok && mp->cpu_excl != CE_MAYBE && mp->cpu_excl == (cpu ? CE_NO : CE_YES))
			return fail("cpu_excl",
				    "r%d page %u (%p): CPU entry %sdevice-exclusive, the model says %s (pagemap %016llx)",
				    ri, i, page_addr(ri, i), cpu ? "" : "not ",
				    mp->cpu_excl == CE_YES ? "it is" : "not",
				    (unsigned long long)W.pm[i - first]);
		mp->excl_must = got;
		mp->excl_may = got;
		if (pm_ok)
			mp->cpu_excl = cpu ? CE_YES : CE_NO;
	}
	if (count[0] || count[1])
		return fail("check_excl",
			    "CHECK_EXCLUSIVE of r%d [%u,+%u) counts %ld/%ld pages more",
			    ri, first, n, count[0], count[1]);
	return 0;
}

/* A poisoned page must still raise SIGBUS on a read. */
static int check_poison(int ri, unsigned int i)
{
	int sig = guarded_copy(W.pat, page_addr(ri, i), PSZ);

	if (sig != SIGBUS)
		return fail("poison", "r%d page %u poisoned, a read gives %s",
			    ri, i, sig_name(sig));
	return 0;
}

/*
 * Check pages [first, first + n) of region @ri: SNAPSHOT and pagemap
 * against the model, which learns where the pages are. With @data, also
 * read every page that can be read without moving it (system pages with
 * the CPU, device pages with their device) and check its bytes.
 */
static int verify_range(int ri, unsigned int first, unsigned int n, bool data)
{
	struct region *r = &W.reg[ri];
	bool pm_ok, present;
	unsigned int i, j, k;
	struct hmm_dummy_cmd c;
	int d, ret;

	if (!n)
		return 0;
	if (snapshot_both(ri, first, n))
		return -1;
	pm_ok = !read_pagemap(ri, first, n);
	for (i = 0; i < n; i++) {
		struct mpage *mp = &r->pg[first + i];

		if (check_snap(ri, first + i, W.snap[0][i], W.snap[1][i],
			       pm_ok, W.pm[i], &present))
			return -1;
		if (mp->poisoned && mp->mapped && mp->prot != PR_NONE &&
		    check_poison(ri, first + i))
			return -1;
		W.present[i] = present;
	}
	if (check_excl(ri, first, n, pm_ok))
		return -1;
	if (!data)
		return 0;
	for (i = 0; i < n; i = j) {
		struct mpage *mp = &r->pg[first + i];

		j = i + 1;
		if (!mp->mapped || mp->prot == PR_NONE || mp->poisoned)
			continue;
		if (mp->loc == LOC_SYS && !W.present[i] && mp->excl_must) {
			/* Held exclusive: its device reads it without a fault. */
			d = mp->excl_must == EXCL_BIT(1);
			ret = dev_read(W.fd[d], page_addr(ri, first + i), W.buf, 1, &c);
			if (ret || c.cpages != 1 || c.faults)
				return fail("dev_read",
					    "dev%d READ of its exclusive r%d page %u: %d, %llu faults",
					    d, ri, first + i, ret, (unsigned long long)c.faults);
			W.cover[CV_EXCL_READ]++;
			if (check_data(ri, first + i, W.buf, "dev READ of an exclusive page"))
				return -1;
			continue;
		}
		if (mp->loc == LOC_SYS) {
			if (!W.present[i])
				continue;	/* reading would fault it in */
			ret = guarded_copy(W.buf, page_addr(ri, first + i), PSZ);
			if (ret)
				return fail("cpu", "r%d page %u: reading it raised %s",
					    ri, first + i, sig_name(ret));
			if (check_data(ri, first + i, W.buf, "CPU read"))
				return -1;
			continue;
		}
		/* A run of pages in one device's memory: one READ. */
		d = mp->loc - LOC_DEV0;
		while (j < n && r->pg[first + j].loc == mp->loc &&
		       r->pg[first + j].mapped && r->pg[first + j].prot != PR_NONE)
			j++;
		ret = dev_read(W.fd[d], page_addr(ri, first + i), W.buf, j - i, &c);
		if (ret || c.cpages != j - i)
			return fail("dev_read", "dev%d READ of its own pages r%d [%u,+%u): %d",
				    d, ri, first + i, j - i, ret);
		for (k = i; k < j; k++)
			if (check_data(ri, first + k, W.buf + (k - i) * PSZ, "dev READ"))
				return -1;
	}
	return 0;
}

static int verify_all(bool data)
{
	int ri;

	for (ri = 0; ri < NR_REGIONS; ri++)
		if (verify_range(ri, 0, W.reg[ri].n, data))
			return -1;
	return 0;
}

/*
 * A device THP of which part was unmapped keeps all its pages in use
 * until the rest is gone too or the folio splits (a CPU fault, a
 * migration): the base has no deferred split for device-private folios.
 * So once a device THP was seen on @d, while @thp_on pages of the THP
 * region are still there, the others of its 512 may be in use as well
 * (the end of a seed is exact).
 */
static bool used_as_modelled(int d, long used, long want, long thp_on)
{
	if (used == want)
		return true;
	return W.dev_thp_seen[d] && thp_on > 0 && used > want &&
	       used - want <= THP_PAGES - thp_on;
}

/*
 * Device memory in use must be what the model puts there, once every
 * page's location is known and no child shares pages. Freeing is done by
 * the time the call that dropped the last reference returns; allow a
 * little time anyway.
 */
static int check_pages_used(void)
{
	long want[2], thp_on[2], used = 0;
	bool again = true;
	unsigned int i;
	int ri, d, tries;

	if (W.child > 0)
		return 0;
recount:
	for (d = 0; d < 2; d++) {
		want[d] = 0;
		thp_on[d] = 0;
	}
	for (ri = 0; ri < NR_REGIONS; ri++) {
		for (i = 0; i < W.reg[ri].n; i++) {
			struct mpage *mp = &W.reg[ri].pg[i];

			if (!mp->mapped)
				continue;
			if (mp->loc == LOC_UNKNOWN)
				return 0;
			if (mp->loc == LOC_SYS)
				continue;
			want[mp->loc - LOC_DEV0]++;
			if (W.reg[ri].thp)
				thp_on[mp->loc - LOC_DEV0]++;
		}
	}
	for (d = 0; d < 2; d++) {
		for (tries = 0; tries < 100; tries++) {
			used = pages_used(d) - W.used0[d];
			if (used_as_modelled(d, used, want[d], thp_on[d]))
				break;
			usleep(10000);
		}
		if (used_as_modelled(d, used, want[d], thp_on[d]))
			continue;
		/* Unless khugepaged took pages of the THP region back meanwhile. */
		if (again) {
			again = false;
			for (ri = 0; ri < NR_REGIONS; ri++)
				if (W.reg[ri].thp && verify_range(ri, 0, W.reg[ri].n, false))
					return -1;
			goto recount;
		}
		return fail("pages_used", "dev%d uses %ld pages, the model has %ld there",
			    d, used, want[d]);
	}
	return 0;
}

/* 6. Regions. */

static unsigned char *slot_addr(int slot)
{
	return W.arena + (size_t)slot * SLOT_SIZE;
}

/* Put the PROT_NONE reservation back over a slot nobody uses. */
static int reserve_slot(int slot)
{
	void *p = mmap(slot_addr(slot), SLOT_SIZE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);

	W.slot_owner[slot] = -1;
	return p == MAP_FAILED ? fail("setup", "reserving slot %d: %d", slot, errno) : 0;
}

static void reset_page(struct mpage *mp, bool mapped)
{
	memset(mp, 0, sizeof(*mp));
	mp->loc = LOC_SYS;
	mp->prot = PR_RW;
	mp->mapped = mapped;
}

/* Fresh anonymous memory for pages [first, first + n) of @ri. */
static int map_pages(int ri, unsigned int first, unsigned int n, int flags)
{
	struct region *r = &W.reg[ri];
	void *want = page_addr(ri, first), *p;
	unsigned int i;

	p = mmap(want, n * PSZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p == MAP_FAILED && errno == EEXIST)
		return 1;	/* someone took the hole: leave it */
	if (p != want)
		return fail("setup", "mmap at %p: %d", want, errno);
	/* The same advice as the rest of the region, so the VMAs merge. */
	madvise(p, n * PSZ, r->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (i = first; i < first + n; i++) {
		if (r->pg[i].pinned)
			r->pg[i].pinned = false;
		reset_page(&r->pg[i], true);
	}
	return 0;
}

static int region_create(int ri, int slot, unsigned int n, bool thp)
{
	struct region *r = &W.reg[ri];

	r->n = n;
	r->thp = thp;
	r->slot = slot;
	r->p = slot_addr(slot);
	W.slot_owner[slot] = ri;
	return map_pages(ri, 0, n, MAP_FIXED);
}

/* 7. The operations. */

/* Pages [first, first + n) of @ri, clamped to the region. */
static void clamp(int ri, unsigned int *first, unsigned int *n)
{
	unsigned int rn = W.reg[ri].n;

	if (*first >= rn)
		*first = rn - 1;
	if (*n > rn - *first)
		*n = rn - *first;
	if (!*n)
		*n = 1;
}

/* How many pages from @first on satisfy @ok, up to @n. */
static unsigned int prefix(int ri, unsigned int first, unsigned int n,
			   bool (*ok)(const struct mpage *mp))
{
	unsigned int i;

	for (i = 0; i < n && ok(&W.reg[ri].pg[first + i]); i++)
		;
	return i;
}

static bool is_mapped(const struct mpage *mp)
{
	return mp->mapped;
}

static bool can_advise(const struct mpage *mp)
{
	return mp->mapped && !mp->mlocked;
}

/* mlock() faults pages in: a poisoned or PROT_NONE one makes it fail. */
static bool can_lock(const struct mpage *mp)
{
	return mp->mapped && !mp->poisoned && mp->prot != PR_NONE;
}

static bool can_pin(const struct mpage *mp)
{
	return mp->mapped && mp->prot == PR_RW && !mp->poisoned;
}

static bool readable(const struct mpage *mp)
{
	return mp->mapped && mp->prot != PR_NONE;
}

/* Migration commands need the range covered by readable VMAs. */
static bool migratable(int ri, unsigned int first, unsigned int n)
{
	return prefix(ri, first, n, readable) == n;
}

static int op_cpu(int ri, unsigned int first, unsigned int n, bool write)
{
	unsigned int i;
	int want, sig;

	for (i = first; i < first + n; i++) {
		struct mpage *mp = &W.reg[ri].pg[i];
		__u64 tag = 0;

		want = cpu_sig(mp, write);
		if (write) {
			tag = new_stamp(ri, i);
			fill_page(W.pat, tag);
			sig = guarded_copy(page_addr(ri, i), W.pat, PSZ);
		} else {
			sig = guarded_copy(W.buf, page_addr(ri, i), PSZ);
		}
		if (sig != want)
			return fail("cpu", "CPU %s of r%d page %u (%s%s): %s, expected %s",
				    write ? "write" : "read", ri, i, loc_name(mp->loc),
				    mp->poisoned ? ", poisoned" : "", sig_name(sig),
				    sig_name(want));
		if (sig)
			continue;
		if (mp->loc != LOC_SYS)
			W.cover[CV_BACK]++;
		mp->loc = LOC_SYS;
		excl_restored(mp);
		if (write) {
			mp->tag = tag;
			mp->maybe_zero = false;
			mp->cow = false;
		} else if (check_data(ri, i, W.buf, "CPU read")) {
			return -1;
		}
	}
	return verify_range(ri, first, n, true);
}

/* The first page a device command must fail on, and how, or -1. */
static long dev_bad_page(int ri, unsigned int first, unsigned int n, bool write,
			 int *err)
{
	unsigned int i;

	for (i = first; i < first + n; i++) {
		const struct mpage *mp = &W.reg[ri].pg[i];

		*err = -EFAULT;
		if (!mp->mapped || mp->prot == PR_NONE)
			return i;
		if (write && mp->prot == PR_RO) {
			*err = -EPERM;
			return i;
		}
		if (mp->poisoned)
			return i;
	}
	return -1;
}

static int op_dev_access(const struct op *o, int ri, unsigned int first,
			 unsigned int n, bool write)
{
	int d = o->dev, err, ret;
	struct hmm_dummy_cmd c;
	bool kept = true;
	long bad;
	unsigned int i;

	bad = dev_bad_page(ri, first, n, write, &err);
	if (bad >= 0) {
		/* A page the device cannot reach: the command fails on it alone. */
		log_note(" -> probe page %ld", bad);
		fill_page(W.buf, 0x5eed);
		ret = write ? dev_write(W.fd[d], page_addr(ri, bad), W.buf, 1, &c) :
			      dev_read(W.fd[d], page_addr(ri, bad), W.buf, 1, &c);
		if (ret != err)
			return fail("dev_access", "dev%d %s of r%d page %ld: %d, expected %d",
				    d, write ? "WRITE" : "READ", ri, bad, ret, err);
		excl_loosen(&W.reg[ri].pg[bad]);
		return verify_range(ri, bad, 1, true);
	}
	if (write) {
		for (i = 0; i < n; i++) {
			W.tags[i] = new_stamp(ri, first + i);
			fill_page(W.buf + i * PSZ, W.tags[i]);
		}
	}
	/*
	 * A read is READ or READ_UNLOCKED, whose faults may drop the mmap
	 * lock: the same result either way. Legacy seeds keep READ.
	 */
	if (write)
		ret = dev_write(W.fd[d], page_addr(ri, first), W.buf, n, &c);
	else
		ret = dummy_cmd(W.fd[d], !W.legacy && (o->arg & 1) ?
				HMM_DUMMY_READ_UNLOCKED : HMM_DUMMY_READ,
				(uintptr_t)page_addr(ri, first), W.buf, n, &c);
	if (ret || c.cpages != n)
		return fail("dev_access", "dev%d %s of r%d [%u,+%u): %d, %llu pages",
			    d, write ? "WRITE" : "READ", ri, first, n, ret,
			    (unsigned long long)c.cpages);
	for (i = 0; i < n; i++) {
		struct mpage *mp = &W.reg[ri].pg[first + i];

		/*
		 * The device's own marked entries serve the access, up to the
		 * first page it has no entry for; from there on it faults,
		 * which takes device-exclusive entries back. The other
		 * device's marks go for sure.
		 */
		excl_drop(mp, EXCL_BIT(!d));
		if (kept && (mp->excl_must & EXCL_BIT(d))) {
			W.cover[CV_EXCL_KEPT]++;
		} else {
			kept = false;
			excl_loosen(mp);
			mp->cpu_excl = mp->excl_may ? CE_MAYBE : CE_NO;
		}
		if (write) {
			mp->tag = W.tags[i];
			mp->maybe_zero = false;
			mp->cow = false;
		} else if (check_data(ri, first + i, W.buf + i * PSZ, "dev READ")) {
			return -1;
		}
		/*
		 * The other device's pages came back to RAM; the device's own
		 * stay, unless a write found them read-only (after fork).
		 */
		if (mp->loc == LOC_DEV0 + d)
			mp->loc = write ? LOC_UNKNOWN : mp->loc;
		else
			mp->loc = LOC_SYS;
	}
	return verify_range(ri, first, n, true);
}

/*
 * What MIGRATE_TO_DEV must do with each page of the range, from the
 * model and the pages' state just looked up: move them all, but leave
 * other devices' pages, swapped and poisoned pages, pinned pages and the
 * pages an ALLOC_FAIL covers where they are.
 */
static void to_dev_expect(int ri, unsigned int first, unsigned int n, int d,
			  long af_first, long af_n, __u8 *ex)
{
	struct region *r = &W.reg[ri];
	bool thp_pinned = r->thp && W.pin_on && W.pin_reg == ri;
	unsigned int i;

	for (i = 0; i < n; i++) {
		const struct mpage *mp = &r->pg[first + i];
		long pg = first + i;
		bool in_af = pg >= af_first && pg < af_first + af_n;

		ex[i] = EX_MOVE;
		if (mp->loc == LOC_DEV0 + d)
			continue;
		if (mp->loc != LOC_SYS || mp->poisoned || mp->swapped || mp->pinned ||
		    (mp->cpu_excl == CE_YES && !r->thp) || in_af)
			ex[i] = EX_STAY;
		else if (thp_pinned || mp->cow || mp->cpu_excl != CE_NO)
			/*
			 * A pin on part of a THP keeps all of it from splitting;
			 * nothing promises that a page a child maps too moves.
			 * A device-exclusive entry is not collected, but
			 * splitting the THP it is part of maps it again.
			 */
			ex[i] = EX_EITHER;
	}
}

static int op_to_dev(const struct op *o, int ri, unsigned int first, unsigned int n,
		     bool alloc_fail)
{
	bool core = W.copy_mode[o->dev] == HMM_DUMMY_COPY_CORE;
	long af_first = -1, af_n = 0;
	__u8 ex[MAX_PAGES], pre[MAX_PAGES];
	struct region *r = &W.reg[ri];
	int d = o->dev, ret, ret2;
	struct hmm_dummy_cmd c;
	unsigned int i, k;

	if (verify_range(ri, first, n, false))
		return -1;
	if (!migratable(ri, first, n)) {
		ret = to_dev(d, page_addr(ri, first), W.buf, n, &c);
		log_note(" -> %d", ret);
		if (ret != -EINVAL || c.cpages)
			return fail("to_dev",
				    "MIGRATE_TO_DEV over a hole or PROT_NONE: %d, %llu pages",
				    ret, (unsigned long long)c.cpages);
		excl_loosen_range(ri, first, n);
		return verify_range(ri, first, n, true);
	}
	if (alloc_fail) {
		af_first = first + o->sub_first % n;
		af_n = 1 + o->sub_n % (first + n - af_first);
		log_note(" alloc_fail [%ld,+%ld)", af_first, af_n);
		ret = inject(d, page_addr(ri, af_first), af_n, HMM_DUMMY_INJECT_ALLOC_FAIL);
		if (ret)
			return fail("inject", "INJECT ALLOC_FAIL: %d", ret);
	}
	to_dev_expect(ri, first, n, d, af_first, af_n, ex);
	for (i = 0; i < n; i++)
		pre[i] = r->pg[first + i].loc;
	memset(W.buf, 0xa5, n * PSZ);
	ret = to_dev(d, page_addr(ri, first), W.buf, n, &c);
	ret2 = alloc_fail ? inject(d, page_addr(ri, af_first), af_n, HMM_DUMMY_INJECT_NONE) : 0;
	k = c.cpages;
	log_note(" -> %d, %u read back", ret, k);
	if (ret2)
		return fail("inject", "clearing the injection: %d", ret2);
	if ((ret && ret != -ENOENT) || k > n || (!ret && k != n) || (ret && k == n))
		return fail("to_dev", "MIGRATE_TO_DEV of %u pages: %d, %u read back", n, ret, k);
	/*
	 * The pages read back are in device memory: no mark, no exclusive
	 * entry. How far the invalidations of the others reached, the
	 * model does not say.
	 */
	for (i = 0; i < n; i++) {
		if (i < k)
			excl_restored(&r->pg[first + i]);
		else
			excl_loosen(&r->pg[first + i]);
	}
	for (i = 0; i < k; i++) {
		struct mpage *mp = &r->pg[first + i];

		if (ex[i] == EX_STAY)
			return fail("to_dev_moved", "r%d page %u (%s%s%s%s) must stay, it moved",
				    ri, first + i, loc_name(mp->loc),
				    mp->pinned ? ", pinned" : "", mp->swapped ? ", swapped" : "",
				    mp->poisoned ? ", poisoned" : "");
		if (check_data(ri, first + i, W.buf + i * PSZ, "MIGRATE_TO_DEV read back"))
			return -1;
		if (pre[i] != LOC_DEV0 + d) {
			W.cover[CV_MOVED]++;
			if (mp->mlocked)
				W.cover[CV_MLOCKED_MOVED]++;
		}
		mp->loc = pre[i] == LOC_DEV0 + d || !core ? LOC_DEV0 + d : LOC_SYS;
	}
	if (ret) {
		struct mpage *mp = &r->pg[first + k];

		W.cover[CV_ENOENT]++;
		if (ex[k] == EX_MOVE)
			return fail("to_dev_left_page",
				    "MIGRATE_TO_DEV left r%d page %u (%p, %s%s%s, %s) behind: ENOENT after %u of %u pages",
				    ri, first + k, page_addr(ri, first + k), loc_name(mp->loc),
				    mp->mlocked ? ", mlocked" : "",
				    mp->maybe_zero ? ", MADV_FREE'd" : "",
				    mp->tag ? "written" : "zeros", k, n);
		if (mp->pinned)
			W.cover[CV_PINNED_STAYED]++;
		/* Later batches may or may not have moved. */
		for (i = k + 1; i < n; i++)
			if (ex[i] != EX_STAY)
				r->pg[first + i].loc = LOC_UNKNOWN;
	}
	if (verify_range(ri, first, n, true))
		return -1;
	return check_pages_used();
}

static int op_to_sys(const struct op *o, int ri, unsigned int first, unsigned int n,
		     unsigned int inj_kind)
{
	struct region *r = &W.reg[ri];
	long in_first = -1, in_n = 0;
	unsigned int i, moved = 0;
	__u8 pmd[MAX_PAGES];
	int d = o->dev, ret, ret2;
	struct hmm_dummy_cmd c;

	if (verify_range(ri, first, n, false))
		return -1;
	if (!migratable(ri, first, n)) {
		ret = to_sys(d, page_addr(ri, first), n, &c);
		log_note(" -> %d", ret);
		if (ret != -EINVAL)
			return fail("to_sys", "MIGRATE_TO_SYS over a hole or PROT_NONE: %d", ret);
		excl_loosen_range(ri, first, n);
		return verify_range(ri, first, n, true);
	}
	/*
	 * Nothing of a PMD-mapped system THP is on a device: it has no reason
	 * to split (a device THP taken in part does split).
	 */
	for (i = 0; i < n; i++)
		pmd[i] = (W.snap[0][i] & HMM_DUMMY_PROT_PMD) &&
			 !(W.snap[0][i] & HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL);
	if (inj_kind) {
		in_first = first + o->sub_first % n;
		in_n = 1 + o->sub_n % (first + n - in_first);
		log_note(" %s [%ld,+%ld)", inj_kind == HMM_DUMMY_INJECT_PFN_ERROR ?
			 "pfn_error" : "alloc_fail", in_first, in_n);
		ret = inject(d, page_addr(ri, in_first), in_n, inj_kind);
		if (ret)
			return fail("inject", "INJECT %u: %d", inj_kind, ret);
	}
	ret = to_sys(d, page_addr(ri, first), n, &c);
	ret2 = inj_kind ? inject(d, page_addr(ri, in_first), in_n, HMM_DUMMY_INJECT_NONE) : 0;
	log_note(" -> %d, %llu back", ret, (unsigned long long)c.cpages);
	if (ret2)
		return fail("inject", "clearing the injection: %d", ret2);
	excl_loosen_range(ri, first, n);
	for (i = first; i < first + n; i++) {
		struct mpage *mp = &r->pg[i];
		bool hit = (long)i >= in_first && (long)i < in_first + in_n;

		if (mp->loc != LOC_DEV0 + d)
			continue;
		if (hit && inj_kind == HMM_DUMMY_INJECT_ALLOC_FAIL)
			continue;
		mp->loc = LOC_SYS;
		if (hit) {
			mp->poisoned = true;
			mp->tag = 0;
			mp->maybe_zero = false;
			W.cover[CV_POISONED]++;
			continue;
		}
		moved++;
		W.cover[CV_BACK]++;
	}
	if (ret || c.cpages != moved)
		return fail("to_sys", "MIGRATE_TO_SYS: %d, %llu pages back, expected %u",
			    ret, (unsigned long long)c.cpages, moved);
	if (verify_range(ri, first, n, true))
		return -1;
	for (i = 0; i < n; i++)
		if (pmd[i] && !(W.snap[0][i] & HMM_DUMMY_PROT_PMD))
			return fail("thp_split_by_to_sys",
				    "MIGRATE_TO_SYS of r%d [%u,+%u) split the THP at page %u (0x%02x now)",
				    ri, first, n, first + i, W.snap[0][i]);
	return check_pages_used();
}

/*
 * Lose device pages on purpose: PFN_ERROR over part of the range, then
 * either MIGRATE_TO_SYS or a CPU fault on one of the device's pages.
 */
static int op_poison(const struct op *o, int ri, unsigned int first, unsigned int n)
{
	unsigned int sub_first = first + o->sub_first % n, sub_n, i;
	struct mpage *mp = NULL;
	int d = o->dev, ret, ret2, sig;

	if (!(o->arg & 1))
		return op_to_sys(o, ri, first, n, HMM_DUMMY_INJECT_PFN_ERROR);
	sub_n = 1 + o->sub_n % (first + n - sub_first);
	for (i = sub_first; i < sub_first + sub_n; i++) {
		mp = &W.reg[ri].pg[i];
		if (mp->loc == LOC_DEV0 + d && readable(mp))
			break;
	}
	if (i == sub_first + sub_n) {
		log_note(" -> no dev%d page", d);
		return op_to_sys(o, ri, first, n, HMM_DUMMY_INJECT_PFN_ERROR);
	}
	log_note(" -> CPU fault on page %u", i);
	ret = inject(d, page_addr(ri, i), 1, HMM_DUMMY_INJECT_PFN_ERROR);
	if (ret)
		return fail("inject", "INJECT PFN_ERROR: %d", ret);
	sig = guarded_copy(W.buf, page_addr(ri, i), PSZ);
	ret2 = inject(d, page_addr(ri, i), 1, HMM_DUMMY_INJECT_NONE);
	if (ret2)
		return fail("inject", "clearing the injection: %d", ret2);
	if (sig != SIGBUS)
		return fail("poison", "CPU read of r%d page %u with PFN_ERROR: %s",
			    ri, i, sig_name(sig));
	excl_loosen_range(ri, first, n);
	mp->loc = LOC_SYS;
	mp->poisoned = true;
	mp->tag = 0;
	mp->maybe_zero = false;
	W.cover[CV_POISONED]++;
	if (verify_range(ri, first, n, true))
		return -1;
	return check_pages_used();
}

static int op_madvise(const struct op *o, int ri, unsigned int first, unsigned int n)
{
	int advice = o->kind == OP_DONTNEED ? MADV_DONTNEED :
		     o->kind == OP_FREE ? MADV_FREE : MADV_PAGEOUT;
	unsigned int m = prefix(ri, first, n, can_advise), i;
	struct mpage *mp = &W.reg[ri].pg[first];
	int ret, want;

	if (!m) {
		/* Locked or unmapped: refused, and nothing changes. */
		want = mp->mapped ? EINVAL : ENOMEM;
		ret = madvise(page_addr(ri, first), PSZ, advice) ? errno : 0;
		log_note(" -> probe: %d", ret);
		if (ret != want)
			return fail("madvise", "madvise(%d) of r%d page %u (%s): %d, expected %d",
				    advice, ri, first, mp->mapped ? "mlocked" : "unmapped",
				    ret, want);
		return verify_range(ri, first, 1, true);
	}
	log_note(" -> [%u,+%u)", first, m);
	/* MADV_FREE drops swapped pages at once: learn which are. */
	if (verify_range(ri, first, m, false))
		return -1;
	if (madvise(page_addr(ri, first), m * PSZ, advice))
		return fail("madvise", "madvise(%d) of r%d [%u,+%u): %d",
			    advice, ri, first, m, errno);
	for (i = first; i < first + m; i++) {
		mp = &W.reg[ri].pg[i];
		if (advice == MADV_PAGEOUT) {
			/* Reclaim may unmap an exclusive entry, or leave it. */
			excl_loosen(mp);
			continue;	/* pages may go to swap; no data may go */
		}
		/* Both invalidate the range. */
		excl_drop(mp, EXCL_BIT(0) | EXCL_BIT(1));
		if (advice == MADV_DONTNEED)
			mp->cpu_excl = CE_NO;
		if (advice == MADV_FREE && mp->cpu_excl != CE_NO) {
			/*
			 * MADV_FREE leaves a device-exclusive entry and its
			 * data alone; but a THP may be split first, which maps
			 * its pages again, and they are then lazily freed.
			 */
			if (!W.reg[ri].thp)
				continue;
			mp->cpu_excl = CE_MAYBE;
			if (mp->tag)
				mp->maybe_zero = true;
			continue;
		}
		if (advice == MADV_DONTNEED || mp->swapped || mp->poisoned) {
			mp->tag = 0;
			mp->maybe_zero = false;
			mp->poisoned = false;
			mp->loc = LOC_SYS;
			if (advice == MADV_DONTNEED) {
				mp->pinned = false;
				mp->cow = false;
			}
			continue;
		}
		if (mp->tag)
			mp->maybe_zero = true;
	}
	if (W.reg[ri].thp && advice == MADV_PAGEOUT)
		excl_loosen_range(ri, 0, W.reg[ri].n);
	if (verify_range(ri, first, m, true))
		return -1;
	return check_pages_used();
}

static int op_mprotect(const struct op *o, int ri, unsigned int first, unsigned int n)
{
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE };
	static const __u8 pick[] = { PR_RW, PR_RW, PR_RO, PR_NONE };
	unsigned int m = prefix(ri, first, n, is_mapped), i;
	int prot = pick[o->arg % 4];

	if (!m)
		return 0;
	log_note(" -> [%u,+%u) %s", first, m, prot == PR_RW ? "rw" : prot == PR_RO ? "ro" : "none");
	/* Learn where the pages are before they may disappear from view. */
	if (verify_range(ri, first, m, false))
		return -1;
	if (mprotect(page_addr(ri, first), m * PSZ, prots[prot]))
		return fail("mprotect", "mprotect r%d [%u,+%u): %d", ri, first, m, errno);
	for (i = first; i < first + m; i++) {
		struct mpage *mp = &W.reg[ri].pg[i];

		/* Made writable, a locked range is populated again. */
		if (mp->mlocked && prot == PR_RW && mp->prot != PR_RW)
			mp->loc = LOC_UNKNOWN;
		/* A change of protection invalidates; the same one does nothing. */
		if (mp->prot != prot) {
			excl_drop(mp, EXCL_BIT(0) | EXCL_BIT(1));
			if (mp->cpu_excl == CE_YES)
				mp->cpu_excl = CE_MAYBE;
		}
		mp->prot = prot;
	}
	return verify_range(ri, first, m, true);
}

static int op_mlock(const struct op *o, int ri, unsigned int first, unsigned int n)
{
	bool lock = o->kind == OP_MLOCK;
	unsigned int m = prefix(ri, first, n, lock ? can_lock : is_mapped), i;
	struct mpage *mp = &W.reg[ri].pg[first];

	if (!m && lock && mp->mapped && !mp->poisoned) {
		/* PROT_NONE: locked all the same, but it cannot be faulted in. */
		errno = 0;
		if (!mlock(page_addr(ri, first), PSZ) || errno != ENOMEM)
			return fail("mlock", "mlock of PROT_NONE r%d page %u: %d, expected ENOMEM",
				    ri, first, errno);
		log_note(" -> PROT_NONE page %u: ENOMEM", first);
		mp->mlocked = true;
		return verify_range(ri, first, 1, true);
	}
	if (!m)
		return 0;
	log_note(" -> [%u,+%u)", first, m);
	if ((lock ? mlock : munlock)(page_addr(ri, first), m * PSZ))
		return fail("mlock", "%s r%d [%u,+%u): %d", lock ? "mlock" : "munlock",
			    ri, first, m, errno);
	for (i = first; i < first + m; i++) {
		mp = &W.reg[ri].pg[i];
		mp->mlocked = lock;
		/* mlock() faults every accessible page in, device pages too. */
		if (lock && mp->prot != PR_NONE) {
			mp->loc = LOC_SYS;
			excl_restored(mp);
		}
		/* For write, where it may: that breaks COW. */
		if (lock && mp->prot == PR_RW)
			mp->cow = false;
	}
	if (verify_range(ri, first, m, true))
		return -1;
	return check_pages_used();
}

/* Move a whole region to another slot, its pages with it. */
static int op_mremap(const struct op *o, int ri)
{
	struct region *r = &W.reg[ri];
	int free_slots[NR_SLOTS], nfree = 0, slot, s;
	unsigned char *dst;
	unsigned int i;
	void *q;

	for (i = 1; i < r->n; i++) {
		if (!r->pg[i].mapped || r->pg[i].prot != r->pg[0].prot ||
		    r->pg[i].mlocked != r->pg[0].mlocked) {
			log_note(" -> not one VMA: skipped");
			return 0;
		}
	}
	if (!r->pg[0].mapped)
		return 0;
	for (s = 0; s < NR_SLOTS; s++)
		if (W.slot_owner[s] < 0)
			free_slots[nfree++] = s;
	slot = free_slots[o->sub_first % nfree];
	/* Now and then a THP goes to an address it cannot be mapped at. */
	dst = slot_addr(slot) + (r->thp && (o->arg & 1) ? PSZ : 0);
	log_note(" -> slot %d (%p)", slot, dst);
	q = mremap(r->p, r->n * PSZ, r->n * PSZ, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (q == MAP_FAILED) {
		/* VMAs that did not merge back: mremap takes only one. */
		if (errno != EFAULT)
			return fail("mremap", "mremap r%d: %d", ri, errno);
		log_note(" EFAULT");
		return verify_range(ri, 0, r->n, true);
	}
	if (q != dst)
		return fail("mremap", "mremap r%d went to %p, not %p", ri, q, dst);
	/* The old addresses were unmapped: no device holds the new ones. */
	for (i = 0; i < r->n; i++)
		excl_drop(&r->pg[i], EXCL_BIT(0) | EXCL_BIT(1));
	s = r->slot;
	r->p = dst;
	r->slot = slot;
	W.slot_owner[slot] = ri;
	if (reserve_slot(s))
		return -1;
	W.cover[CV_REMAPS]++;
	if (verify_range(ri, 0, r->n, true))
		return -1;
	return check_pages_used();
}

static int op_munmap(int ri, unsigned int first, unsigned int n)
{
	unsigned int i;

	if (munmap(page_addr(ri, first), n * PSZ))
		return fail("munmap", "munmap r%d [%u,+%u): %d", ri, first, n, errno);
	for (i = first; i < first + n; i++)
		reset_page(&W.reg[ri].pg[i], false);
	if (verify_range(ri, first, n, false))
		return -1;
	return check_pages_used();
}

/*
 * Fill the holes of a region, or replace the whole of it by new memory.
 * New memory in the THP region is written at once, which faults in one
 * THP, and half the time moved whole to a device: without that a device
 * THP would be rare, as the first operation on part of a THP splits it
 * for good (the fixed seeds replay as they did).
 */
static int op_mmap(const struct op *o, int ri)
{
	struct region *r = &W.reg[ri];
	unsigned int i, j;
	bool holes = false;
	int ret;

	for (i = 0; i < r->n; i = j) {
		j = i + 1;
		if (r->pg[i].mapped)
			continue;
		while (j < r->n && !r->pg[j].mapped)
			j++;
		holes = true;
		ret = map_pages(ri, i, j - i, MAP_FIXED_NOREPLACE);
		if (ret < 0)
			return -1;
		log_note(" [%u,+%u)%s", i, j - i, ret ? " taken" : "");
	}
	if (!holes) {
		log_note(" all new");
		if (map_pages(ri, 0, r->n, MAP_FIXED))
			return -1;
		if (r->thp && !W.fixed) {
			if (op_cpu(ri, 0, r->n, true))
				return -1;
			if (o->arg & 1)
				return op_to_dev(o, ri, 0, r->n, false);
		}
	}
	if (verify_range(ri, 0, r->n, true))
		return -1;
	return check_pages_used();
}

/* Every page of the child's copy of the model, as the child sees it. */
static int child_verify(void)
{
	unsigned int i;
	int ri, sig;

	for (ri = 0; ri < NR_REGIONS; ri++) {
		for (i = 0; i < W.reg[ri].n; i++) {
			struct mpage *mp = &W.reg[ri].pg[i];
			int want = cpu_sig(mp, false);

			if (want == SIGSEGV)
				continue;
			sig = guarded_copy(W.buf, page_addr(ri, i), PSZ);
			if (sig != want)
				return fail("cow_child",
					    "child: read of r%d page %u: %s, expected %s",
					    ri, i, sig_name(sig), sig_name(want));
			if (!sig && check_data(ri, i, W.buf, "child CPU read"))
				return -1;
		}
	}
	return 0;
}

/*
 * fork(): the child keeps the model as it was, waits while the parent
 * goes on for a few operations (writing, migrating, releasing pages they
 * share), then checks its own view and exits.
 */
static int op_fork(const struct op *o, long idx)
{
	unsigned int i;
	int go[2], ri;
	pid_t pid;
	char b;

	if (W.child > 0)
		return 0;
	if (pipe(go))
		return fail("fork", "pipe: %d", errno);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail("fork", "fork: %d", errno);
	if (!pid) {
		close(go[1]);
		alarm(SEED_ALARM);
		W.child = 0;
		if (read(go[0], &b, 1) != 1)
			_exit(2);
		if (child_verify()) {
			ksft_print_msg("%s: %s\n", W.fail_kind, W.fail_msg);
			fflush(stdout);
			_exit(1);
		}
		_exit(0);
	}
	close(go[0]);
	/* Copying the page tables took every exclusive entry back. */
	for (ri = 0; ri < NR_REGIONS; ri++) {
		for (i = 0; i < W.reg[ri].n; i++) {
			W.reg[ri].pg[i].cow = W.reg[ri].pg[i].mapped;
			excl_restored(&W.reg[ri].pg[i]);
		}
	}
	W.child = pid;
	W.child_go = go[1];
	W.child_until = idx + o->arg;
	W.cover[CV_FORKS]++;
	log_note(" -> child %d until op %ld", pid, W.child_until);
	return 0;
}

/* Let the child check its view; the parent's pages may have moved since. */
static int fork_join(void)
{
	unsigned int i;
	int ri, status;

	if (W.child <= 0)
		return 0;
	if (write(W.child_go, "g", 1) != 1)
		return fail("fork", "waking the child: %d", errno);
	status = wait_child(W.child);
	close(W.child_go);
	W.child = 0;
	log_note(" [child: %d]", status);
	if (status)
		return fail("cow_child", "the child's view of the pages was wrong (exit %d)",
			    status);
	/* Faults in the child moved shared device pages for both. */
	for (ri = 0; ri < NR_REGIONS; ri++) {
		for (i = 0; i < W.reg[ri].n; i++) {
			W.reg[ri].pg[i].loc = LOC_UNKNOWN;
			W.reg[ri].pg[i].cow = false;
		}
	}
	if (verify_all(true))
		return -1;
	return check_pages_used();
}

static int op_release(const struct op *o)
{
	struct hmm_dummy_cmd c;
	unsigned long want = 0;
	unsigned int i;
	bool known = W.child <= 0;
	int ri, ret, d = o->dev;

	for (ri = 0; ri < NR_REGIONS; ri++) {
		for (i = 0; i < W.reg[ri].n; i++) {
			struct mpage *mp = &W.reg[ri].pg[i];

			if (!mp->mapped)
				continue;
			known &= mp->loc != LOC_UNKNOWN;
			want += mp->loc == LOC_DEV0 + d;
		}
	}
	ret = dummy_cmd(W.fd[d], HMM_DUMMY_RELEASE, 0, NULL, 0, &c);
	log_note(" -> %d, %llu pages", ret, (unsigned long long)c.cpages);
	if (ret || (known && c.cpages != want))
		return fail("release", "RELEASE dev%d: %d, %llu pages, expected %lu",
			    d, ret, (unsigned long long)c.cpages, want);
	for (ri = 0; ri < NR_REGIONS; ri++)
		for (i = 0; i < W.reg[ri].n; i++)
			if (W.reg[ri].pg[i].loc == LOC_DEV0 + d)
				W.reg[ri].pg[i].loc = LOC_SYS;
	if (verify_all(true))
		return -1;
	return check_pages_used();
}

/* Closing the file ends its mirror, not the pages in device memory. */
static int op_reopen(const struct op *o)
{
	int d = o->dev, ri;
	unsigned int i;

	/* The file's device page table goes with it; the CPU entries stay. */
	for (ri = 0; ri < NR_REGIONS; ri++)
		for (i = 0; i < W.reg[ri].n; i++)
			excl_drop(&W.reg[ri].pg[i], EXCL_BIT(d));
	close(W.fd[d]);
	W.fd[d] = dummy_open(d);
	W.copy_mode[d] = HMM_DUMMY_COPY_DRIVER;
	if (W.fd[d] < 0)
		return fail("reopen", "reopening dev%d: %d", d, errno);
	if (verify_all(true))
		return -1;
	return check_pages_used();
}

static int op_copy_mode(const struct op *o)
{
	__u32 mode = o->arg % 3 == 2 ? 7 : o->arg % 3;
	int ret = ioctl(W.fd[o->dev], HMM_DUMMY_COPY_MODE, &mode) < 0 ? -errno : 0;

	log_note(" -> %u: %d", mode, ret);
	if (ret != (mode > HMM_DUMMY_COPY_CORE ? -EINVAL : 0))
		return fail("copy_mode", "COPY_MODE %u: %d", mode, ret);
	if (!ret)
		W.copy_mode[o->dev] = mode;
	return 0;
}

/* The pin must still hold what the CPU sees at the pinned addresses. */
static int unpin(void)
{
	__u64 out = (uintptr_t)W.buf;
	unsigned int i;
	int ri = W.pin_reg;

	if (!W.pin_on)
		return 0;
	W.pin_on = false;
	if (ioctl(W.gup_fd, PIN_LONGTERM_TEST_READ, &out))
		return fail("pin", "PIN_LONGTERM_TEST_READ: %d", errno);
	if (ioctl(W.gup_fd, PIN_LONGTERM_TEST_STOP))
		return fail("pin", "PIN_LONGTERM_TEST_STOP: %d", errno);
	for (i = 0; i < W.pin_n; i++) {
		struct mpage *mp = &W.reg[ri].pg[W.pin_first + i];
		long bad;

		if (!mp->pinned)
			continue;
		mp->pinned = false;
		bad = page_diff(W.buf + i * PSZ, mp->tag);
		if (bad >= 0 && !(mp->maybe_zero && page_diff(W.buf + i * PSZ, 0) < 0))
			return fail("pin_detached",
				    "the pin of r%d page %u no longer holds its data (word %ld)",
				    ri, W.pin_first + i, bad);
	}
	return 0;
}

static int op_pin(int ri, unsigned int first, unsigned int n)
{
	struct pin_longterm_test pin = { .flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE };
	unsigned int m, i;

	if (W.gup_fd < 0)
		return 0;
	if (W.pin_on) {
		log_note(" -> unpin r%d [%u,+%u)", W.pin_reg, W.pin_first, W.pin_n);
		return unpin();
	}
	m = prefix(ri, first, n < MAX_PIN ? n : MAX_PIN, can_pin);
	if (!m)
		return 0;
	pin.addr = (uintptr_t)page_addr(ri, first);
	pin.size = m * PSZ;
	log_note(" -> [%u,+%u)", first, m);
	if (ioctl(W.gup_fd, PIN_LONGTERM_TEST_START, &pin))
		return fail("pin", "PIN_LONGTERM_TEST_START r%d [%u,+%u): %d",
			    ri, first, m, errno);
	W.pin_on = true;
	W.pin_reg = ri;
	W.pin_first = first;
	W.pin_n = m;
	for (i = first; i < first + m; i++) {
		/* Pinning for write faults the pages into RAM, unshared. */
		excl_restored(&W.reg[ri].pg[i]);
		W.reg[ri].pg[i].pinned = true;
		W.reg[ri].pg[i].loc = LOC_SYS;
		W.reg[ri].pg[i].cow = false;
	}
	if (verify_range(ri, first, m, true))
		return -1;
	return check_pages_used();
}

/*
 * Run on another CPU from now on: what one CPU left in its per-CPU
 * batches (LRU caches, mlock) is then another CPU's, and replays see
 * the same CPUs as the run they replay.
 */
static int op_hop(const struct op *o)
{
	int cpu, n = 0, want;
	cpu_set_t set;

	if (!W.nr_cpus)
		return 0;
	want = o->arg % W.nr_cpus;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &W.cpus) || n++ != want)
			continue;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		log_note(" -> cpu %d", cpu);
		W.cover[CV_HOPS]++;
		if (sched_setaffinity(0, sizeof(set), &set))
			return fail("hop", "sched_setaffinity(cpu %d): %d", cpu, errno);
		return 0;
	}
	return 0;
}

/* make_device_exclusive() takes anonymous memory the caller may write. */
static bool can_take(const struct mpage *mp)
{
	return mp->mapped && mp->prot == PR_RW && !mp->poisoned;
}

/*
 * EXCLUSIVE: the device takes the pages (writing them in, from swap or
 * device memory, breaking COW), marks them and reads them back. Any
 * other mark of theirs goes, and the CPU maps none of them.
 */
static int op_exclusive(const struct op *o, int ri, unsigned int first, unsigned int n)
{
	unsigned int m = prefix(ri, first, n, can_take), i;
	struct region *r = &W.reg[ri];
	struct hmm_dummy_cmd c;
	int d = o->dev, ret, want;

	if (W.excl_type < 0)
		return 0;
	W.excl_ops++;
	if (!m) {
		/* Not writable, or poisoned: refused, nothing changes. */
		ret = dummy_cmd(W.fd[d], HMM_DUMMY_EXCLUSIVE, (uintptr_t)page_addr(ri, first),
				W.buf, 1, &c);
		log_note(" -> probe page %u: %d", first, ret);
		/* EPERM for read-only memory, as a device WRITE; else EFAULT. */
		want = r->pg[first].mapped && r->pg[first].prot == PR_RO ? -EPERM : -EFAULT;
		if (ret != want || c.cpages)
			return fail("exclusive",
				    "EXCLUSIVE dev%d of r%d page %u (%s%s): %d, expected %d",
				    d, ri, first, r->pg[first].mapped ? "not writable" : "unmapped",
				    r->pg[first].poisoned ? ", poisoned" : "", ret, want);
		return verify_range(ri, first, 1, true);
	}
	log_note(" -> [%u,+%u)", first, m);
	if (verify_range(ri, first, m, false))
		return -1;
	memset(W.buf, 0xa5, m * PSZ);
	ret = dummy_cmd(W.fd[d], HMM_DUMMY_EXCLUSIVE, (uintptr_t)page_addr(ri, first),
			W.buf, m, &c);
	log_note(" %d", ret);
	if (ret || c.cpages != m)
		return fail("exclusive", "EXCLUSIVE dev%d of r%d [%u,+%u): %d, %llu pages",
			    d, ri, first, m, ret, (unsigned long long)c.cpages);
	for (i = 0; i < m; i++) {
		struct mpage *mp = &r->pg[first + i];

		if (check_data(ri, first + i, W.buf + i * PSZ, "EXCLUSIVE read back"))
			return -1;
		if (mp->loc != LOC_SYS)
			W.cover[CV_BACK]++;
		mp->loc = LOC_SYS;
		mp->cow = false;
		mp->swapped = false;
		mp->excl_must = EXCL_BIT(d);
		mp->excl_may = EXCL_BIT(d);
		mp->cpu_excl = CE_YES;
		W.cover[CV_EXCL]++;
	}
	if (verify_range(ri, first, m, true))
		return -1;
	return check_pages_used();
}

/* CHECK_EXCLUSIVE over the range counts what the model bounds. */
static int op_check_excl(const struct op *o, int ri, unsigned int first, unsigned int n)
{
	unsigned int lo = 0, hi = 0, i, bit = EXCL_BIT(o->dev);
	struct hmm_dummy_cmd c;
	int ret;

	if (W.excl_type < 0)
		return 0;
	for (i = first; i < first + n; i++) {
		lo += !!(W.reg[ri].pg[i].excl_must & bit);
		hi += !!(W.reg[ri].pg[i].excl_may & bit);
	}
	ret = check_exclusive(o->dev, page_addr(ri, first), n, &c);
	log_note(" -> %d, %llu pages (model %u to %u)", ret, (unsigned long long)c.cpages, lo, hi);
	if (c.cpages < lo || c.cpages > hi || ret != (c.cpages ? -EPERM : 0))
		return fail("check_excl",
			    "CHECK_EXCLUSIVE dev%d of r%d [%u,+%u): %d, %llu pages, expected %u to %u",
			    o->dev, ri, first, n, ret, (unsigned long long)c.cpages, lo, hi);
	return verify_range(ri, first, n, true);
}

static void describe(const struct op *o, char *s, size_t len)
{
	snprintf(s, len, "%s r%u [%u,+%u) dev%u arg %u sub %u/%u",
		 op_names[o->kind], o->reg, o->first, o->n, o->dev, o->arg,
		 o->sub_first, o->sub_n);
}

static int run_op(const struct op *o, long idx)
{
	unsigned int first = o->first, n = o->n;
	int ri = o->reg, r;
	char s[96];

	clamp(ri, &first, &n);
	describe(o, s, sizeof(s));
	log_op(idx, "%s", s);
	W.opno = idx;
	/* khugepaged may swap in, and so take back, the THP region's pages. */
	for (r = 0; r < NR_REGIONS; r++)
		if (W.reg[r].thp)
			excl_loosen_range(r, 0, W.reg[r].n);
	switch (o->kind) {
	case OP_CPU_READ:
		return op_cpu(ri, first, n, false);
	case OP_CPU_WRITE:
		return op_cpu(ri, first, n, true);
	case OP_DEV_READ:
		return op_dev_access(o, ri, first, n, false);
	case OP_DEV_WRITE:
		return op_dev_access(o, ri, first, n, true);
	case OP_TO_DEV:
		return op_to_dev(o, ri, first, n, false);
	case OP_ALLOC_FAIL:
		if (o->arg & 1)
			return op_to_sys(o, ri, first, n, HMM_DUMMY_INJECT_ALLOC_FAIL);
		return op_to_dev(o, ri, first, n, true);
	case OP_TO_SYS:
		return op_to_sys(o, ri, first, n, 0);
	case OP_POISON:
		return op_poison(o, ri, first, n);
	case OP_SNAPSHOT:
		return verify_range(ri, 0, W.reg[ri].n, true);
	case OP_DONTNEED:
	case OP_FREE:
	case OP_PAGEOUT:
		return op_madvise(o, ri, first, n);
	case OP_MPROTECT:
		return op_mprotect(o, ri, first, n);
	case OP_MLOCK:
	case OP_MUNLOCK:
		return op_mlock(o, ri, first, n);
	case OP_MREMAP:
		return op_mremap(o, ri);
	case OP_MUNMAP:
		/* Half the time the whole region. */
		if (o->arg & 1)
			return op_munmap(ri, 0, W.reg[ri].n);
		return op_munmap(ri, first, n);
	case OP_MMAP:
		return op_mmap(o, ri);
	case OP_FORK:
		return op_fork(o, idx);
	case OP_RELEASE:
		return op_release(o);
	case OP_REOPEN:
		return op_reopen(o);
	case OP_COPY_MODE:
		return op_copy_mode(o);
	case OP_PIN:
		return op_pin(ri, first, n);
	case OP_HOP:
		return op_hop(o);
	case OP_EXCLUSIVE:
		return op_exclusive(o, ri, first, n);
	case OP_CHECK_EXCL:
		return op_check_excl(o, ri, first, n);
	}
	return 0;
}

/* 8. Drawing operations. */

struct gen {
	unsigned int sizes[NR_REGIONS];
	long nested;
};

static unsigned int draw_len(unsigned int max)
{
	unsigned int r = rnd_below(100);

	if (r < 50)
		return 1 + rnd_below(max < 8 ? max : 8);
	if (r < 85)
		return 1 + rnd_below(max < 64 ? max : 64);
	return 1 + rnd_below(max);
}

/* While a child shares the pages, no fork and no reclaim advice. */
static bool allowed_nested(int kind)
{
	return kind != OP_FORK && kind != OP_FREE && kind != OP_PAGEOUT;
}

/* Whether @seed is one of the first @nr fixed seeds. */
static bool seed_among_fixed(unsigned long seed, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (fixed_seeds[i] == seed)
			return true;
	return false;
}

/*
 * The seeds found before the exclusive-access operations existed are
 * drawn without them, so that they replay what they found.
 */
static bool legacy_seed(unsigned long seed)
{
	return seed_among_fixed(seed, NR_LEGACY_SEEDS);
}

static unsigned int kind_weight(unsigned int k)
{
	if (W.legacy && (k == OP_EXCLUSIVE || k == OP_CHECK_EXCL))
		return 0;
	return op_weight[k];
}

static void draw_op(struct gen *g, struct op *o)
{
	unsigned int total = 0, r, k, size;

	for (k = 0; k < NR_OP_KINDS; k++)
		total += kind_weight(k);
	do {
		r = rnd_below(total);
		for (k = 0; r >= kind_weight(k); k++)
			r -= kind_weight(k);
	} while (g->nested > 0 && !allowed_nested(k));
	o->kind = k;
	o->reg = rnd_below(NR_REGIONS);
	size = g->sizes[o->reg];
	o->n = draw_len(size);
	o->first = rnd_below(size - o->n + 1);
	o->dev = rnd_below(2);
	o->arg = rnd_below(256);
	o->sub_first = rnd_below(65536);
	o->sub_n = rnd_below(8) ? rnd_below(4) : rnd_below(65536);
	/*
	 * A draw of the THP region's length lands on its whole 2 MiB once
	 * in a few thousand: aim a quarter of its operations there, so that
	 * THPs move to a device and back whole and the device THP meets the
	 * other operations (the fixed seeds draw as they did).
	 */
	if (!o->reg && !W.fixed && !rnd_below(4)) {
		o->first = 0;
		o->n = size;
	}
	if (g->nested > 0)
		g->nested--;
	if (k == OP_FORK) {
		o->arg %= MAX_NESTED + 1;
		g->nested = o->arg;
	}
}

/* 9. One seed. */

/*
 * Learn the swap type pagemap shows for a device-exclusive entry, on a
 * page of its own; W.excl_type stays -1 (no exclusive operations) if the
 * driver has no EXCLUSIVE (ENOTTY) or pagemap hides the type. Any other
 * error of the probe fails the seed: it would turn every exclusive
 * operation and check into a no-op.
 */
static int excl_probe(void)
{
	unsigned char *p;
	struct hmm_dummy_cmd c;
	__u64 pm = 0;
	int ret;

	W.excl_type = -1;
	if (W.legacy)
		return 0;
	p = mmap(NULL, PSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return fail("setup", "mmap: %d", errno);
	fill_page(p, 1);
	ret = dummy_cmd(W.fd[0], HMM_DUMMY_EXCLUSIVE, (uintptr_t)p, W.buf, 1, &c);
	if (ret && ret != -ENOTTY)
		fail("exclusive_probe",
		     "EXCLUSIVE of the probe page: %d, %llu pages (only ENOTTY, no EXCLUSIVE in the driver, may leave the exclusive operations out)",
		     ret, (unsigned long long)c.cpages);
	if (!ret && W.pagemap_fd >= 0 &&
	    pread(W.pagemap_fd, &pm, sizeof(pm), (uintptr_t)p / PSZ * sizeof(pm)) == sizeof(pm) &&
	    (pm & PM_SWAP) && PM_SWP_TYPE(pm))
		W.excl_type = PM_SWP_TYPE(pm);
	if (!ret && page_diff(W.buf, 1) >= 0)
		ret = fail("data_wrong", "EXCLUSIVE read back of the probe page");
	else if (!ret && page_diff(p, 1) >= 0)
		ret = fail("data_wrong", "the probe page after EXCLUSIVE");
	munmap(p, PSZ);
	if (W.excl_type < 0 && !W.fail_kind)
		ksft_print_msg("seed %lu: no exclusive operations (%d, pagemap %016llx)\n",
			       W.seed, ret, (unsigned long long)pm);
	return W.fail_kind ? -1 : 0;
}

static int seed_setup(struct gen *g)
{
	void *raw;
	int ri, d, s;

	W.fd[0] = -1;
	W.fd[1] = -1;
	/* Start on the first allowed CPU, so that replays start alike. */
	if (!sched_getaffinity(0, sizeof(W.cpus), &W.cpus) && CPU_COUNT(&W.cpus) > 1) {
		cpu_set_t one;
		int cpu;

		W.nr_cpus = CPU_COUNT(&W.cpus);
		for (cpu = 0; !CPU_ISSET(cpu, &W.cpus); cpu++)
			;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		sched_setaffinity(0, sizeof(one), &one);
	}
	W.gup_fd = gup_test_open();
	W.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (d = 0; d < 2; d++) {
		W.fd[d] = dummy_open(d);
		if (W.fd[d] < 0)
			return fail("setup", "opening /dev/hmm_dummy%d: %d", d, errno);
		W.used0[d] = pages_used(d);
		/* Should be 0: what a previous seed left would show here. */
		if (W.used0[d])
			ksft_print_msg("seed %lu: dev%d has %ld pages in use before the start\n",
				       W.seed, d, W.used0[d]);
	}
	W.buf = malloc(MAX_PAGES * PSZ);
	W.pat = malloc(PSZ);
	W.snap[0] = malloc(MAX_PAGES);
	W.snap[1] = malloc(MAX_PAGES);
	W.present = malloc(MAX_PAGES);
	W.tags = malloc(MAX_PAGES * sizeof(__u64));
	W.pm = malloc(MAX_PAGES * sizeof(__u64));
	if (!W.buf || !W.pat || !W.snap[0] || !W.snap[1] || !W.present || !W.tags || !W.pm)
		return fail("setup", "out of memory");
	if (excl_probe())
		return -1;
	/* All regions live in one reservation, so nothing else lands there. */
	raw = mmap(NULL, (NR_SLOTS + 1) * SLOT_SIZE, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return fail("setup", "reserving the arena: %d", errno);
	W.arena = (unsigned char *)(((uintptr_t)raw + SZ_2M - 1) & ~(SZ_2M - 1));
	for (s = 0; s < NR_SLOTS; s++)
		W.slot_owner[s] = -1;
	for (ri = 0; ri < NR_REGIONS; ri++)
		if (region_create(ri, 2 * ri, g->sizes[ri], ri == 0))
			return -1;
	return 0;
}

/*
 * Start from a mix: written pages, zero pages and untouched ones. A seed
 * other than the fixed ones (which replay what they found) then moves
 * the THP region whole to a device, so that every fresh seed starts with
 * a device THP for its operations to meet.
 */
static int seed_init(void)
{
	struct op o = { .kind = OP_TO_DEV, .n = THP_PAGES };
	unsigned int i, r;
	int ri;

	log_op(-1, "init");
	for (ri = 0; ri < NR_REGIONS; ri++) {
		for (i = 0; i < W.reg[ri].n; i++) {
			struct mpage *mp = &W.reg[ri].pg[i];

			r = rnd_below(8);
			if (r < 4) {
				mp->tag = new_stamp(ri, i);
				fill_page(page_addr(ri, i), mp->tag);
			} else if (r == 4 && page_diff(page_addr(ri, i), 0) >= 0) {
				return fail("data_wrong", "r%d page %u: new memory not zeroed",
					    ri, i);
			}
		}
	}
	if (verify_all(true))
		return -1;
	if (W.fixed)
		return 0;
	o.dev = rnd_below(2);
	log_note(" THP region to dev%u", o.dev);
	return op_to_dev(&o, 0, 0, o.n, false);
}

/* The final check: every page, read whatever it takes, then cleanup. */
static int seed_finish(void)
{
	unsigned int i;
	int ri, d;

	log_op(W.opno + 1, "finish");
	if (fork_join() || unpin() || verify_all(true) || check_pages_used())
		return -1;
	for (ri = 0; ri < NR_REGIONS; ri++) {
		struct region *r = &W.reg[ri];

		for (i = 0; i < r->n; i++) {
			struct mpage *mp = &r->pg[i];

			if (mp->mapped && mp->prot == PR_NONE &&
			    mprotect(page_addr(ri, i), PSZ, PROT_READ))
				return fail("finish", "mprotect: %d", errno);
			if (mp->mapped && mp->prot == PR_NONE)
				mp->prot = PR_RO;
		}
		if (op_cpu(ri, 0, r->n, false))
			return -1;
		if (munmap(r->p, r->n * PSZ))
			return fail("finish", "munmap: %d", errno);
		for (i = 0; i < r->n; i++)
			reset_page(&r->pg[i], false);
	}
	for (d = 0; d < 2; d++) {
		long used = pages_used(d);
		int tries;

		for (tries = 0; tries < 100 && used != W.used0[d]; tries++) {
			usleep(10000);
			used = pages_used(d);
		}
		if (used != W.used0[d])
			return fail("pages_used",
				    "dev%d: %ld pages in use after munmap, %ld before",
				    d, used, W.used0[d]);
	}
	return 0;
}

struct run_opts {
	unsigned long seed;
	long ops;		/* how many operations, at most */
	double seconds;		/* stop after this long, 0 for no limit */
	const unsigned char *skip;	/* operations left out, or NULL */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run one seed in this process; fills @res. */
static void run_seed(const struct run_opts *ro, struct seed_result *res)
{
	double end = ro->seconds > 0 ? now() + ro->seconds : 0;
	struct gen g = { .nested = 0 };
	struct op o;
	long i;
	int ri;

	memset(&W, 0, sizeof(W));
	W.seed = ro->seed;
	W.legacy = legacy_seed(ro->seed);
	W.fixed = seed_among_fixed(ro->seed, ARRAY_SIZE(fixed_seeds));
	W.child = 0;
	rng_state = mix64(ro->seed);
	catch_signals();
	for (ri = 0; ri < NR_REGIONS; ri++)
		g.sizes[ri] = ri ? 16 + rnd_below(49) : THP_PAGES;
	if (!seed_setup(&g) && !seed_init()) {
		for (i = 0; i < ro->ops && !W.fail_kind; i++) {
			if (end && now() > end)
				break;
			draw_op(&g, &o);
			if (ro->skip && ro->skip[i])
				continue;
			if (run_op(&o, i))
				break;
			if (W.child > 0 && i >= W.child_until && fork_join())
				break;
		}
		res->ops = i;
		if (!W.fail_kind)
			seed_finish();
	}
	res->failed = !!W.fail_kind;
	res->fail_op = W.opno;
	memcpy(res->cover, W.cover, sizeof(res->cover));
	res->excl_on = W.excl_type >= 0;
	res->excl_ops = W.excl_ops;
	if (!W.fail_kind)
		return;
	snprintf(res->kind, sizeof(res->kind), "%s", W.fail_kind);
	if (W.child > 0) {
		kill(W.child, SIGKILL);
		waitpid(W.child, NULL, 0);
	}
	ksft_print_msg("seed %lu FAILED in op %ld: %s: %s\n", W.seed, W.opno,
		       W.fail_kind, W.fail_msg);
	dump_log();
}

/* Run one seed in a child process, so that nothing it leaves behind stays. */
static int run_seed_child(const struct run_opts *ro, struct seed_result *res,
			  bool quiet)
{
	int pfd[2], status;
	pid_t pid;
	ssize_t got;

	memset(res, 0, sizeof(*res));
	if (pipe(pfd))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(pfd[0]);
		alarm(SEED_ALARM);
		if (quiet && !freopen("/dev/null", "w", stdout))
			_exit(2);
		run_seed(ro, res);
		fflush(stdout);
		if (write(pfd[1], res, sizeof(*res)) != sizeof(*res))
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	got = read(pfd[0], res, sizeof(*res));
	close(pfd[0]);
	status = wait_child(pid);
	if (got != sizeof(*res) || status) {
		res->failed = 1;
		snprintf(res->kind, sizeof(res->kind), "crash(%d)", status);
	}
	return 0;
}

/*
 * Shrink a failing sequence: leave operations out, chunk by chunk, as
 * long as the same kind of failure still shows, within @budget seconds.
 */
static void shrink(unsigned long seed, long nops, const char *kind, double budget)
{
	unsigned char *skip = calloc(nops, 1);
	double end = now() + budget;
	struct seed_result res;
	struct run_opts ro = { .seed = seed, .ops = nops };
	long chunk, start, i, kept = nops, tries = 0;

	if (!skip)
		return;
	ro.skip = skip;
	for (chunk = nops / 2; chunk >= 1 && now() < end; chunk /= 2) {
		for (start = 0; start < nops - 1 && now() < end; start += chunk) {
			long changed = 0;

			/* The last operation is where it failed: keep it. */
			for (i = start; i < start + chunk && i < nops - 1; i++)
				if (!skip[i]) {
					skip[i] = 2;
					changed++;
				}
			if (!changed)
				continue;
			tries++;
			run_seed_child(&ro, &res, true);
			for (i = start; i < start + chunk && i < nops - 1; i++) {
				if (skip[i] != 2)
					continue;
				skip[i] = res.failed && !strcmp(res.kind, kind);
			}
			if (res.failed && !strcmp(res.kind, kind))
				kept -= changed;
		}
	}
	ksft_print_msg("seed %lu: %s still shows with %ld of %ld operations (%ld tries):\n",
		       seed, kind, kept, nops, tries);
	printf("# replay: ./hmm_model --seed %lu --ops %ld --keep ", seed, nops);
	for (i = 0; i < nops; i++)
		if (!skip[i])
			printf("%ld,", i);
	printf("\n");
	free(skip);
}

/* 10. main. */

struct totals {
	unsigned long seeds;
	unsigned long ops;
	unsigned long failed;
	unsigned long cover[NR_CV];
	unsigned long excl_seeds;	/* non-legacy seeds: exclusive ops drawn */
	unsigned long excl_on;		/* of them, seeds the probe enabled them in */
	unsigned long excl_ops;		/* EXCLUSIVE operations those ran */
	double shrink_left;
};

static void one_seed(struct totals *t, unsigned long seed, long ops, double seconds,
		     double shrink_budget, const unsigned char *skip)
{
	struct run_opts ro = { .seed = seed, .ops = ops, .seconds = seconds, .skip = skip };
	struct seed_result res;
	double t0 = now();
	int i;

	run_seed_child(&ro, &res, false);
	t->seeds++;
	t->ops += res.ops;
	for (i = 0; i < NR_CV; i++)
		t->cover[i] += res.cover[i];
	t->excl_seeds += !legacy_seed(seed);
	t->excl_on += res.excl_on;
	t->excl_ops += res.excl_ops;
	if (!res.failed) {
		ksft_test_result_pass("seed %lu: %lu ops in %.1f s\n", seed, res.ops,
				      now() - t0);
		return;
	}
	t->failed++;
	ksft_print_msg("replay: ./hmm_model --seed %lu --ops %ld\n", seed, res.fail_op + 1);
	if (!skip && res.fail_op >= 0 && shrink_budget > 0 && t->shrink_left > 0) {
		double s0 = now();

		shrink(seed, res.fail_op + 1, res.kind,
		       shrink_budget < t->shrink_left ? shrink_budget : t->shrink_left);
		t->shrink_left -= now() - s0;
	}
	ksft_test_result_fail("seed %lu: %s in op %ld of %lu\n", seed, res.kind,
			      res.fail_op, res.ops);
}

/*
 * The result of a whole run (not of a replay): where the probe enabled
 * the exclusive operations, they took pages. A run without one such seed
 * skips, saying why.
 */
static void excl_coverage(const struct totals *t)
{
	unsigned long n = t->cover[CV_EXCL];

	if (!t->excl_on)
		ksft_test_result_skip("exclusive coverage: off in all %lu seeds that draw them\n",
				      t->excl_seeds);
	else if (!n)
		ksft_test_result_fail("exclusive coverage: %lu ops, %lu of %lu seeds, no page\n",
				      t->excl_ops, t->excl_on, t->excl_seeds);
	else
		ksft_test_result_pass("exclusive coverage: %lu pages, %lu ops, %lu of %lu seeds\n",
				      n, t->excl_ops, t->excl_on, t->excl_seeds);
}

/*
 * The result of a whole run: its seeds put a THP on a device whole, seen
 * in SNAPSHOT as one device-private PMD (every fresh seed starts so).
 * Without, the device-THP states would go untested; a kernel that gave
 * no THP at all skips, as do devices that refused device THPs (short of
 * memory).
 */
static void dev_thp_coverage(const struct totals *t, unsigned long refused)
{
	unsigned long n = t->cover[CV_DEV_THP];

	if (!n && !t->cover[CV_THP])
		ksft_test_result_skip("device THP coverage: the kernel gave no THP at all\n");
	else if (!n && refused)
		ksft_test_result_skip("device THP coverage: the devices refused %lu device THPs\n",
				      refused);
	else if (!n)
		ksft_test_result_fail("device THP coverage: no page seen in a device THP\n");
	else
		ksft_test_result_pass("device THP coverage: %lu page looks\n", n);
}

/* Device THPs both devices refused since they were loaded. */
static unsigned long thp_refusals(void)
{
	struct hmm_dummy_info info;
	unsigned long n = 0;
	int d, fd;

	for (d = 0; d < 2; d++) {
		fd = dummy_open(d);
		if (fd < 0)
			continue;
		if (!get_info(fd, &info))
			n += info.huge_no_block + info.huge_no_backing;
		close(fd);
	}
	return n;
}

static unsigned char *parse_keep(const char *list, long nops)
{
	unsigned char *skip = malloc(nops > 0 ? nops : 1);
	char *end;
	long i;

	if (!skip)
		return NULL;
	memset(skip, 1, nops);
	while (*list) {
		i = strtol(list, &end, 10);
		if (end == list)
			break;
		if (i >= 0 && i < nops)
			skip[i] = 0;
		list = *end ? end + 1 : end;
	}
	return skip;
}

static void usage(const char *prog)
{
	printf("%s [--seed N] [--ops N] [--time S] [--keep I,J,...] [--shrink S] [-v]\n",
	       prog);
	exit(KSFT_FAIL);
}

int main(int argc, char **argv)
{
	struct totals t = { .shrink_left = 30 };
	unsigned long refused0;
	double seconds = -1, shrink_budget = DEFAULT_SHRINK, t0 = now();
	const char *keep = NULL;
	unsigned char *skip = NULL;
	bool have_seed = false;
	unsigned long seed = 0;
	long ops = -1;
	unsigned int i;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "-v")) {
			verbose = true;
			continue;
		}
		if (a + 1 >= argc)
			usage(argv[0]);
		have_seed |= !strcmp(argv[a], "--seed");
		if (!strcmp(argv[a], "--seed"))
			seed = strtoul(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--ops"))
			ops = strtol(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--time"))
			seconds = strtod(argv[++a], NULL);
		else if (!strcmp(argv[a], "--keep"))
			keep = argv[++a];
		else if (!strcmp(argv[a], "--shrink"))
			shrink_budget = strtod(argv[++a], NULL);
		else
			usage(argv[0]);
	}
	ksft_print_header();
	if (access("/dev/hmm_dummy0", F_OK) || access("/dev/hmm_dummy1", F_OK))
		ksft_exit_skip("/dev/hmm_dummy0 and 1 are needed (hmm_dummy not loaded?)\n");
	refused0 = thp_refusals();
	if (sysconf(_SC_PAGESIZE) != PSZ)
		ksft_exit_skip("the model assumes 4 KiB pages\n");

	if (have_seed) {
		if (ops < 0)
			ops = DEFAULT_OPS;
		if (keep)
			skip = parse_keep(keep, ops);
		ksft_set_plan(1);
		one_seed(&t, seed, ops, 0, shrink_budget, skip);
	} else if (seconds >= 0) {
		/* Fresh seeds, one after the other, for that long. */
		seed = (unsigned long)time(NULL) * 1000 + getpid() % 1000;
		while (now() - t0 < seconds)
			one_seed(&t, seed++, ops < 0 ? DEFAULT_OPS : ops,
				 seconds - (now() - t0) + 1, shrink_budget, NULL);
		ksft_set_plan(t.seeds + 2);
		excl_coverage(&t);
		dev_thp_coverage(&t, thp_refusals() - refused0);
	} else {
		ksft_set_plan(ARRAY_SIZE(fixed_seeds) + 3);
		for (i = 0; i < ARRAY_SIZE(fixed_seeds); i++)
			one_seed(&t, fixed_seeds[i], ops < 0 ? DEFAULT_OPS : ops, 0,
				 shrink_budget, NULL);
		/* One fresh seed, as many operations as fit in the time. */
		seed = (unsigned long)time(NULL) * 1000 + getpid() % 1000;
		ksft_print_msg("fresh seed %lu for %d s\n", seed, DEFAULT_TIME);
		one_seed(&t, seed, ops < 0 ? 1000000 : ops, DEFAULT_TIME, shrink_budget, NULL);
		excl_coverage(&t);
		dev_thp_coverage(&t, thp_refusals() - refused0);
	}
	ksft_print_msg("%lu seeds, %lu operations, %lu failed, %.1f s\n",
		       t.seeds, t.ops, t.failed, now() - t0);
	ksft_print_msg("coverage:");
	for (i = 0; i < NR_CV; i++)
		printf(" %s %lu", cv_names[i], t.cover[i]);
	printf("\n");
	free(skip);
	ksft_finished();
}
