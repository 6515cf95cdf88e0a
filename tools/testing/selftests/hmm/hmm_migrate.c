// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of page migration through the hmm_dummy driver.
 *
 * MIGRATE_TO_DEV moves anonymous private pages into the device-private
 * memory of /dev/hmm_dummyN and reads them back from there; MIGRATE_TO_SYS,
 * RELEASE and CPU faults bring them back to RAM. Every byte that moves is
 * checked twice: in what the device read from its own memory, and in what
 * the CPU sees afterwards. In between, the tests change the mappings of
 * pages that sit on the device (fork, munmap, mremap, mprotect, exit), pin
 * pages, share them between threads, and make the driver's side of a
 * migration fail on purpose.
 *
 * The data is a pattern that differs per byte, per page and per seed, so
 * a page that was lost, swapped with another one or copied only in part
 * cannot pass for the expected one.
 */
#include "../kselftest_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/mount.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "hmm_dummy_uapi.h"

#include "../../../../mm/gup_test.h"
#include "hmm_dummy_util.h"

#define NPAGES			16UL
/* 32 MiB of 4 KiB pages: big, yet quick enough on a slow test kernel. */
#define LARGE_PAGES		8192UL
#define EXIT_PAGES		32UL
#define NTHREADS		8
#define THREAD_ROUNDS		64
#define MAX_RACE_MIGRATIONS	200

/* What SNAPSHOT says of a writable page in this device's memory. */
#define DEV_RW	(HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL | HMM_DUMMY_PROT_WRITE)
#define DEV_RO	(HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL | HMM_DUMMY_PROT_READ)
#define SYS_RW	HMM_DUMMY_PROT_WRITE

#define GUP_TEST_PATH		"/sys/kernel/debug/gup_test"
#define PAGEMAP_PFN_MASK	((1ULL << 55) - 1)
#define PAGEMAP_PRESENT_SHIFT	63

/* The range of the last injection on a device, to clear it in the end. */
struct injection {
	int fd;
	void *addr;
	__u64 npages;
};

FIXTURE(migrate)
{
	int fd;
	size_t psz;
	struct injection inj;
};

/*
 * The two variants differ in what they exercise, not only in the device:
 * with THP allowed, every mapping of 2 MiB and more starts out as huge
 * pages that a migration must split (the two-device tests are below).
 */
FIXTURE_VARIANT(migrate)
{
	int dev;
	bool thp;
};

FIXTURE_VARIANT_ADD(migrate, dev0_no_thp)
{
	.dev = 0,
	.thp = false,
};

FIXTURE_VARIANT_ADD(migrate, dev1_thp)
{
	.dev = 1,
	.thp = true,
};

static int to_dev(int fd, void *addr, void *buf, __u64 npages,
		  struct hmm_dummy_cmd *out)
{
	return dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)addr, buf,
			 npages, out);
}

static int to_sys(int fd, void *addr, __u64 npages, struct hmm_dummy_cmd *out)
{
	return dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_SYS, (uintptr_t)addr, NULL,
			 npages, out);
}

static int inject(int fd, void *addr, __u64 npages, __u32 kind)
{
	struct hmm_dummy_inject inj = {
		.addr = (uintptr_t)addr,
		.npages = npages,
		.kind = kind,
	};

	return ioctl(fd, HMM_DUMMY_INJECT, &inj) < 0 ? -errno : 0;
}

/* Set an injection and note its range in @inj for the teardown. */
static int inject_on(struct injection *inj, void *addr, __u64 npages,
		     __u32 kind)
{
	inj->addr = addr;
	inj->npages = npages;
	return inject(inj->fd, addr, npages, kind);
}

static int set_copy_mode(int fd, __u32 mode)
{
	return ioctl(fd, HMM_DUMMY_COPY_MODE, &mode) < 0 ? -errno : 0;
}

/* INFO pages_used of the device of @fd, or -1. */
static long pages_used(int fd)
{
	struct hmm_dummy_info info;

	return get_info(fd, &info) ? -1 : (long)info.pages_used;
}

/*
 * Device pages are freed when their last reference goes, which should be
 * before the call that dropped it returns; allow two seconds anyway.
 * Returns the last value read.
 */
static long wait_pages_used(int fd, long want)
{
	long used = pages_used(fd);
	int i;

	for (i = 0; i < 200 && used != want; i++) {
		usleep(10000);
		used = pages_used(fd);
	}
	return used;
}

FIXTURE_SETUP(migrate)
{
	char why[80];

	self->psz = sysconf(_SC_PAGESIZE);
	map_anon_allow_thp(variant->thp);
	self->fd = dummy_fixture_open(variant->dev, why, sizeof(why));
	if (self->fd < 0 && why[0])
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->fd);
	self->inj.fd = self->fd;
	self->inj.npages = 0;
}

FIXTURE_TEARDOWN(migrate)
{
	if (self->fd < 0)
		return;
	/* An injection stays until cleared: never leave one behind. */
	if (self->inj.npages)
		inject(self->fd, self->inj.addr, self->inj.npages,
		       HMM_DUMMY_INJECT_NONE);
	close(self->fd);
}

/* A mapping under test and a buffer as big for the device's copies. */
struct area {
	unsigned char *p;
	unsigned char *buf;
	size_t n;
	size_t len;
	size_t psz;
};

/* Take @n pages at @p as @a, filled with pattern @seed unless it is 0. */
static void area_init(struct __test_metadata *_metadata, struct area *a,
		      void *p, size_t n, size_t psz, unsigned int seed)
{
	ASSERT_NE(MAP_FAILED, p);
	a->p = p;
	a->n = n;
	a->psz = psz;
	a->len = n * psz;
	a->buf = malloc(a->len);
	ASSERT_NE(NULL, a->buf);
	if (seed)
		pat_fill(a->p, a->len, seed);
}

/* @n private anonymous pages (no THP), filled as area_init() does. */
static void area_new(struct __test_metadata *_metadata, struct area *a,
		     size_t n, size_t psz, unsigned int seed)
{
	area_init(_metadata, a, map_anon(n * psz, MAP_PRIVATE), n, psz, seed);
}

static void area_free(struct __test_metadata *_metadata, struct area *a)
{
	ASSERT_EQ(0, munmap(a->p, a->len));
	free(a->buf);
}

/*
 * Move pages [@first, @first + @n) of @a, which hold pattern @seed, to the
 * device: all of them move and read back from device memory intact.
 */
static void to_dev_ok(struct __test_metadata *_metadata, int fd,
		      struct area *a, size_t first, size_t n, unsigned int seed)
{
	size_t off = first * a->psz, len = n * a->psz;
	struct hmm_dummy_cmd cmd;
	long d;

	memset(a->buf, 0xa5, len);
	ASSERT_EQ(0, to_dev(fd, a->p + off, a->buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	d = pat_diff_at(a->buf, off, len, seed);
	ASSERT_EQ(-1, d) TH_LOG("read back: byte %ld differs", (long)off + d);
}

/* SNAPSHOT of pages [@first, @first + @n) of @a says @want for each. */
static void snap_is(struct __test_metadata *_metadata, int fd,
		    struct area *a, size_t first, size_t n, unsigned char want)
{
	struct hmm_dummy_cmd cmd;
	unsigned char *snap;
	long i;

	if (!n)
		return;
	snap = malloc(n);
	ASSERT_NE(NULL, snap);
	memset(snap, 0x5a, n);
	ASSERT_EQ(0, dev_snap(fd, a->p + first * a->psz, snap, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	i = prot_diff(snap, n, want);
	ASSERT_EQ(-1, i) TH_LOG("page %zu is 0x%02x, expected 0x%02x",
				first + i, snap[i], want);
	free(snap);
}

/* SNAPSHOT says @in for pages [@first, @first + @n) and @out elsewhere. */
static void snap_split(struct __test_metadata *_metadata, int fd,
		       struct area *a, size_t first, size_t n,
		       unsigned char in, unsigned char out)
{
	snap_is(_metadata, fd, a, 0, first, out);
	snap_is(_metadata, fd, a, first, n, in);
	snap_is(_metadata, fd, a, first + n, a->n - first - n, out);
}

/* The CPU reads pattern @seed in pages [@first, @first + @n) of @a. */
static void cpu_is(struct __test_metadata *_metadata, struct area *a,
		   size_t first, size_t n, unsigned int seed)
{
	size_t off = first * a->psz;
	long d = pat_diff_at(a->p + off, off, n * a->psz, seed);

	ASSERT_EQ(-1, d) TH_LOG("CPU: byte %ld differs", (long)off + d);
}

/* Offset of the first byte where @a and @b differ, or -1. */
static long mem_diff(const void *a, const void *b, size_t len)
{
	const unsigned char *x = a, *y = b;
	size_t i;

	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return i;
	return -1;
}

/*
 * All of @a (pattern @seed) to the device and back with MIGRATE_TO_SYS:
 * the device memory in use grows by the size of @a and shrinks back.
 */
static void round_trip_to_sys(struct __test_metadata *_metadata, int fd,
			      struct area *a, unsigned int seed)
{
	struct hmm_dummy_cmd cmd;
	long used = pages_used(fd);

	ASSERT_LE(0, used);
	to_dev_ok(_metadata, fd, a, 0, a->n, seed);
	ASSERT_EQ(used + (long)a->n, pages_used(fd));
	ASSERT_EQ(0, to_sys(fd, a->p, a->n, &cmd));
	ASSERT_EQ(a->n, cmd.cpages);
	ASSERT_EQ(used, wait_pages_used(fd, used));
	cpu_is(_metadata, a, 0, a->n, seed);
}

/* 1. Moving data to the device and back. */

/*
 * One page goes to the device and comes back on a CPU read fault; the
 * snapshot shows it in device memory in between and in RAM after.
 */
TEST_F(migrate, one_page_round_trip)
{
	struct area a;

	area_new(_metadata, &a, 1, self->psz, 1);
	to_dev_ok(_metadata, self->fd, &a, 0, 1, 1);
	snap_is(_metadata, self->fd, &a, 0, 1, DEV_RW);
	cpu_is(_metadata, &a, 0, 1, 1);
	snap_is(_metadata, self->fd, &a, 0, 1, SYS_RW);
	area_free(_metadata, &a);
}

/*
 * MIGRATE_TO_SYS brings every page back and frees the device memory; a
 * second one finds nothing left to move.
 */
TEST_F(migrate, to_sys_brings_pages_back)
{
	struct hmm_dummy_cmd cmd;
	struct area a;

	area_new(_metadata, &a, NPAGES, self->psz, 2);
	round_trip_to_sys(_metadata, self->fd, &a, 2);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);
	ASSERT_EQ(0, to_sys(self->fd, a.p, NPAGES, &cmd));
	ASSERT_EQ(0U, cmd.cpages);
	cpu_is(_metadata, &a, 0, NPAGES, 2);
	area_free(_metadata, &a);
}

/* Migrating the middle of a buffer leaves the pages around it alone. */
TEST_F(migrate, partial_range)
{
	struct area a;

	area_new(_metadata, &a, NPAGES, self->psz, 3);
	to_dev_ok(_metadata, self->fd, &a, 4, 8, 3);
	snap_split(_metadata, self->fd, &a, 4, 8, DEV_RW, SYS_RW);
	cpu_is(_metadata, &a, 0, NPAGES, 3);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);
	area_free(_metadata, &a);
}

/* A single page in the middle of seven, then all seven: an odd size. */
TEST_F(migrate, odd_sized_ranges)
{
	struct area a;

	area_new(_metadata, &a, 7, self->psz, 4);
	to_dev_ok(_metadata, self->fd, &a, 3, 1, 4);
	snap_split(_metadata, self->fd, &a, 3, 1, DEV_RW, SYS_RW);
	cpu_is(_metadata, &a, 0, 7, 4);

	to_dev_ok(_metadata, self->fd, &a, 0, 7, 4);
	snap_is(_metadata, self->fd, &a, 0, 7, DEV_RW);
	cpu_is(_metadata, &a, 0, 7, 4);
	area_free(_metadata, &a);
}

/* 32 MiB in one command, every byte checked both ways. */
TEST_F_TIMEOUT(migrate, large_range, 180)
{
	struct area a;

	area_new(_metadata, &a, LARGE_PAGES, self->psz, 5);
	round_trip_to_sys(_metadata, self->fd, &a, 5);
	area_free(_metadata, &a);
}

/*
 * Pages of @a that hold no data yet move: the device reads zeros, so does
 * the CPU once they are back, and CPU writes then work as usual.
 */
static void zeros_round_trip(struct __test_metadata *_metadata, int fd,
			     struct area *a, unsigned int seed)
{
	struct hmm_dummy_cmd cmd;

	memset(a->buf, 0xa5, a->len);
	ASSERT_EQ(0, to_dev(fd, a->p, a->buf, a->n, &cmd));
	ASSERT_EQ(a->n, cmd.cpages);
	ASSERT_EQ(-1, zero_diff(a->buf, a->len));
	snap_is(_metadata, fd, a, 0, a->n, DEV_RW);
	ASSERT_EQ(-1, zero_diff(a->p, a->len));

	pat_fill(a->p, a->len, seed);
	snap_is(_metadata, fd, a, 0, a->n, SYS_RW);
	cpu_is(_metadata, a, 0, a->n, seed);
	to_dev_ok(_metadata, fd, a, 0, a->n, seed);
	cpu_is(_metadata, a, 0, a->n, seed);
}

/* Never touched memory, with no page table entry at all, migrates. */
TEST_F(migrate, never_touched_pages)
{
	struct area a;

	area_new(_metadata, &a, NPAGES, self->psz, 0);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, HMM_DUMMY_PROT_NONE);
	zeros_round_trip(_metadata, self->fd, &a, 6);
	area_free(_metadata, &a);
}

/* Memory only ever read maps the zero page, which migrates too. */
TEST_F(migrate, zero_page)
{
	unsigned char sum = 0;
	struct area a;
	size_t i;

	area_new(_metadata, &a, NPAGES, self->psz, 0);
	for (i = 0; i < NPAGES; i++)
		sum |= __atomic_load_n(a.p + i * self->psz, __ATOMIC_RELAXED);
	ASSERT_EQ(0, sum);
	snap_is(_metadata, self->fd, &a, 0, NPAGES,
		HMM_DUMMY_PROT_ZERO | HMM_DUMMY_PROT_READ);
	zeros_round_trip(_metadata, self->fd, &a, 7);
	area_free(_metadata, &a);
}

/*
 * A range where half the pages are already on the device moves as a
 * whole: the read back covers both halves.
 */
TEST_F(migrate, mixed_system_and_device_pages)
{
	struct area a;

	area_new(_metadata, &a, NPAGES, self->psz, 8);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES / 2, 8);
	snap_split(_metadata, self->fd, &a, 0, NPAGES / 2, DEV_RW, SYS_RW);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 8);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, DEV_RW);
	cpu_is(_metadata, &a, 0, NPAGES, 8);
	area_free(_metadata, &a);
}

/*
 * A PMD-mapped THP filled with pattern @seed, as @a (2 MiB at a 2 MiB
 * boundary inside a 4 MiB mapping that starts at *@raw). Returns NULL,
 * with @why set, when the kernel gives no THP here.
 */
static const char *thp_area(struct __test_metadata *_metadata, int fd,
			    struct area *a, void **raw, size_t psz,
			    unsigned int seed)
{
	static char why[64];
	unsigned char snap = 0;
	void *p;

	p = map_thp_area(raw);
	if (p == MAP_FAILED || !p)
		return "MADV_HUGEPAGE refused: no THP";
	area_init(_metadata, a, p, SZ_2M / psz, psz, seed);
	if (dev_snap(fd, p, &snap, 1, NULL) || !(snap & HMM_DUMMY_PROT_PMD)) {
		snprintf(why, sizeof(why), "no THP behind the buffer (snapshot 0x%x)", snap);
		return why;
	}
	return NULL;
}

/* Unmap what thp_area() mapped at @raw and free @a's buffer. */
static void thp_area_free(struct __test_metadata *_metadata, struct area *a, void *raw)
{
	ASSERT_EQ(0, munmap(raw, 2 * SZ_2M));
	free(a->buf);
}

static int set_fail_alloc(int fd, bool on)
{
	struct hmm_dummy_cmd cmd = { .npages = on ? HMM_DUMMY_FLAG_FAIL_ALLOC : 0 };

	return ioctl(fd, HMM_DUMMY_FLAGS, &cmd) < 0 ? -errno : 0;
}

/* A THP moves whole: one device THP, then one system THP again. */
TEST_F(migrate, thp_moves_whole_both_ways)
{
	size_t n = SZ_2M / self->psz;
	long used = pages_used(self->fd);
	struct hmm_dummy_cmd cmd;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 9);
	if (why)
		SKIP(return, "%s", why);

	to_dev_ok(_metadata, self->fd, &a, 0, n, 9);
	snap_is(_metadata, self->fd, &a, 0, n, DEV_RW | HMM_DUMMY_PROT_PMD);
	ASSERT_EQ(used + (long)n, pages_used(self->fd));
	ASSERT_EQ(0, to_sys(self->fd, a.p, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n, SYS_RW | HMM_DUMMY_PROT_PMD);
	cpu_is(_metadata, &a, 0, n, 9);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	thp_area_free(_metadata, &a, raw);
}

/* A CPU read of one byte of a device THP brings the whole THP back. */
TEST_F(migrate, thp_cpu_fault_brings_thp_back_whole)
{
	size_t n = SZ_2M / self->psz;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 10);
	if (why)
		SKIP(return, "%s", why);

	to_dev_ok(_metadata, self->fd, &a, 0, n, 10);
	ASSERT_EQ(-1, pat_diff_at(a.p + (SZ_2M / 2), (SZ_2M / 2), 1, 10));
	snap_is(_metadata, self->fd, &a, 0, n, SYS_RW | HMM_DUMMY_PROT_PMD);
	cpu_is(_metadata, &a, 0, n, 10);
	thp_area_free(_metadata, &a, raw);
}

/*
 * With no device THP to be had (FAIL_ALLOC), a THP moves as base pages,
 * and the ask is spent: the next THP moves whole.
 */
TEST_F(migrate, thp_fail_alloc_to_dev_moves_base_pages)
{
	size_t n = SZ_2M / self->psz;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 11);
	if (why)
		SKIP(return, "%s", why);

	ASSERT_EQ(0, set_fail_alloc(self->fd, true));
	to_dev_ok(_metadata, self->fd, &a, 0, n, 11);
	snap_is(_metadata, self->fd, &a, 0, n, DEV_RW);
	cpu_is(_metadata, &a, 0, n, 11);
	thp_area_free(_metadata, &a, raw);

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 12);
	if (why)
		SKIP(return, "%s", why);
	to_dev_ok(_metadata, self->fd, &a, 0, n, 12);
	snap_is(_metadata, self->fd, &a, 0, n, DEV_RW | HMM_DUMMY_PROT_PMD);
	cpu_is(_metadata, &a, 0, n, 12);
	thp_area_free(_metadata, &a, raw);
}

/* With no system THP to be had, a device THP comes back as base pages. */
TEST_F(migrate, thp_fail_alloc_to_sys_moves_base_pages)
{
	size_t n = SZ_2M / self->psz;
	long used = pages_used(self->fd);
	struct hmm_dummy_cmd cmd;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 13);
	if (why)
		SKIP(return, "%s", why);

	to_dev_ok(_metadata, self->fd, &a, 0, n, 13);
	snap_is(_metadata, self->fd, &a, 0, n, DEV_RW | HMM_DUMMY_PROT_PMD);
	ASSERT_EQ(0, set_fail_alloc(self->fd, true));
	ASSERT_EQ(0, to_sys(self->fd, a.p, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n, SYS_RW);
	cpu_is(_metadata, &a, 0, n, 13);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	thp_area_free(_metadata, &a, raw);
}

/*
 * Half of a device THP unmapped: the base splits its mapping; the CPU
 * reads the other half back (splitting the folio at the faulting page),
 * and once all is gone the device memory is free again.
 */
TEST_F(migrate, thp_partial_munmap_of_device_thp)
{
	size_t n = SZ_2M / self->psz;
	long used = pages_used(self->fd);
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 14);
	if (why)
		SKIP(return, "%s", why);

	to_dev_ok(_metadata, self->fd, &a, 0, n, 14);
	ASSERT_EQ(0, munmap(a.p + (SZ_2M / 2), (SZ_2M / 2)));
	snap_is(_metadata, self->fd, &a, 0, n / 2, DEV_RW);
	cpu_is(_metadata, &a, 0, n / 2, 14);
	snap_is(_metadata, self->fd, &a, 0, n / 2, SYS_RW);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	thp_area_free(_metadata, &a, raw);
}

/*
 * Half of a device THP made read-only: the base splits its mapping; a
 * move back of the whole range brings every page back, the folio split
 * page by page.
 */
TEST_F(migrate, thp_mprotect_half_then_to_sys)
{
	size_t n = SZ_2M / self->psz;
	long used = pages_used(self->fd);
	struct hmm_dummy_cmd cmd;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 15);
	if (why)
		SKIP(return, "%s", why);

	to_dev_ok(_metadata, self->fd, &a, 0, n, 15);
	ASSERT_EQ(0, mprotect(a.p, (SZ_2M / 2), PROT_READ));
	snap_is(_metadata, self->fd, &a, 0, n / 2, DEV_RO);
	snap_is(_metadata, self->fd, &a, n / 2, n / 2, DEV_RW);
	ASSERT_EQ(0, to_sys(self->fd, a.p, n / 2, &cmd));
	ASSERT_EQ(n / 2, cmd.cpages);
	ASSERT_EQ(0, to_sys(self->fd, a.p + (SZ_2M / 2), n / 2, &cmd));
	ASSERT_EQ(n / 2, cmd.cpages);
	cpu_is(_metadata, &a, 0, n, 15);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	thp_area_free(_metadata, &a, raw);
}

/*
 * RELEASE of a device THP: whole behind its PMD, and after a partial
 * munmap split its mapping (eviction then splits the folio): every page
 * mapped comes back intact, the device memory is free again.
 */
TEST_F(migrate, thp_release_whole_and_partly_unmapped)
{
	size_t n = SZ_2M / self->psz;
	long used = pages_used(self->fd);
	struct hmm_dummy_cmd cmd;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 16);
	if (why)
		SKIP(return, "%s", why);
	to_dev_ok(_metadata, self->fd, &a, 0, n, 16);
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_RELEASE, 0, NULL, 0, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n, SYS_RW | HMM_DUMMY_PROT_PMD);
	cpu_is(_metadata, &a, 0, n, 16);

	to_dev_ok(_metadata, self->fd, &a, 0, n, 16);
	ASSERT_EQ(0, munmap(a.p + SZ_2M / 2, SZ_2M / 2));
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_RELEASE, 0, NULL, 0, &cmd));
	ASSERT_EQ(n / 2, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n / 2, SYS_RW);
	cpu_is(_metadata, &a, 0, n / 2, 16);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	thp_area_free(_metadata, &a, raw);
}

/*
 * RELEASE with no system THP to be had (FAIL_ALLOC): the device THP comes
 * back as 512 base pages, not left on the device for a later try.
 */
TEST_F(migrate, thp_release_without_system_thp_moves_base_pages)
{
	size_t n = SZ_2M / self->psz;
	long used = pages_used(self->fd);
	struct hmm_dummy_cmd cmd;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 18);
	if (why)
		SKIP(return, "%s", why);
	to_dev_ok(_metadata, self->fd, &a, 0, n, 18);
	snap_is(_metadata, self->fd, &a, 0, n, DEV_RW | HMM_DUMMY_PROT_PMD);
	ASSERT_EQ(0, set_fail_alloc(self->fd, true));
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_RELEASE, 0, NULL, 0, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n, SYS_RW);
	cpu_is(_metadata, &a, 0, n, 18);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	thp_area_free(_metadata, &a, raw);
}

/*
 * MIGRATE_TO_DEV of half a THP: the THP is split, that half moves as base
 * pages and the other half stays in RAM, no longer behind a PMD.
 */
TEST_F(migrate, thp_half_range_splits_it)
{
	size_t n = SZ_2M / self->psz;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 25);
	if (why)
		SKIP(return, "%s", why);
	to_dev_ok(_metadata, self->fd, &a, n / 4, n / 2, 25);
	snap_split(_metadata, self->fd, &a, n / 4, n / 2, DEV_RW, SYS_RW);
	cpu_is(_metadata, &a, 0, n, 25);
	thp_area_free(_metadata, &a, raw);
}

/* Advised against THPs while on the device, a THP comes back as base pages. */
TEST_F(migrate, thp_nohugepage_comes_back_as_base_pages)
{
	size_t n = SZ_2M / self->psz;
	struct hmm_dummy_cmd cmd;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 17);
	if (why)
		SKIP(return, "%s", why);
	to_dev_ok(_metadata, self->fd, &a, 0, n, 17);
	ASSERT_EQ(0, madvise(a.p, SZ_2M, MADV_NOHUGEPAGE));
	ASSERT_EQ(0, to_sys(self->fd, a.p, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n, SYS_RW);
	cpu_is(_metadata, &a, 0, n, 17);
	thp_area_free(_metadata, &a, raw);
}

/* 2. CPU access to device pages. */

/* CPU reads of device pages bring them back and free the device memory. */
TEST_F(migrate, cpu_read_fault)
{
	struct area a;
	long used;

	area_new(_metadata, &a, NPAGES, self->psz, 10);
	used = pages_used(self->fd);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 10);
	ASSERT_EQ(used + (long)NPAGES, pages_used(self->fd));
	cpu_is(_metadata, &a, 0, NPAGES, 10);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	area_free(_metadata, &a);
}

/*
 * A CPU write to a device page brings the whole page back first: the
 * bytes not written keep the data that was on the device.
 */
TEST_F(migrate, cpu_write_fault)
{
	size_t psz = self->psz, head = 64, i;
	struct hmm_dummy_cmd cmd;
	unsigned char *want;
	struct area a;

	area_new(_metadata, &a, NPAGES, psz, 11);
	want = malloc(a.len);
	ASSERT_NE(NULL, want);
	pat_fill(want, a.len, 11);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 11);

	for (i = 0; i < NPAGES; i++) {
		pat_fill_at(a.p + i * psz, i * psz, head, 12);
		pat_fill_at(want + i * psz, i * psz, head, 12);
	}
	ASSERT_EQ(-1, mem_diff(a.p, want, a.len));
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);
	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(0, dev_read(self->fd, a.p, a.buf, NPAGES, &cmd));
	ASSERT_EQ(NPAGES, cmd.cpages);
	ASSERT_EQ(-1, mem_diff(a.buf, want, a.len));
	free(want);
	area_free(_metadata, &a);
}

/*
 * Threads sharing device pages. Each thread owns one slice of every page:
 * round after round it checks that its slices hold what it wrote last,
 * then writes the next round's pattern, while the main thread keeps
 * moving the pages back to the device. A write lost or misplaced by a
 * migration shows up as a slice that is not what its owner wrote.
 */
struct crowd {
	unsigned char *p;
	size_t psz;
	size_t slice;
	unsigned int seed;
	pthread_barrier_t start;
	atomic_int finished;
	atomic_ulong bad;
};

struct crowd_member {
	struct crowd *c;
	unsigned int id;
	pthread_t th;
};

static unsigned int crowd_seed(const struct crowd *c, unsigned int id,
			       unsigned int round)
{
	return round ? c->seed + 100 * (id + 1) + round : c->seed;
}

static void *crowd_worker(void *arg)
{
	struct crowd_member *m = arg;
	struct crowd *c = m->c;
	unsigned int round;
	size_t pg, off;

	pthread_barrier_wait(&c->start);
	for (round = 1; round <= THREAD_ROUNDS; round++) {
		for (pg = 0; pg < NPAGES; pg++) {
			off = pg * c->psz + m->id * c->slice;
			if (pat_diff_at(c->p + off, off, c->slice,
					crowd_seed(c, m->id, round - 1)) != -1)
				atomic_fetch_add(&c->bad, 1);
			pat_fill_at(c->p + off, off, c->slice,
				    crowd_seed(c, m->id, round));
		}
	}
	atomic_fetch_add(&c->finished, 1);
	return NULL;
}

/* The image of the pages once every thread is done. */
static void crowd_final(const struct crowd *c, unsigned char *img)
{
	unsigned int id;
	size_t pg, off;

	for (pg = 0; pg < NPAGES; pg++) {
		for (id = 0; id < NTHREADS; id++) {
			off = pg * c->psz + id * c->slice;
			pat_fill_at(img + off, off, c->slice,
				    crowd_seed(c, id, THREAD_ROUNDS));
		}
	}
}

TEST_F_TIMEOUT(migrate, threads_share_device_pages, 120)
{
	struct crowd_member m[NTHREADS];
	struct crowd c = { .psz = self->psz, .seed = 13 };
	unsigned long moves = 0, short_moves = 0;
	struct hmm_dummy_cmd cmd;
	unsigned char *img;
	struct area a;
	int i, ret;

	area_new(_metadata, &a, NPAGES, self->psz, c.seed);
	img = malloc(a.len);
	ASSERT_NE(NULL, img);
	c.p = a.p;
	c.slice = self->psz / NTHREADS;
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, c.seed);

	ASSERT_EQ(0, pthread_barrier_init(&c.start, NULL, NTHREADS + 1));
	for (i = 0; i < NTHREADS; i++) {
		m[i].c = &c;
		m[i].id = i;
		ASSERT_EQ(0, pthread_create(&m[i].th, NULL, crowd_worker, &m[i]));
	}
	pthread_barrier_wait(&c.start);
	/* The pages the threads fault back go to the device again. */
	while (atomic_load(&c.finished) < NTHREADS && moves < MAX_RACE_MIGRATIONS) {
		/*
		 * A page a thread faulted back meanwhile ends the read back
		 * early (ENOENT), or keeps its walk busy (EBUSY).
		 */
		ret = to_dev(self->fd, a.p, a.buf, NPAGES, &cmd);
		ASSERT_TRUE(!ret || ret == -ENOENT || ret == -EBUSY)
			TH_LOG("migrate: %d", ret);
		moves++;
		short_moves += ret != 0;
	}
	for (i = 0; i < NTHREADS; i++)
		ASSERT_EQ(0, pthread_join(m[i].th, NULL));
	TH_LOG("%lu migrations, %lu cut short by CPU faults", moves, short_moves);
	ASSERT_EQ(0U, atomic_load(&c.bad));

	crowd_final(&c, img);
	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(0, to_dev(self->fd, a.p, a.buf, NPAGES, &cmd));
	ASSERT_EQ(NPAGES, cmd.cpages);
	ASSERT_EQ(-1, mem_diff(a.buf, img, a.len));
	ASSERT_EQ(-1, mem_diff(a.p, img, a.len));
	pthread_barrier_destroy(&c.start);
	free(img);
	area_free(_metadata, &a);
}

/* 3. Changes to the mappings of device pages. */

/*
 * Child of fork_cow: wait for the parent's word, check the data is still
 * the one from before the fork, write its own. 0 or the failed step.
 */
static int cow_child(unsigned char *p, size_t len, unsigned int seed, int rd)
{
	char b;

	if (read(rd, &b, 1) != 1)
		return 1;
	if (pat_diff(p, len, seed) != -1)
		return 2;
	pat_fill(p, len, seed + 2);
	if (pat_diff(p, len, seed + 2) != -1)
		return 3;
	return 0;
}

/*
 * fork() with pages on the device write-protects them in both processes;
 * then the parent and the child each write their own data (copy on
 * write) and neither sees the other's.
 */
TEST_F(migrate, fork_cow)
{
	struct area a;
	int go[2];
	pid_t pid;

	area_new(_metadata, &a, NPAGES, self->psz, 14);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 14);
	ASSERT_EQ(0, pipe(go));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(go[1]);
		_exit(cow_child(a.p, a.len, 14, go[0]));
	}
	close(go[0]);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, DEV_RO);

	pat_fill(a.p, a.len, 15);
	cpu_is(_metadata, &a, 0, NPAGES, 15);
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(0, wait_child(pid));
	close(go[1]);

	cpu_is(_metadata, &a, 0, NPAGES, 15);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 15);
	cpu_is(_metadata, &a, 0, NPAGES, 15);
	area_free(_metadata, &a);
}

/*
 * RELEASE of a device THP a child shares after fork, whole and then with
 * no system THP to be had: both processes map it again, read-only, and
 * read their data; then each writes its own copy.
 */
TEST_F(migrate, thp_release_shared_with_child)
{
	size_t n = SZ_2M / self->psz;
	long used = pages_used(self->fd);
	static const unsigned char back[2] = { HMM_DUMMY_PROT_READ | HMM_DUMMY_PROT_PMD,
					       HMM_DUMMY_PROT_READ };
	struct hmm_dummy_cmd cmd;
	unsigned int round, seed;
	const char *why;
	struct area a;
	int go[2];
	pid_t pid;
	void *raw;

	for (round = 0; round < 2; round++) {
		seed = 19 + 3 * round;
		why = thp_area(_metadata, self->fd, &a, &raw, self->psz, seed);
		if (why)
			SKIP(return, "%s", why);
		to_dev_ok(_metadata, self->fd, &a, 0, n, seed);
		ASSERT_EQ(0, pipe(go));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			close(go[1]);
			_exit(cow_child(a.p, a.len, seed, go[0]));
		}
		close(go[0]);
		snap_is(_metadata, self->fd, &a, 0, n, DEV_RO | HMM_DUMMY_PROT_PMD);
		ASSERT_EQ(0, set_fail_alloc(self->fd, round));
		ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_RELEASE, 0, NULL, 0, &cmd));
		ASSERT_EQ(n, cmd.cpages);
		snap_is(_metadata, self->fd, &a, 0, n, back[round]);
		ASSERT_EQ(1, write(go[1], "g", 1));
		ASSERT_EQ(0, wait_child(pid));
		close(go[1]);
		cpu_is(_metadata, &a, 0, n, seed);
		pat_fill(a.p, a.len, seed + 1);
		cpu_is(_metadata, &a, 0, n, seed + 1);
		ASSERT_EQ(used, wait_pages_used(self->fd, used));
		ASSERT_EQ(0, munmap(raw, 2 * SZ_2M));
		free(a.buf);
	}
}

/* munmap of device pages gives their device memory back, part by part. */
TEST_F(migrate, munmap_frees_device_memory)
{
	size_t half = NPAGES / 2 * self->psz;
	struct area a;
	long used;

	area_new(_metadata, &a, NPAGES, self->psz, 16);
	used = pages_used(self->fd);
	ASSERT_LE(0, used);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 16);
	ASSERT_EQ(used + (long)NPAGES, pages_used(self->fd));

	ASSERT_EQ(0, munmap(a.p, half));
	ASSERT_EQ(used + (long)NPAGES / 2,
		  wait_pages_used(self->fd, used + NPAGES / 2));
	ASSERT_EQ(0, munmap(a.p + half, half));
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	free(a.buf);
}

/*
 * mremap moves device pages with the mapping, without migrating them:
 * they are still on the device at the new address, with their data.
 */
TEST_F(migrate, mremap_keeps_device_data)
{
	struct area a;
	long used;
	void *dst, *q;

	area_new(_metadata, &a, NPAGES, self->psz, 17);
	dst = mmap(NULL, a.len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 17);
	used = pages_used(self->fd);

	q = mremap(a.p, a.len, a.len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, q);
	a.p = q;
	ASSERT_EQ(used, pages_used(self->fd));
	snap_is(_metadata, self->fd, &a, 0, NPAGES, DEV_RW);
	cpu_is(_metadata, &a, 0, NPAGES, 17);
	area_free(_metadata, &a);
}

/*
 * mprotect(PROT_READ) over device pages makes them read-only where they
 * are: the device can read them but not write them, the CPU reads them.
 */
TEST_F(migrate, mprotect_readonly_device_pages)
{
	struct hmm_dummy_cmd cmd;
	struct area a;

	area_new(_metadata, &a, NPAGES, self->psz, 18);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 18);
	ASSERT_EQ(0, mprotect(a.p, a.len, PROT_READ));
	snap_is(_metadata, self->fd, &a, 0, NPAGES, DEV_RO);

	pat_fill(a.buf, a.len, 19);
	ASSERT_EQ(-EPERM, dev_write(self->fd, a.p, a.buf, NPAGES, &cmd));
	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(0, dev_read(self->fd, a.p, a.buf, NPAGES, &cmd));
	ASSERT_EQ(NPAGES, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(a.buf, a.len, 18));
	cpu_is(_metadata, &a, 0, NPAGES, 18);
	area_free(_metadata, &a);
}

/*
 * In a child: open device @dev, move @n pages of pattern @seed to it
 * (mapping in *@pp, file in *@fdp), tell the parent through @up and wait
 * for its word on @down. Returns 0 or the number of the failed step.
 */
static int child_migrate(int dev, size_t psz, size_t n, unsigned int seed,
			 int up, int down, unsigned char **pp, int *fdp)
{
	size_t len = n * psz;
	unsigned char *buf = malloc(len);
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	struct hmm_dummy_cmd cmd;
	char b;

	*pp = p;
	*fdp = dummy_open(dev);
	if (!buf || p == MAP_FAILED || *fdp < 0)
		return 1;
	pat_fill(p, len, seed);
	if (to_dev(*fdp, p, buf, n, &cmd) || cmd.cpages != n)
		return 2;
	if (pat_diff(buf, len, seed) != -1)
		return 3;
	if (write(up, "m", 1) != 1 || read(down, &b, 1) != 1)
		return 4;
	free(buf);
	return 0;
}

/*
 * fork() with a pipe from the child (@up) and one to it (@down), each
 * process keeping its ends only. Returns what fork() does, or -1.
 */
static pid_t fork_with_pipes(int up[2], int down[2])
{
	pid_t pid;

	if (pipe(up) || pipe(down))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
	} else if (pid > 0) {
		close(up[1]);
		close(down[0]);
	}
	return pid;
}

/*
 * A process that exits with pages on the device, without unmapping them
 * or closing its file, leaves no device memory in use.
 */
TEST_F(migrate, exit_frees_device_memory)
{
	int up[2], down[2], cfd;
	unsigned char *cp;
	long used;
	pid_t pid;
	char b;

	used = pages_used(self->fd);
	ASSERT_LE(0, used);
	pid = fork_with_pipes(up, down);
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(child_migrate(variant->dev, self->psz, EXIT_PAGES, 20,
				    up[1], down[0], &cp, &cfd));

	ASSERT_EQ(1, read(up[0], &b, 1));
	ASSERT_EQ(used + (long)EXIT_PAGES, pages_used(self->fd));
	ASSERT_EQ(1, write(down[1], "x", 1));
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	close(up[0]);
	close(down[1]);
}

/* 4. Pages that cannot move, and migrations made to fail. */

static int gup_test_open(void)
{
	int fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT &&
	    !mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL))
		fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	return fd;
}

/*
 * process_vm_readv() and process_vm_writev() reach device pages through
 * GUP, which faults them back to RAM: they read what was written, and
 * what they write is what the CPU reads afterwards.
 */
TEST_F(migrate, process_vm_rw_of_device_pages)
{
	struct iovec local, remote;
	struct area a;
	ssize_t got;

	area_new(_metadata, &a, NPAGES, self->psz, 28);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 28);
	local = (struct iovec){ .iov_base = a.buf, .iov_len = a.len };
	remote = (struct iovec){ .iov_base = a.p, .iov_len = a.len };
	memset(a.buf, 0xa5, a.len);
	got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	ASSERT_EQ((ssize_t)a.len, got) TH_LOG("process_vm_readv: %s (CONFIG_CROSS_MEMORY_ATTACH?)",
					      strerror(errno));
	ASSERT_EQ(-1, pat_diff(a.buf, a.len, 28));
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);

	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 28);
	pat_fill(a.buf, a.len, 29);
	ASSERT_EQ((ssize_t)a.len, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);
	cpu_is(_metadata, &a, 0, NPAGES, 29);
	area_free(_metadata, &a);
}

/*
 * A long-term pinned page cannot move: it stays in RAM, still the very
 * page the CPU maps, while the pages before it go to the device; the
 * read back stops at it. Unpinned, it moves like any other.
 */
TEST_F(migrate, pinned_page_stays)
{
	struct pin_longterm_test pin = {
		.size = self->psz,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
	};
	size_t psz = self->psz;
	struct hmm_dummy_cmd cmd;
	unsigned char *last;
	struct area a;
	__u64 out;
	int gfd;

	gfd = gup_test_open();
	if (gfd < 0)
		SKIP(return, "no %s (CONFIG_GUP_TEST, debugfs)", GUP_TEST_PATH);
	area_new(_metadata, &a, 4, psz, 21);
	last = a.p + 3 * psz;
	pin.addr = (uintptr_t)last;
	ASSERT_EQ(0, ioctl(gfd, PIN_LONGTERM_TEST_START, &pin));

	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(-ENOENT, to_dev(self->fd, a.p, a.buf, 4, &cmd));
	ASSERT_EQ(3U, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(a.buf, 3 * psz, 21));
	snap_split(_metadata, self->fd, &a, 0, 3, DEV_RW, SYS_RW);
	cpu_is(_metadata, &a, 0, 4, 21);

	/* What the CPU writes there is what the pin holds. */
	pat_fill(last, psz, 22);
	out = (uintptr_t)a.buf;
	ASSERT_EQ(0, ioctl(gfd, PIN_LONGTERM_TEST_READ, &out));
	ASSERT_EQ(-1, pat_diff(a.buf, psz, 22));

	ASSERT_EQ(0, ioctl(gfd, PIN_LONGTERM_TEST_STOP));
	memset(a.buf, 0xa5, psz);
	ASSERT_EQ(0, to_dev(self->fd, last, a.buf, 1, &cmd));
	ASSERT_EQ(1U, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(a.buf, psz, 22));
	snap_is(_metadata, self->fd, &a, 3, 1, DEV_RW);
	ASSERT_EQ(-1, pat_diff(last, psz, 22));
	close(gfd);
	area_free(_metadata, &a);
}

/*
 * A THP with one page long-term pinned: whether it stays whole or splits,
 * the result says what moved (the read back ends with -ENOENT at the
 * first page SNAPSHOT does not find on the device), the pinned page stays
 * the very page the CPU maps, and no byte changes.
 */
TEST_F(migrate, thp_with_pinned_page)
{
	struct pin_longterm_test pin = {
		.size = self->psz,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
	};
	size_t psz = self->psz, n = SZ_2M / psz, i;
	struct hmm_dummy_cmd cmd;
	unsigned char *snap;
	const char *why;
	struct area a;
	int gfd;
	__u64 out;
	void *raw;

	gfd = gup_test_open();
	if (gfd < 0)
		SKIP(return, "no %s (CONFIG_GUP_TEST, debugfs)", GUP_TEST_PATH);
	why = thp_area(_metadata, self->fd, &a, &raw, psz, 26);
	if (why)
		SKIP(return, "%s", why);
	pin.addr = (uintptr_t)(a.p + n / 2 * psz);
	ASSERT_EQ(0, ioctl(gfd, PIN_LONGTERM_TEST_START, &pin));

	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(-ENOENT, to_dev(self->fd, a.p, a.buf, n, &cmd));
	ASSERT_GE(n / 2, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(a.buf, cmd.cpages * psz, 26));
	snap = malloc(n);
	ASSERT_NE(NULL, snap);
	ASSERT_EQ(0, dev_snap(self->fd, a.p, snap, n, NULL));
	for (i = 0; i < n && (snap[i] & HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL); i++)
		;
	ASSERT_EQ(cmd.cpages, i) TH_LOG("read back %llu pages, the first %zu are on the device",
					cmd.cpages, i);
	ASSERT_EQ(0, snap[n / 2] & HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL);
	free(snap);
	cpu_is(_metadata, &a, 0, n, 26);

	pat_fill(a.p + n / 2 * psz, psz, 27);
	out = (uintptr_t)a.buf;
	ASSERT_EQ(0, ioctl(gfd, PIN_LONGTERM_TEST_READ, &out));
	ASSERT_EQ(-1, pat_diff(a.buf, psz, 27));
	ASSERT_EQ(0, ioctl(gfd, PIN_LONGTERM_TEST_STOP));
	close(gfd);
	thp_area_free(_metadata, &a, raw);
}

/*
 * A device with F pages free takes the first F pages of a THP range that
 * ends at least 37 pages further, in one command: MIGRATE_TO_DEV stops
 * with ENOENT where the memory ran out and reads back what moved; the
 * rest stays in RAM, and every page comes back intact, to RAM and to the
 * free lists. THPs take the free 2 MiB blocks whole and the last ones go
 * as base pages, so no block is broken up for later tests.
 */
TEST_F(migrate, full_device_takes_what_fits)
{
	size_t psz = self->psz, huge = SZ_2M / psz, nr_free, n;
	long used = pages_used(self->fd);
	struct hmm_dummy_info info;
	struct hmm_dummy_cmd cmd;
	struct area a;
	void *raw, *p;

	memset(&info, 0xa5, sizeof(info));
	ASSERT_EQ(0, ioctl(self->fd, HMM_DUMMY_INFO, &info));
	nr_free = info.pages_free;
	if (nr_free > (256UL << 20) / psz)
		SKIP(return, "more than 256 MiB of device memory free");
	n = (nr_free + 37 + huge - 1) / huge * huge;
	raw = map_anon(n * psz + SZ_2M, MAP_PRIVATE);
	ASSERT_NE(MAP_FAILED, raw);
	p = (void *)(((uintptr_t)raw + SZ_2M - 1) & ~(uintptr_t)(SZ_2M - 1));
	ASSERT_EQ(0, madvise(p, n * psz, MADV_HUGEPAGE));
	area_init(_metadata, &a, p, n, psz, 41);

	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(-ENOENT, to_dev(self->fd, a.p, a.buf, n, &cmd));
	ASSERT_EQ(nr_free, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(a.buf, nr_free * psz, 41));
	ASSERT_EQ(used + (long)nr_free, pages_used(self->fd));
	ASSERT_EQ(0, to_sys(self->fd, a.p, n, &cmd));
	ASSERT_EQ(nr_free, cmd.cpages);
	cpu_is(_metadata, &a, 0, n, 41);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	ASSERT_EQ(0, munmap(raw, n * psz + SZ_2M));
	free(a.buf);
}

/*
 * Base pages that break up every free 2 MiB block of the device (all
 * free pages but 511 taken), once freed, merge back into blocks: a THP
 * then moves whole. Without the merge it would move as base pages.
 */
TEST_F(migrate, thp_whole_after_base_pages_broke_every_block)
{
	size_t psz = self->psz, huge = SZ_2M / psz, n;
	long used = pages_used(self->fd);
	struct hmm_dummy_info info;
	struct area base, a;
	const char *why;
	void *raw;

	ASSERT_EQ(0, get_info(self->fd, &info));
	if (info.pages_free > (256UL << 20) / psz)
		SKIP(return, "more than 256 MiB of device memory free");
	if (info.pages_free < huge)
		SKIP(return, "less than 2 MiB of device memory free");
	n = info.pages_free - (huge - 1);
	/* Base pages even in a THP variant: device THPs would free whole blocks. */
	map_anon_allow_thp(false);
	area_new(_metadata, &base, n, psz, 43);
	map_anon_allow_thp(variant->thp);
	to_dev_ok(_metadata, self->fd, &base, 0, n, 43);
	snap_is(_metadata, self->fd, &base, 0, n, DEV_RW);
	ASSERT_EQ(0, get_info(self->fd, &info));
	ASSERT_EQ(huge - 1, info.pages_free);
	area_free(_metadata, &base);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));

	why = thp_area(_metadata, self->fd, &a, &raw, psz, 44);
	if (why)
		SKIP(return, "%s", why);
	to_dev_ok(_metadata, self->fd, &a, 0, huge, 44);
	snap_is(_metadata, self->fd, &a, 0, huge, DEV_RW | HMM_DUMMY_PROT_PMD);
	cpu_is(_metadata, &a, 0, huge, 44);
	thp_area_free(_metadata, &a, raw);
}

/*
 * With no device page to be had for pages 3 and 4 of 8, those two stay
 * in RAM and the others move; the read back stops at page 3. Cleared,
 * the injection no longer holds anything back.
 */
TEST_F(migrate, inject_alloc_fail_to_dev)
{
	size_t psz = self->psz;
	struct hmm_dummy_cmd cmd;
	struct area a;

	area_new(_metadata, &a, 8, psz, 23);
	ASSERT_EQ(0, inject_on(&self->inj, a.p + 3 * psz, 2, HMM_DUMMY_INJECT_ALLOC_FAIL));
	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(-ENOENT, to_dev(self->fd, a.p, a.buf, 8, &cmd));
	ASSERT_EQ(3U, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(a.buf, 3 * psz, 23));
	snap_split(_metadata, self->fd, &a, 3, 2, SYS_RW, DEV_RW);

	ASSERT_EQ(0, inject_on(&self->inj, a.p + 3 * psz, 2, HMM_DUMMY_INJECT_NONE));
	cpu_is(_metadata, &a, 0, 8, 23);
	to_dev_ok(_metadata, self->fd, &a, 0, 8, 23);
	cpu_is(_metadata, &a, 0, 8, 23);
	area_free(_metadata, &a);
}

/*
 * The same on the way back: pages 3 and 4 find no system page and stay
 * on the device, the six others come back; all the data is intact.
 */
TEST_F(migrate, inject_alloc_fail_to_sys)
{
	size_t psz = self->psz;
	struct hmm_dummy_cmd cmd;
	struct area a;

	area_new(_metadata, &a, 8, psz, 24);
	to_dev_ok(_metadata, self->fd, &a, 0, 8, 24);
	ASSERT_EQ(0, inject_on(&self->inj, a.p + 3 * psz, 2, HMM_DUMMY_INJECT_ALLOC_FAIL));
	ASSERT_EQ(0, to_sys(self->fd, a.p, 8, &cmd));
	ASSERT_EQ(6U, cmd.cpages);
	snap_split(_metadata, self->fd, &a, 3, 2, DEV_RW, SYS_RW);

	ASSERT_EQ(0, inject_on(&self->inj, a.p + 3 * psz, 2, HMM_DUMMY_INJECT_NONE));
	ASSERT_EQ(0, to_sys(self->fd, a.p, 8, &cmd));
	ASSERT_EQ(2U, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, 8, SYS_RW);
	cpu_is(_metadata, &a, 0, 8, 24);
	area_free(_metadata, &a);
}

static sigjmp_buf sigbus_jmp;
static unsigned char sigbus_sink;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Whether a CPU read of the byte at @addr raises SIGBUS. */
static bool read_raises_sigbus(unsigned char *addr)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	bool hit = true;

	if (sigaction(SIGBUS, &sa, &old))
		return false;
	if (!sigsetjmp(sigbus_jmp, 1)) {
		sigbus_sink = __atomic_load_n(addr, __ATOMIC_RELAXED);
		hit = false;
	}
	sigaction(SIGBUS, &old, NULL);
	return hit;
}

/*
 * Page 2 of the four of @a is lost: reading it raises SIGBUS, while the
 * three others hold pattern @seed. Then clear the injection.
 */
static void page2_lost(struct __test_metadata *_metadata,
		       struct injection *inj, struct area *a,
		       unsigned int seed)
{
	unsigned char *lost = a->p + 2 * a->psz;

	ASSERT_TRUE(read_raises_sigbus(lost));
	cpu_is(_metadata, a, 0, 2, seed);
	cpu_is(_metadata, a, 3, 1, seed);
	ASSERT_EQ(0, inject_on(inj, lost, 1, HMM_DUMMY_INJECT_NONE));
}

/*
 * A CPU fault on a device page the driver answers MIGRATE_PFN_ERROR for
 * raises SIGBUS; the pages around it come back intact.
 */
TEST_F(migrate, inject_pfn_error_cpu_fault)
{
	size_t psz = self->psz;
	struct area a;

	area_new(_metadata, &a, 4, psz, 25);
	to_dev_ok(_metadata, self->fd, &a, 0, 4, 25);
	ASSERT_EQ(0, inject_on(&self->inj, a.p + 2 * psz, 1, HMM_DUMMY_INJECT_PFN_ERROR));
	page2_lost(_metadata, &self->inj, &a, 25);
	area_free(_metadata, &a);
}

/*
 * MIGRATE_TO_SYS with MIGRATE_PFN_ERROR for one page of four: three come
 * back, the fourth is lost (its device memory freed) and reading it
 * raises SIGBUS.
 */
TEST_F(migrate, inject_pfn_error_to_sys)
{
	size_t psz = self->psz;
	struct hmm_dummy_cmd cmd;
	struct area a;
	long used;

	area_new(_metadata, &a, 4, psz, 26);
	used = pages_used(self->fd);
	to_dev_ok(_metadata, self->fd, &a, 0, 4, 26);
	ASSERT_EQ(0, inject_on(&self->inj, a.p + 2 * psz, 1, HMM_DUMMY_INJECT_PFN_ERROR));
	ASSERT_EQ(0, to_sys(self->fd, a.p, 4, &cmd));
	ASSERT_EQ(3U, cmd.cpages);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	snap_is(_metadata, self->fd, &a, 0, 2, SYS_RW);
	snap_is(_metadata, self->fd, &a, 3, 1, SYS_RW);
	page2_lost(_metadata, &self->inj, &a, 26);
	area_free(_metadata, &a);
}

/* 5. Copy modes and RELEASE. */

/* The PFN /proc/self/pagemap gives for @addr, 0 if it does not tell. */
static uint64_t pfn_of(void *addr, size_t psz)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t off = (uintptr_t)addr / psz * sizeof(uint64_t);
	uint64_t ent = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent), off) != sizeof(ent))
		ent = 0;
	close(fd);
	return ent >> PAGEMAP_PRESENT_SHIFT ? ent & PAGEMAP_PFN_MASK : 0;
}

/*
 * In CORE copy mode the device works from system memory: the pages move
 * to other system pages, the core copies them, no device memory is used.
 * Back in DRIVER mode, device memory is used again.
 */
TEST_F(migrate, copy_mode_core)
{
	uint64_t before[NPAGES], after;
	struct area a;
	long used;
	size_t i;

	area_new(_metadata, &a, NPAGES, self->psz, 27);
	for (i = 0; i < NPAGES; i++)
		before[i] = pfn_of(a.p + i * self->psz, self->psz);
	used = pages_used(self->fd);

	ASSERT_EQ(0, set_copy_mode(self->fd, HMM_DUMMY_COPY_CORE));
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 27);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);
	ASSERT_EQ(used, pages_used(self->fd));
	for (i = 0; i < NPAGES; i++) {
		after = pfn_of(a.p + i * self->psz, self->psz);
		/* Only root sees PFNs: compare when both are known. */
		if (before[i] && after)
			ASSERT_NE(before[i], after) TH_LOG("page %zu did not move", i);
	}
	cpu_is(_metadata, &a, 0, NPAGES, 27);

	ASSERT_EQ(0, set_copy_mode(self->fd, HMM_DUMMY_COPY_DRIVER));
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 27);
	snap_is(_metadata, self->fd, &a, 0, NPAGES, DEV_RW);
	ASSERT_EQ(used + (long)NPAGES, pages_used(self->fd));
	cpu_is(_metadata, &a, 0, NPAGES, 27);
	area_free(_metadata, &a);
}

/* A copy mode that does not exist is refused and changes nothing. */
TEST_F(migrate, copy_mode_invalid)
{
	struct area a;

	ASSERT_EQ(-EINVAL, set_copy_mode(self->fd, 2));
	ASSERT_EQ(-EINVAL, set_copy_mode(self->fd, ~0U));
	area_new(_metadata, &a, 4, self->psz, 28);
	to_dev_ok(_metadata, self->fd, &a, 0, 4, 28);
	snap_is(_metadata, self->fd, &a, 0, 4, DEV_RW);
	cpu_is(_metadata, &a, 0, 4, 28);
	area_free(_metadata, &a);
}

static int phase_times(int fd, struct hmm_dummy_phase_times *t)
{
	memset(t, 0x5a, sizeof(*t));
	return ioctl(fd, HMM_DUMMY_PHASE_TIMES, t) < 0 ? -errno : 0;
}

/*
 * The migrate_vma() calls a move of [@p, @p + @len) makes: hmm_dummy
 * moves 2 MiB-aligned batches, so that a THP falls in one.
 */
static __u64 batches_of(const void *p, size_t len)
{
	uintptr_t first = (uintptr_t)p / SZ_2M, last = ((uintptr_t)p + len - 1) / SZ_2M;

	return last - first + 1;
}

/* Nothing was counted since the last PHASE_TIMES of @fd. */
static void phase_times_empty(struct __test_metadata *_metadata, int fd)
{
	struct hmm_dummy_phase_times t;
	int i;

	ASSERT_EQ(0, phase_times(fd, &t));
	for (i = 0; i < HMM_DUMMY_NR_PHASES; i++)
		ASSERT_EQ(0, t.ns[i]) TH_LOG("phase %d", i);
	ASSERT_EQ(0, t.calls);
	ASSERT_EQ(0, t.commands);
}

/*
 * One command of @calls migrate_vma() calls was counted and its phases fit
 * in it. The walk, the copy (or, with nothing to move, the finalize) take
 * time whatever the clock's resolution; the phases that ran only when
 * @moved must be 0 otherwise: skipped phases are not told.
 */
static void phase_times_one_command(struct __test_metadata *_metadata, int fd,
				    __u64 calls, bool moved)
{
	static const int busy[] = {
		HMM_DUMMY_PHASE_COLLECT, HMM_DUMMY_PHASE_FINALIZE,
	};
	static const int skipped[] = {
		HMM_DUMMY_PHASE_PREPARE, HMM_DUMMY_PHASE_UNMAP,
		HMM_DUMMY_PHASE_ALLOC_AND_COPY, HMM_DUMMY_PHASE_PAGES,
		HMM_DUMMY_PHASE_FINALIZE_AND_MAP,
	};
	struct hmm_dummy_phase_times t;
	__u64 sum = 0;
	size_t i;

	ASSERT_EQ(0, phase_times(fd, &t));
	ASSERT_EQ(calls, t.calls);
	ASSERT_EQ(1, t.commands);
	for (i = 0; i < HMM_DUMMY_PHASE_COMMAND; i++)
		sum += t.ns[i];
	ASSERT_LE(sum, t.ns[HMM_DUMMY_PHASE_COMMAND]);
	for (i = 0; i < ARRAY_SIZE(busy); i++)
		ASSERT_LT(0, t.ns[busy[i]]) TH_LOG("phase %d took no time", busy[i]);
	if (moved) {
		ASSERT_LT(0, t.ns[HMM_DUMMY_PHASE_ALLOC_AND_COPY]);
		return;
	}
	for (i = 0; i < ARRAY_SIZE(skipped); i++)
		ASSERT_EQ(0, t.ns[skipped[i]]) TH_LOG("phase %d was told", skipped[i]);
}

/*
 * PHASE_TIMES counts nothing until it is first asked, then each phase of
 * each migration command, and starts over at every call; a CPU fault's
 * migration is not counted. 100 pages are one migrate_vma() call per
 * 2 MiB-aligned batch they touch.
 */
TEST_F(migrate, phase_times_account_each_phase)
{
	struct hmm_dummy_cmd cmd;
	struct area a;

	area_new(_metadata, &a, 100, self->psz, 31);
	to_dev_ok(_metadata, self->fd, &a, 0, 100, 31);
	phase_times_empty(_metadata, self->fd);

	ASSERT_EQ(0, to_sys(self->fd, a.p, 100, &cmd));
	ASSERT_EQ(100, cmd.cpages);
	phase_times_one_command(_metadata, self->fd, batches_of(a.p, 100 * self->psz), true);
	cpu_is(_metadata, &a, 0, 100, 31);

	to_dev_ok(_metadata, self->fd, &a, 0, 100, 31);
	phase_times_one_command(_metadata, self->fd, batches_of(a.p, 100 * self->psz), true);
	phase_times_empty(_metadata, self->fd);
	cpu_is(_metadata, &a, 0, 100, 31);
	snap_is(_metadata, self->fd, &a, 0, 100, SYS_RW);
	phase_times_empty(_metadata, self->fd);
	area_free(_metadata, &a);
}

/*
 * With nothing to move (MIGRATE_TO_SYS of pages in RAM) only collect and
 * finalize run, and only they are told. A bad pointer gives EFAULT and
 * keeps the figures for the next call.
 */
TEST_F(migrate, phase_times_skipped_phases_and_bad_pointer)
{
	struct hmm_dummy_phase_times t;
	struct hmm_dummy_cmd cmd;
	struct area a;

	area_new(_metadata, &a, 100, self->psz, 32);
	ASSERT_EQ(0, phase_times(self->fd, &t));
	ASSERT_EQ(0, to_sys(self->fd, a.p, 100, &cmd));
	ASSERT_EQ(0, cmd.cpages);
	ASSERT_EQ(-EFAULT, ioctl(self->fd, HMM_DUMMY_PHASE_TIMES, NULL) < 0 ? -errno : 0);
	phase_times_one_command(_metadata, self->fd, batches_of(a.p, 100 * self->psz), false);
	phase_times_empty(_metadata, self->fd);
	cpu_is(_metadata, &a, 0, 100, 32);
	area_free(_metadata, &a);
}

/*
 * RELEASE empties the device, whatever the command's fields say: every
 * device page goes back to RAM with its data, its memory freed.
 */
TEST_F(migrate, release_empties_device)
{
	struct hmm_dummy_cmd cmd;
	struct area a;
	long used0, used;

	area_new(_metadata, &a, NPAGES, self->psz, 29);
	used0 = pages_used(self->fd);
	to_dev_ok(_metadata, self->fd, &a, 0, NPAGES, 29);
	used = pages_used(self->fd);
	ASSERT_EQ(used0 + (long)NPAGES, used);

	/* An unaligned address and no pages: both ignored. */
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_RELEASE, 1, NULL, 0, &cmd));
	ASSERT_LE(NPAGES, cmd.cpages);
	ASSERT_EQ(used - (long)cmd.cpages,
		  wait_pages_used(self->fd, used - cmd.cpages));
	ASSERT_GE(used0, pages_used(self->fd));
	snap_is(_metadata, self->fd, &a, 0, NPAGES, SYS_RW);
	cpu_is(_metadata, &a, 0, NPAGES, 29);
	area_free(_metadata, &a);
}

/* Child of release_other_process: its pages must be back in RAM, intact. */
static int release_child(int dev, size_t psz, int up, int down)
{
	unsigned char snap[NPAGES];
	unsigned char *p;
	int ret, fd;

	ret = child_migrate(dev, psz, NPAGES, 30, up, down, &p, &fd);
	if (ret)
		return ret;
	if (dev_snap(fd, p, snap, NPAGES, NULL) ||
	    prot_diff(snap, NPAGES, SYS_RW) != -1)
		return 10;
	if (pat_diff(p, NPAGES * psz, 30) != -1)
		return 11;
	return 0;
}

/* RELEASE also takes back the device pages of another process. */
TEST_F(migrate, release_other_process)
{
	struct hmm_dummy_cmd cmd;
	int up[2], down[2];
	long used;
	pid_t pid;
	char b;

	pid = fork_with_pipes(up, down);
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(release_child(variant->dev, self->psz, up[1], down[0]));

	ASSERT_EQ(1, read(up[0], &b, 1));
	used = pages_used(self->fd);
	ASSERT_LE((long)NPAGES, used);
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_RELEASE, 0, NULL, 0, &cmd));
	ASSERT_LE(NPAGES, cmd.cpages);
	ASSERT_EQ(used - (long)cmd.cpages,
		  wait_pages_used(self->fd, used - cmd.cpages));
	ASSERT_EQ(1, write(down[1], "r", 1));
	ASSERT_EQ(0, wait_child(pid));
	close(up[0]);
	close(down[1]);
}

/* 6. Bad input, and memory that is not migrated. */

/* Both migrations of @npages at @addr fail with @err. */
static void both_fail(struct __test_metadata *_metadata, int fd, __u64 addr,
		      void *buf, __u64 npages, int err)
{
	ASSERT_EQ(err, dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_DEV, addr, buf,
				 npages, NULL));
	ASSERT_EQ(err, dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_SYS, addr, buf,
				 npages, NULL));
}

/* Nothing moved: @a is all in RAM and still holds pattern @seed. */
static void untouched(struct __test_metadata *_metadata, int fd,
		      struct area *a, unsigned int seed)
{
	snap_is(_metadata, fd, a, 0, a->n, SYS_RW);
	cpu_is(_metadata, a, 0, a->n, seed);
}

/* No pages at all, or an unaligned start, is EINVAL. */
TEST_F(migrate, bad_npages_or_addr)
{
	uintptr_t p;
	struct area a;

	area_new(_metadata, &a, 2, self->psz, 31);
	p = (uintptr_t)a.p;
	both_fail(_metadata, self->fd, p, a.buf, 0, -EINVAL);
	both_fail(_metadata, self->fd, p + 1, a.buf, 1, -EINVAL);
	both_fail(_metadata, self->fd, p + self->psz / 2, a.buf, 1, -EINVAL);
	untouched(_metadata, self->fd, &a, 31);
	area_free(_metadata, &a);
}

/* More than HMM_DUMMY_MAX_PAGES in one command is E2BIG. */
TEST_F(migrate, bad_too_many_pages)
{
	struct area a;

	area_new(_metadata, &a, 2, self->psz, 32);
	both_fail(_metadata, self->fd, (uintptr_t)a.p, a.buf,
		  HMM_DUMMY_MAX_PAGES + 1, -E2BIG);
	untouched(_metadata, self->fd, &a, 32);
	area_free(_metadata, &a);
}

/* A range the process cannot read (PROT_NONE) is EINVAL. */
TEST_F(migrate, bad_prot_none)
{
	struct area a;

	area_new(_metadata, &a, 4, self->psz, 33);
	ASSERT_EQ(0, mprotect(a.p, a.len, PROT_NONE));
	both_fail(_metadata, self->fd, (uintptr_t)a.p, a.buf, 4, -EINVAL);
	ASSERT_EQ(0, mprotect(a.p, a.len, PROT_READ | PROT_WRITE));
	untouched(_metadata, self->fd, &a, 33);
	area_free(_metadata, &a);
}

/* A range with an unmapped page in it is EINVAL, and nothing moves. */
TEST_F(migrate, bad_unmapped_hole)
{
	struct area a;

	area_new(_metadata, &a, 3, self->psz, 34);
	ASSERT_EQ(0, munmap(a.p + self->psz, self->psz));
	both_fail(_metadata, self->fd, (uintptr_t)a.p, a.buf, 3, -EINVAL);
	snap_is(_metadata, self->fd, &a, 0, 1, SYS_RW);
	snap_is(_metadata, self->fd, &a, 2, 1, SYS_RW);
	cpu_is(_metadata, &a, 0, 1, 34);
	cpu_is(_metadata, &a, 2, 1, 34);
	area_free(_metadata, &a);
}

/*
 * Shared memory is not migrated: nothing moves and the read back stops
 * at the first page with ENOENT.
 */
static void not_migrated(struct __test_metadata *_metadata, int fd,
			 struct area *a, unsigned int seed)
{
	struct hmm_dummy_cmd cmd;
	long used = pages_used(fd);

	ASSERT_EQ(-ENOENT, to_dev(fd, a->p, a->buf, a->n, &cmd));
	ASSERT_EQ(0U, cmd.cpages);
	ASSERT_EQ(used, pages_used(fd));
	untouched(_metadata, fd, a, seed);
}

TEST_F(migrate, shared_anon_not_migrated)
{
	struct area a;

	area_init(_metadata, &a, map_anon(4 * self->psz, MAP_SHARED), 4,
		  self->psz, 35);
	not_migrated(_metadata, self->fd, &a, 35);
	area_free(_metadata, &a);
}

TEST_F(migrate, memfd_not_migrated)
{
	size_t len = 4 * self->psz;
	int mfd = memfd_create("hmm_migrate", MFD_CLOEXEC);
	struct area a;

	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, len));
	area_init(_metadata, &a,
		  mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0),
		  4, self->psz, 36);
	not_migrated(_metadata, self->fd, &a, 36);
	area_free(_metadata, &a);
	close(mfd);
}

/* INJECT refuses an unknown kind and an unaligned range, and sets nothing. */
TEST_F(migrate, bad_inject)
{
	struct area a;

	area_new(_metadata, &a, 4, self->psz, 37);
	ASSERT_EQ(-EINVAL, inject_on(&self->inj, a.p, 4, 3));
	ASSERT_EQ(-EINVAL, inject_on(&self->inj, a.p, 4, ~0U));
	ASSERT_EQ(-EINVAL, inject(self->fd, a.p + 1, 4, HMM_DUMMY_INJECT_ALLOC_FAIL));
	to_dev_ok(_metadata, self->fd, &a, 0, 4, 37);
	snap_is(_metadata, self->fd, &a, 0, 4, DEV_RW);
	cpu_is(_metadata, &a, 0, 4, 37);
	area_free(_metadata, &a);
}

/* 7. Regressions: states a review found handled wrong. */

/*
 * A written page between two never-touched ones: all three move. The
 * pages phase once took the written page for an empty entry waiting for
 * its pte and undid its move.
 */
TEST_F(migrate, written_page_between_untouched_ones)
{
	long used = pages_used(self->fd);
	size_t psz = self->psz;
	struct hmm_dummy_cmd cmd;
	struct area a;

	ASSERT_LE(0, used);
	area_new(_metadata, &a, 3, psz, 0);
	pat_fill_at(a.p + psz, psz, psz, 40);
	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(0, to_dev(self->fd, a.p, a.buf, 3, &cmd));
	ASSERT_EQ(3, cmd.cpages);
	ASSERT_EQ(-1, zero_diff(a.buf, psz));
	ASSERT_EQ(-1, pat_diff_at(a.buf + psz, psz, psz, 40));
	ASSERT_EQ(-1, zero_diff(a.buf + 2 * psz, psz));
	snap_is(_metadata, self->fd, &a, 0, 3, DEV_RW);
	ASSERT_EQ(used + 3, pages_used(self->fd));
	ASSERT_EQ(-1, zero_diff(a.p, psz));
	ASSERT_EQ(-1, pat_diff_at(a.p + psz, psz, psz, 40));
	ASSERT_EQ(-1, zero_diff(a.p + 2 * psz, psz));
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	area_free(_metadata, &a);
}

/* Every odd page of 64 written, every even one never touched: all move. */
TEST_F(migrate, written_and_untouched_pages_alternate)
{
	long used = pages_used(self->fd);
	size_t i, n = 64, psz = self->psz;
	struct hmm_dummy_cmd cmd;
	struct area a;

	ASSERT_LE(0, used);
	area_new(_metadata, &a, n, psz, 0);
	for (i = 1; i < n; i += 2)
		pat_fill_at(a.p + i * psz, i * psz, psz, 41);
	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(0, to_dev(self->fd, a.p, a.buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n, DEV_RW);
	ASSERT_EQ(used + (long)n, pages_used(self->fd));
	for (i = 0; i < n; i++) {
		if (i & 1) {
			ASSERT_EQ(-1, pat_diff_at(a.buf + i * psz, i * psz, psz, 41));
			ASSERT_EQ(-1, pat_diff_at(a.p + i * psz, i * psz, psz, 41));
		} else {
			ASSERT_EQ(-1, zero_diff(a.buf + i * psz, psz));
			ASSERT_EQ(-1, zero_diff(a.p + i * psz, psz));
		}
	}
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	area_free(_metadata, &a);
}

/*
 * MIGRATE_TO_SYS skips system pages: a PMD-mapped THP it moves nothing
 * from stays PMD-mapped, and intact.
 */
TEST_F(migrate, to_sys_keeps_thp_whole)
{
	size_t n = SZ_2M / self->psz;
	struct hmm_dummy_cmd cmd;
	const char *why;
	struct area a;
	void *raw;

	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 42);
	if (why)
		SKIP(return, "%s", why);

	ASSERT_EQ(0, to_sys(self->fd, a.p, n, &cmd));
	ASSERT_EQ(0, cmd.cpages);
	snap_is(_metadata, self->fd, &a, 0, n, SYS_RW | HMM_DUMMY_PROT_PMD);
	cpu_is(_metadata, &a, 0, n, 42);
	thp_area_free(_metadata, &a, raw);
}

/*
 * Another driver's device-private THP (mainline's lib/test_hmm moves a
 * THP whole) is not ours to take: MIGRATE_TO_DEV moves none of it and
 * leaves it one PMD, as that driver's own SNAPSHOT shows, and our READ
 * faults it back to RAM, intact, through that driver. Needs test_hmm's
 * /dev/hmm_dmirror0 (the guest loads it before these tests).
 */
TEST_F(migrate, other_drivers_device_thp_stays_whole)
{
	const unsigned char theirs = HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL | HMM_DUMMY_PROT_WRITE |
				     HMM_DUMMY_PROT_PMD;
	size_t n = SZ_2M / self->psz;
	struct hmm_dummy_cmd cmd;
	unsigned char first = 0;
	const char *why;
	struct area a;
	void *raw;
	int up;

	up = open("/dev/hmm_dmirror0", O_RDWR);
	if (up < 0)
		SKIP(return, "no /dev/hmm_dmirror0: lib/test_hmm is not loaded");
	why = thp_area(_metadata, self->fd, &a, &raw, self->psz, 43);
	if (why) {
		close(up);
		SKIP(return, "%s", why);
	}
	ASSERT_EQ(0, to_dev(up, a.p, a.buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(0, dev_snap(up, a.p, &first, 1, NULL));
	if (first != theirs) {
		close(up);
		SKIP(return, "test_hmm split the THP (snapshot 0x%02x)", first);
	}

	ASSERT_EQ(-ENOENT, to_dev(self->fd, a.p, a.buf, n, &cmd));
	ASSERT_EQ(0, cmd.cpages);
	snap_is(_metadata, up, &a, 0, n, theirs);
	/* Not ours, not the CPU's: nothing a mirror may map. */
	snap_is(_metadata, self->fd, &a, 0, n, HMM_DUMMY_PROT_NONE);

	ASSERT_EQ(0, dev_read(self->fd, a.p, a.buf, n, NULL));
	ASSERT_EQ(-1, pat_diff(a.buf, SZ_2M, 43));
	cpu_is(_metadata, &a, 0, n, 43);
	thp_area_free(_metadata, &a, raw);
	close(up);
}

/* Keep the calling thread on CPU @cpu; false when there is no such CPU. */
static bool run_on_cpu(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return !sched_setaffinity(0, sizeof(one), &one);
}

/*
 * Can this test see reclaim drop a clean MADV_FREE'd page? Keeps the
 * caller on one CPU, whose LRU batches MADV_PAGEOUT drains, then checks
 * on a control page: written, MADV_FREE'd, never written again, paged out
 * must read back as zeros.
 */
static bool lazyfree_is_reclaimed(size_t psz)
{
	unsigned char *c = map_anon(psz, MAP_PRIVATE);
	bool dropped;

	if (c == MAP_FAILED || !run_on_cpu(0))
		return false;
	memset(c, 1, psz);
	dropped = !madvise(c, psz, MADV_FREE) && !madvise(c, psz, MADV_PAGEOUT) &&
		  zero_diff(c, psz) == -1;
	munmap(c, psz);
	return dropped;
}

/*
 * A device write dirties the page: a page MADV_FREE'd before keeps what
 * the device wrote when reclaim comes, instead of being dropped as clean.
 */
TEST_F(migrate, device_write_after_madv_free_survives_pageout)
{
	struct area a;

	if (!lazyfree_is_reclaimed(self->psz))
		SKIP(return, "MADV_PAGEOUT does not drop clean MADV_FREE pages here");
	area_new(_metadata, &a, 4, self->psz, 43);
	ASSERT_EQ(0, madvise(a.p, a.len, MADV_FREE));
	pat_fill(a.buf, a.len, 44);
	ASSERT_EQ(0, dev_write(self->fd, a.p, a.buf, 4, NULL));
	ASSERT_EQ(0, madvise(a.p, a.len, MADV_PAGEOUT));
	cpu_is(_metadata, &a, 0, 4, 44);
	area_free(_metadata, &a);
}

/*
 * Pages come back from device memory dirty: a page MADV_FREE'd, then
 * moved to the device and written there, keeps the device's data through
 * reclaim once back in RAM.
 */
TEST_F(migrate, device_data_back_in_ram_survives_pageout)
{
	struct hmm_dummy_cmd cmd;
	struct area a;

	if (!lazyfree_is_reclaimed(self->psz))
		SKIP(return, "MADV_PAGEOUT does not drop clean MADV_FREE pages here");
	area_new(_metadata, &a, 4, self->psz, 45);
	ASSERT_EQ(0, madvise(a.p, a.len, MADV_FREE));
	to_dev_ok(_metadata, self->fd, &a, 0, 4, 45);
	pat_fill(a.buf, a.len, 46);
	ASSERT_EQ(0, dev_write(self->fd, a.p, a.buf, 4, NULL));
	ASSERT_EQ(0, to_sys(self->fd, a.p, 4, &cmd));
	ASSERT_EQ(4, cmd.cpages);
	ASSERT_EQ(0, madvise(a.p, a.len, MADV_PAGEOUT));
	cpu_is(_metadata, &a, 0, 4, 46);
	area_free(_metadata, &a);
}

struct pager {
	void *p;
	size_t len;
	atomic_int stop;
	unsigned long rounds;
};

static void *pager_thread(void *arg)
{
	struct pager *pg = arg;

	while (!atomic_load(&pg->stop)) {
		madvise(pg->p, pg->len, MADV_PAGEOUT);
		pg->rounds++;
	}
	return NULL;
}

#define PAGEOUT_RACE_SECONDS	4

/*
 * The core copy mode moves swap-cache pages from system page to system
 * page. Reclaim keeps paging the range out while the test writes it back
 * in (mapping pages still under writeback) and migrates it: a page under
 * writeback must stay where it is, every byte must survive, and the
 * kernel must not free a page whose writeback has not ended.
 */
TEST_F_TIMEOUT(migrate, core_copy_races_pageout, 60)
{
	struct pager pg = { 0 };
	struct hmm_dummy_cmd cmd;
	unsigned long rounds = 0, moved = 0;
	time_t end = time(NULL) + PAGEOUT_RACE_SECONDS;
	struct area a;
	pthread_t th;
	long d = -1;
	int ret = 0;

	area_new(_metadata, &a, NPAGES, self->psz, 48);
	ASSERT_EQ(0, set_copy_mode(self->fd, HMM_DUMMY_COPY_CORE));
	pg.p = a.p;
	pg.len = a.len;
	ASSERT_EQ(0, pthread_create(&th, NULL, pager_thread, &pg));
	while (time(NULL) < end) {
		/* Rewriting the same bytes dirties the pages and swaps them in. */
		pat_fill(a.p, a.len, 48);
		ret = to_dev(self->fd, a.p, a.buf, NPAGES, &cmd);
		if (ret && ret != -ENOENT)
			break;
		d = pat_diff(a.buf, cmd.cpages * self->psz, 48);
		if (d != -1)
			break;
		moved += cmd.cpages;
		rounds++;
	}
	atomic_store(&pg.stop, 1);
	pthread_join(th, NULL);
	ASSERT_TRUE(ret == 0 || ret == -ENOENT) TH_LOG("round %lu: %d", rounds, ret);
	ASSERT_EQ(-1, d) TH_LOG("round %lu: read back byte %ld differs", rounds, d);
	cpu_is(_metadata, &a, 0, NPAGES, 48);
	TH_LOG("%lu rounds, %lu pages moved, %lu pageouts", rounds, moved, pg.rounds);
	area_free(_metadata, &a);
}

/*
 * Device pages unmapped from mlocked memory are freed at once: munlock
 * once parked a reference to each in the CPU's mlock batch, holding the
 * device memory until that CPU drained (found by hmm_model).
 */
TEST_F(migrate, mlocked_device_pages_freed_on_munmap)
{
	long used = pages_used(self->fd);
	struct area a;

	ASSERT_LE(0, used);
	area_new(_metadata, &a, 8, self->psz, 49);
	if (mlock(a.p, a.len))
		SKIP(return, "mlock: %s", strerror(errno));
	to_dev_ok(_metadata, self->fd, &a, 0, 8, 49);
	ASSERT_EQ(used + 8, pages_used(self->fd));
	ASSERT_EQ(0, munmap(a.p, a.len));
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	free(a.buf);
}

/*
 * A page MADV_FREE'd on another CPU still moves: that CPU's lazyfree
 * batch holds a reference for a while, which is not a pin (found by
 * hmm_model).
 */
TEST_F(migrate, madv_free_on_other_cpu_still_moves)
{
	struct area a;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || !run_on_cpu(1))
		SKIP(return, "needs two CPUs");
	area_new(_metadata, &a, 8, self->psz, 50);
	ASSERT_EQ(0, madvise(a.p, a.len, MADV_FREE));
	ASSERT_TRUE(run_on_cpu(0));
	to_dev_ok(_metadata, self->fd, &a, 0, 8, 50);
	snap_is(_metadata, self->fd, &a, 0, 8, DEV_RW);
	cpu_is(_metadata, &a, 0, 8, 50);
	area_free(_metadata, &a);
}

/*
 * A child moves pages it still shares copy-on-write with its parent: the
 * unmap phase moves every mapping of a page, so the parent's move too
 * (as upstream's migrate_vma_setup() does) and stay in device memory after
 * the child exited, until the parent touches or unmaps them. hmm_fuzz's
 * final check met this: its loop runs in a child of the checking process,
 * and MIGRATE_TO_DEV on stack and .bss pages the loop never wrote took the
 * checker's own pages with them.
 */
TEST_F(migrate, child_moves_cow_shared_pages_of_parent)
{
	long used = pages_used(self->fd);
	size_t n = 4;
	struct hmm_dummy_cmd cmd;
	struct area a;
	pid_t pid;

	ASSERT_LE(0, used);
	area_new(_metadata, &a, n, self->psz, 61);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = dummy_open(variant->dev);

		_exit(fd < 0 || to_dev(fd, a.p, a.buf, n, &cmd) || cmd.cpages != n);
	}
	ASSERT_EQ(0, wait_child(pid));
	/* The child is gone; the parent's read-only COW mappings moved. */
	snap_is(_metadata, self->fd, &a, 0, n, DEV_RO);
	ASSERT_EQ(used + (long)n, pages_used(self->fd));
	/* Its CPU reads bring them back and free the device memory. */
	cpu_is(_metadata, &a, 0, n, 61);
	ASSERT_EQ(used, wait_pages_used(self->fd, used));
	area_free(_metadata, &a);
}

/* 8. Two devices. */

FIXTURE(two)
{
	int fd[2];
	size_t psz;
};

FIXTURE_SETUP(two)
{
	char why[80];
	int i;

	self->psz = sysconf(_SC_PAGESIZE);
	self->fd[0] = -1;
	self->fd[1] = -1;
	for (i = 0; i < 2; i++) {
		self->fd[i] = dummy_fixture_open(i, why, sizeof(why));
		if (self->fd[i] < 0 && why[0])
			SKIP(return, "%s", why);
		ASSERT_LE(0, self->fd[i]);
	}
}

FIXTURE_TEARDOWN(two)
{
	int i;

	for (i = 0; i < 2; i++)
		if (self->fd[i] >= 0)
			close(self->fd[i]);
}

/*
 * Device 1 does not take pages that are in device 0's memory: they stay
 * there, and device 1's read back stops at once. Each device's snapshot
 * reports them as its own (device 0) or as nothing it can use (device 1).
 */
TEST_F(two, other_device_pages_stay)
{
	struct hmm_dummy_cmd cmd;
	struct area a;
	long used1;

	area_new(_metadata, &a, NPAGES, self->psz, 40);
	to_dev_ok(_metadata, self->fd[0], &a, 0, NPAGES, 40);
	used1 = pages_used(self->fd[1]);
	ASSERT_EQ(-ENOENT, to_dev(self->fd[1], a.p, a.buf, NPAGES, &cmd));
	ASSERT_EQ(0U, cmd.cpages);
	ASSERT_EQ(used1, pages_used(self->fd[1]));
	snap_is(_metadata, self->fd[0], &a, 0, NPAGES, DEV_RW);
	snap_is(_metadata, self->fd[1], &a, 0, NPAGES, HMM_DUMMY_PROT_NONE);
	cpu_is(_metadata, &a, 0, NPAGES, 40);
	area_free(_metadata, &a);
}

/*
 * From device 0 to device 1: a device 1 READ brings the pages back to RAM
 * with the right data, then they migrate to device 1, which device 0 sees
 * as pages it cannot use.
 */
TEST_F(two, dev0_to_dev1)
{
	struct hmm_dummy_cmd cmd;
	struct area a;
	long used0;

	area_new(_metadata, &a, NPAGES, self->psz, 41);
	used0 = pages_used(self->fd[0]);
	to_dev_ok(_metadata, self->fd[0], &a, 0, NPAGES, 41);

	memset(a.buf, 0xa5, a.len);
	ASSERT_EQ(0, dev_read(self->fd[1], a.p, a.buf, NPAGES, &cmd));
	ASSERT_EQ(NPAGES, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(a.buf, a.len, 41));
	ASSERT_EQ(used0, wait_pages_used(self->fd[0], used0));

	to_dev_ok(_metadata, self->fd[1], &a, 0, NPAGES, 41);
	snap_is(_metadata, self->fd[1], &a, 0, NPAGES, DEV_RW);
	snap_is(_metadata, self->fd[0], &a, 0, NPAGES, HMM_DUMMY_PROT_NONE);
	cpu_is(_metadata, &a, 0, NPAGES, 41);
	area_free(_metadata, &a);
}

/* MIGRATE_TO_SYS of each device moves its own pages and no other's. */
TEST_F(two, to_sys_moves_own_pages_only)
{
	size_t half = NPAGES / 2;
	struct hmm_dummy_cmd cmd;
	struct area a;

	area_new(_metadata, &a, NPAGES, self->psz, 42);
	to_dev_ok(_metadata, self->fd[0], &a, 0, half, 42);
	to_dev_ok(_metadata, self->fd[1], &a, half, half, 42);

	ASSERT_EQ(0, to_sys(self->fd[1], a.p, NPAGES, &cmd));
	ASSERT_EQ(half, cmd.cpages);
	snap_split(_metadata, self->fd[0], &a, 0, half, DEV_RW, SYS_RW);
	ASSERT_EQ(0, to_sys(self->fd[0], a.p, NPAGES, &cmd));
	ASSERT_EQ(half, cmd.cpages);
	snap_is(_metadata, self->fd[0], &a, 0, NPAGES, SYS_RW);
	cpu_is(_metadata, &a, 0, NPAGES, 42);
	area_free(_metadata, &a);
}

TEST_HARNESS_MAIN
