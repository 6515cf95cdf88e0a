// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the address space mirror kept by the hmm_dummy driver.
 *
 * Every open file of /dev/hmm_dummyN mirrors the mm of the process that
 * opened it: the device fills a page table of its own with
 * hmm_range_fault() and drops entries when an mmu notifier tells it the
 * CPU mapping changed. The tests below access memory through the device
 * (READ, WRITE, SNAPSHOT), change the CPU mappings in between, and check
 * byte for byte that the device never sees anything but what the CPU sees.
 *
 * Data is always a pattern that differs per byte, per page and per seed,
 * so a stale, shifted or torn copy cannot pass for the expected one.
 */
#include "../kselftest_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "hmm_dummy_uapi.h"
#include <linux/userfaultfd.h>

#include "hmm_dummy_util.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT		26
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB		(21 << MAP_HUGE_SHIFT)
#endif

#define NPAGES			16UL

/* The races stop at whichever limit comes first. */
#define RACE_ROUNDS		400
#define RACE_SECONDS		4
#define RACE_READERS		2
/* How long one side of a race waits for the other side to make progress. */
#define RACE_YIELDS		200

/* An address in the kernel half of a 64-bit address space. */
#define KERNEL_ADDR		0xffff800000000000ULL

FIXTURE(mirror)
{
	int fd;
	int dev;
	size_t psz;
};

FIXTURE_VARIANT(mirror)
{
	int dev;
};

/*
 * One device: both behave the same, and the tests that need two open
 * both. The migration tests vary what matters there (THP).
 */
FIXTURE_VARIANT_ADD(mirror, dev0)
{
	.dev = 0,
};

FIXTURE_SETUP(mirror)
{
	char why[80];

	self->psz = sysconf(_SC_PAGESIZE);
	self->dev = variant->dev;
	self->fd = dummy_fixture_open(variant->dev, why, sizeof(why));
	if (self->fd < 0 && why[0])
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(mirror)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Did the invalidations of kind @ev grow from @old to @now? */
static bool grew(const struct hmm_dummy_counters *old,
		 const struct hmm_dummy_counters *now, int ev)
{
	return now->invalidations[ev] > old->invalidations[ev];
}

/*
 * A "generation" page: its first four bytes hold the generation number,
 * the rest is the pattern of that number, so a page mixing two
 * generations, or holding something never written, is recognised.
 */
static void gen_fill(void *page, size_t psz, uint32_t gen)
{
	pat_fill(page, psz, gen);
	memcpy(page, &gen, sizeof(gen));
}

/* The generation held by @page, or 0 if it is not a whole one. */
static uint32_t gen_check(const void *page, size_t psz)
{
	const unsigned char *b = page;
	uint32_t gen;
	size_t i;

	memcpy(&gen, b, sizeof(gen));
	if (!gen)
		return 0;
	for (i = sizeof(gen); i < psz; i++)
		if (b[i] != pat_byte(gen, i))
			return 0;
	return gen;
}

/* A temporary file in /tmp, already unlinked. */
static int tmp_file(size_t len)
{
	char name[] = "/tmp/hmm_mirror.XXXXXX";
	int fd = mkstemp(name);

	if (fd < 0)
		return -1;
	unlink(name);
	if (ftruncate(fd, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* pwrite() (@write) or pread() all @len bytes from offset 0; 0 or -1. */
static int rw_all(int fd, void *buf, size_t len, bool write)
{
	unsigned char *b = buf;
	size_t done = 0;
	ssize_t ret;

	while (done < len) {
		if (write)
			ret = pwrite(fd, b + done, len - done, done);
		else
			ret = pread(fd, b + done, len - done, done);
		if (ret <= 0)
			return -1;
		done += ret;
	}
	return 0;
}

/*
 * Take a duplicate of file descriptor @fd of process @pid, the way a
 * debugger would: pidfd_getfd() needs no sockets in the test kernel.
 */
static int steal_fd(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0);
	int ret;

	if (pidfd < 0)
		return -1;
	ret = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return ret;
}

/*
 * @p (@len bytes) holds pattern @seed. Check a device READ returns it
 * (taking a fault the first time if the device never saw the range,
 * @fresh, and none the second time), then WRITE pattern @seed + 1
 * through the device and check both the CPU and the device see it.
 */
static void read_write_cycle(struct __test_metadata *_metadata, int fd,
			     void *p, size_t len, size_t psz, unsigned int seed,
			     bool fresh)
{
	__u64 n = len / psz;
	struct hmm_dummy_cmd cmd;
	unsigned char *buf = malloc(len);

	ASSERT_NE(NULL, buf);

	pat_fill(buf, len, seed + 1000);
	ASSERT_EQ(0, dev_read(fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_LE(fresh ? 1U : 0U, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, len, seed));

	pat_fill(buf, len, seed + 1000);
	ASSERT_EQ(0, dev_read(fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(0U, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, len, seed));

	pat_fill(buf, len, seed + 1);
	ASSERT_EQ(0, dev_write(fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(p, len, seed + 1));

	pat_fill(buf, len, seed + 1000);
	ASSERT_EQ(0, dev_read(fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, seed + 1));
	free(buf);
}

/* A device READ of @p returns pattern @seed: the device still works. */
static void good_read(struct __test_metadata *_metadata, int fd, void *p,
		      size_t len, size_t psz, unsigned int seed)
{
	unsigned char *buf = malloc(len);
	struct hmm_dummy_cmd cmd;

	ASSERT_NE(NULL, buf);
	pat_fill(buf, len, seed + 1000);
	ASSERT_EQ(0, dev_read(fd, p, buf, len / psz, &cmd));
	ASSERT_EQ(len / psz, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, seed));
	free(buf);
}

/*
 * The CPU puts pattern @seed into the file @ffd, the device reads it
 * through a shared mapping and writes pattern @seed + 1, which must
 * then be in the file.
 */
static void shared_file_cycle(struct __test_metadata *_metadata, int fd,
			      int ffd, size_t len, size_t psz,
			      unsigned int seed)
{
	unsigned char *buf = malloc(len);
	void *p;

	ASSERT_NE(NULL, buf);
	pat_fill(buf, len, seed);
	ASSERT_EQ(0, rw_all(ffd, buf, len, true));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
	ASSERT_NE(MAP_FAILED, p);

	read_write_cycle(_metadata, fd, p, len, psz, seed, true);

	pat_fill(buf, len, seed + 1000);
	ASSERT_EQ(0, rw_all(ffd, buf, len, false));
	ASSERT_EQ(-1, pat_diff(buf, len, seed + 1));
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/* 1. Data through the device, one kind of memory per test. */

/* Pattern @seed in new anonymous memory mapped with @flags, through the device. */
static void anon_cycle(struct __test_metadata *_metadata, int fd, size_t psz,
		       int flags, unsigned int seed)
{
	size_t len = NPAGES * psz;
	void *p = map_anon(len, flags);

	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, seed);
	read_write_cycle(_metadata, fd, p, len, psz, seed, true);
	ASSERT_EQ(0, munmap(p, len));
}

TEST_F(mirror, anon_private_read_write)
{
	anon_cycle(_metadata, self->fd, self->psz, MAP_PRIVATE, 1);
}

TEST_F(mirror, anon_shared_read_write)
{
	anon_cycle(_metadata, self->fd, self->psz, MAP_SHARED, 3);
}

TEST_F(mirror, memfd_shared_read_write)
{
	size_t len = NPAGES * self->psz;
	int ffd = memfd_create("hmm_mirror", MFD_CLOEXEC);

	ASSERT_LE(0, ffd);
	ASSERT_EQ(0, ftruncate(ffd, len));
	shared_file_cycle(_metadata, self->fd, ffd, len, self->psz, 5);
	close(ffd);
}

TEST_F(mirror, tmp_file_shared_read_write)
{
	size_t len = NPAGES * self->psz;
	int ffd = tmp_file(len);

	ASSERT_LE(0, ffd);
	shared_file_cycle(_metadata, self->fd, ffd, len, self->psz, 7);
	close(ffd);
}

/* A device WRITE to a private file mapping breaks COW, like a CPU write. */
TEST_F(mirror, file_private_write_stays_private)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	unsigned char snap[NPAGES];
	struct hmm_dummy_cmd cmd;
	int ffd = tmp_file(len);
	void *p;

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, ffd);
	pat_fill(buf, len, 9);
	ASSERT_EQ(0, rw_all(ffd, buf, len, true));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, ffd, 0);
	ASSERT_NE(MAP_FAILED, p);

	pat_fill(buf, len, 1009);
	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, 9));
	/* Read faults map the page cache pages, read-only. */
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_READ));

	pat_fill(buf, len, 10);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(p, len, 10));
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_WRITE));

	pat_fill(buf, len, 1009);
	ASSERT_EQ(0, rw_all(ffd, buf, len, false));
	ASSERT_EQ(-1, pat_diff(buf, len, 9));
	good_read(_metadata, self->fd, p, len, self->psz, 10);

	ASSERT_EQ(0, munmap(p, len));
	close(ffd);
	free(buf);
}

TEST_F(mirror, thp_read_write)
{
	__u64 n = SZ_2M / self->psz;
	unsigned char *snap = malloc(n);
	struct hmm_dummy_cmd cmd;
	unsigned char *p;
	void *raw;

	ASSERT_NE(NULL, snap);
	p = map_thp_area(&raw);
	ASSERT_NE(MAP_FAILED, p);
	if (!p)
		SKIP(return, "MADV_HUGEPAGE failed: no THP");
	pat_fill(p, SZ_2M, 11);

	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	if (!(snap[0] & HMM_DUMMY_PROT_PMD))
		SKIP(return, "could not get a THP (snapshot 0x%x)", snap[0]);
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_WRITE | HMM_DUMMY_PROT_PMD));

	read_write_cycle(_metadata, self->fd, p, SZ_2M, self->psz, 11, false);
	ASSERT_EQ(0, munmap(raw, 2 * SZ_2M));
	free(snap);
}

/*
 * Where the CPU maps 2 MiB, the device maps the 2 MiB with one entry: a
 * READ of one page of a THP mirrors all 512 in one fault, and the rest
 * reads without one. Any change to part of the THP drops the whole entry
 * (the device faults the rest back in); one page taken for exclusive
 * access replaces it.
 */
TEST_F(mirror, thp_is_mirrored_by_one_entry)
{
	__u64 n = SZ_2M / self->psz;
	unsigned char *buf = malloc(SZ_2M);
	struct hmm_dummy_counters c0, c1, c2, c3;
	struct hmm_dummy_cmd cmd;
	unsigned char *p;
	void *raw;

	ASSERT_NE(NULL, buf);
	p = map_thp_area(&raw);
	ASSERT_NE(MAP_FAILED, p);
	if (!p)
		SKIP(return, "MADV_HUGEPAGE failed: no THP");
	pat_fill(p, SZ_2M, 17);
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, 1, &cmd));
	if (!(buf[0] & HMM_DUMMY_PROT_PMD))
		SKIP(return, "could not get a THP (snapshot 0x%x)", buf[0]);

	ASSERT_EQ(0, get_counters(self->fd, &c0));
	ASSERT_EQ(0, dev_read(self->fd, p + 5 * self->psz, buf, 1, &cmd));
	ASSERT_EQ(-1, pat_diff_at(buf, 5 * self->psz, self->psz, 17));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_EQ(c0.faults + 1, c1.faults);
	ASSERT_EQ(c0.mirrored + n, c1.mirrored);

	memset(buf, 0xff, SZ_2M);
	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(0, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, SZ_2M, 17));

	/* mprotect of one page splits the PMD: the whole entry goes. */
	ASSERT_EQ(0, mprotect(p + 7 * self->psz, self->psz, PROT_READ));
	ASSERT_EQ(0, get_counters(self->fd, &c2));
	ASSERT_EQ(c1.mirrored - n, c2.mirrored);
	ASSERT_EQ(0, mprotect(p + 7 * self->psz, self->psz, PROT_READ | PROT_WRITE));
	good_read(_metadata, self->fd, p, SZ_2M, self->psz, 17);
	ASSERT_EQ(0, get_counters(self->fd, &c3));
	ASSERT_EQ(c2.mirrored + n, c3.mirrored);

	/* A device write of it all lands in the CPU's pages. */
	pat_fill(buf, SZ_2M, 18);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(p, SZ_2M, 18));
	ASSERT_EQ(0, munmap(raw, 2 * SZ_2M));
	ASSERT_EQ(0, get_counters(self->fd, &c0));
	ASSERT_EQ(c3.mirrored - n, c0.mirrored);
	free(buf);
}

/*
 * The device's 2 MiB entry gives way to one page taken for exclusive
 * access: make_device_exclusive() splits the PMD, which drops the entry,
 * and the page's own entry is all that is left mapped.
 */
TEST_F(mirror, thp_entry_gives_way_to_exclusive)
{
	__u64 n = SZ_2M / self->psz;
	unsigned char *buf = malloc(SZ_2M);
	struct hmm_dummy_counters c0, c1;
	struct hmm_dummy_cmd cmd;
	unsigned char *p;
	void *raw;
	int ret;

	ASSERT_NE(NULL, buf);
	p = map_thp_area(&raw);
	ASSERT_NE(MAP_FAILED, p);
	if (!p)
		SKIP(return, "MADV_HUGEPAGE failed: no THP");
	pat_fill(p, SZ_2M, 21);
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, 1, &cmd));
	if (!(buf[0] & HMM_DUMMY_PROT_PMD))
		SKIP(return, "could not get a THP (snapshot 0x%x)", buf[0]);

	ASSERT_EQ(0, get_counters(self->fd, &c0));
	ASSERT_EQ(0, dev_read(self->fd, p, buf, 1, &cmd));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_EQ(c0.mirrored + n, c1.mirrored);

	ret = dummy_cmd(self->fd, HMM_DUMMY_EXCLUSIVE, (uintptr_t)(p + 5 * self->psz), buf,
			1, &cmd);
	if (ret == -ENOTTY)
		SKIP(return, "no EXCLUSIVE");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(-1, pat_diff_at(buf, 5 * self->psz, self->psz, 21));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_EQ(c0.mirrored + 1, c1.mirrored);
	ASSERT_EQ(-EPERM, dummy_cmd(self->fd, HMM_DUMMY_CHECK_EXCLUSIVE, (uintptr_t)p, NULL,
				    n, &cmd));
	ASSERT_EQ(1U, cmd.cpages);

	/* The CPU takes the page back; all of it reads as it was. */
	ASSERT_EQ(-1, pat_diff(p, SZ_2M, 21));
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_CHECK_EXCLUSIVE, (uintptr_t)p, NULL, n,
			       &cmd));
	good_read(_metadata, self->fd, p, SZ_2M, self->psz, 21);
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_EQ(c0.mirrored + n, c1.mirrored);
	ASSERT_EQ(0, munmap(raw, 2 * SZ_2M));
	free(buf);
}

TEST_F(mirror, hugetlb_read_write)
{
	__u64 n = SZ_2M / self->psz;
	unsigned char *snap = malloc(n);
	struct hmm_dummy_cmd cmd;
	void *p;

	ASSERT_NE(NULL, snap);
	p = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
	if (p == MAP_FAILED)
		SKIP(return, "no 2 MiB hugetlb page available");
	pat_fill(p, SZ_2M, 13);

	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_WRITE | HMM_DUMMY_PROT_PMD));

	read_write_cycle(_metadata, self->fd, p, SZ_2M, self->psz, 13, false);
	ASSERT_EQ(0, munmap(p, SZ_2M));
	free(snap);
}

/* Never-written anonymous memory reads as zeros through the zero page. */
TEST_F(mirror, zero_page_read_then_write)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_cmd cmd;
	unsigned char snap[NPAGES];
	void *p = map_anon(len, MAP_PRIVATE);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);

	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_NONE));

	pat_fill(buf, len, 15);
	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, zero_diff(buf, len));
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_ZERO | HMM_DUMMY_PROT_READ));

	pat_fill(buf, len, 16);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_WRITE));
	ASSERT_EQ(-1, pat_diff(p, len, 16));
	good_read(_metadata, self->fd, p, len, self->psz, 16);

	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/* Which pages of fault_runs_of_every_shape hold data. */
static bool run_page_written(size_t i, size_t touched)
{
	return i < touched && (i % 7 == 2 || i % 7 == 3 || i % 11 == 0);
}

/*
 * A device fault walks a run of pages that need one, faults them all in,
 * then walks again. Runs of every shape: one page, many, across a page
 * table's end, up to the end of the range, a page table that is not
 * there, next to present, zero-page and swapped-out pages. READ then
 * WRITE of it all, every byte checked.
 */
TEST_F(mirror, fault_runs_of_every_shape)
{
	const size_t np = 1024, touched = 576;
	size_t len = np * self->psz, i;
	unsigned int touched_zero = 0;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_cmd cmd;
	unsigned char *raw, *p;

	ASSERT_NE(NULL, buf);
	raw = map_anon(5 * SZ_2M, MAP_PRIVATE);
	ASSERT_NE(MAP_FAILED, raw);
	/* Page tables end at pages 64 and 576; 576 on holds no page at all. */
	p = (unsigned char *)(((uintptr_t)raw + SZ_2M - 1) & ~(SZ_2M - 1)) + SZ_2M -
	    64 * self->psz;
	for (i = 0; i < touched; i++) {
		if (run_page_written(i, touched))
			pat_fill_at(p + i * self->psz, i * self->psz, self->psz, 19);
		else if (i % 7 == 4)
			touched_zero += p[i * self->psz];
		/* A swap entry needs a fault too; without swap it stays. */
		if (i % 7 == 3)
			madvise(p + i * self->psz, self->psz, MADV_PAGEOUT);
	}
	ASSERT_EQ(0U, touched_zero);

	memset(buf, 0xff, len);
	ASSERT_EQ(0, dev_read(self->fd, p, buf, np, &cmd));
	ASSERT_EQ(np, cmd.cpages);
	for (i = 0; i < np; i++) {
		unsigned char *page = buf + i * self->psz;

		ASSERT_EQ(-1, run_page_written(i, touched) ?
			      pat_diff_at(page, i * self->psz, self->psz, 19) :
			      zero_diff(page, self->psz));
	}

	pat_fill(buf, len, 20);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, np, &cmd));
	ASSERT_EQ(np, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(p, len, 20));
	good_read(_metadata, self->fd, p, len, self->psz, 20);
	ASSERT_EQ(0, munmap(raw, 5 * SZ_2M));
	free(buf);
}

/*
 * A device fault that reaches a gap with no VMA fails, but only after the
 * pages before the gap are faulted in, as a CPU access would have.
 */
TEST_F(mirror, fault_run_before_a_gap_is_faulted_in)
{
	unsigned char *buf = malloc(8 * self->psz), snap[4];
	struct hmm_dummy_cmd cmd;
	unsigned char *p;

	ASSERT_NE(NULL, buf);
	p = map_anon(16 * self->psz, MAP_PRIVATE);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p + 4 * self->psz, 12 * self->psz));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, buf, 8, &cmd));
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, 4, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, 4, HMM_DUMMY_PROT_ZERO | HMM_DUMMY_PROT_READ));
	ASSERT_EQ(0, munmap(p, 4 * self->psz));
	free(buf);
}

/* A READ of an unchanged, already mirrored range takes no device fault. */
TEST_F(mirror, reread_takes_no_fault)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_counters c0, c1, c2;
	struct hmm_dummy_cmd cmd;
	void *p = map_anon(len, MAP_PRIVATE);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 17);
	ASSERT_EQ(0, get_counters(self->fd, &c0));

	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_LE(1U, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, len, 17));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_LE(c0.mirrored + n, c1.mirrored);
	ASSERT_LT(c0.faults, c1.faults);

	pat_fill(buf, len, 1017);
	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(0U, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, len, 17));
	ASSERT_EQ(0, get_counters(self->fd, &c2));
	ASSERT_EQ(c1.faults, c2.faults);
	ASSERT_EQ(c1.mirrored, c2.mirrored);
	ASSERT_EQ(0U, c2.released);

	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/*
 * SNAPSHOT reports each page as the CPU page table has it and faults
 * nothing in: hole, zero page, writable, read-only, no access.
 */
TEST_F(mirror, snapshot_page_states)
{
	size_t psz = self->psz;
	unsigned char *p = map_anon(5 * psz, MAP_PRIVATE);
	unsigned char snap[5], again[5];
	struct hmm_dummy_counters c0, c1;
	struct hmm_dummy_cmd cmd;

	ASSERT_NE(MAP_FAILED, p);
	/* Page 1 is read, never written: it maps the zero page. */
	if (madvise(p + psz, psz, MADV_POPULATE_READ))
		SKIP(return, "MADV_POPULATE_READ not supported");
	pat_fill(p + 2 * psz, 3 * psz, 19);	/* pages 2 to 4 */
	ASSERT_EQ(0, mprotect(p + 3 * psz, psz, PROT_READ));
	ASSERT_EQ(0, mprotect(p + 4 * psz, psz, PROT_NONE));
	ASSERT_EQ(0, get_counters(self->fd, &c0));

	memset(snap, 0x5a, sizeof(snap));
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, 5, &cmd));
	ASSERT_EQ(5U, cmd.cpages);
	ASSERT_EQ(0U, cmd.faults);
	ASSERT_EQ(HMM_DUMMY_PROT_NONE, snap[0]);
	ASSERT_EQ(HMM_DUMMY_PROT_ZERO | HMM_DUMMY_PROT_READ, snap[1]);
	ASSERT_EQ(HMM_DUMMY_PROT_WRITE, snap[2]);
	ASSERT_EQ(HMM_DUMMY_PROT_READ, snap[3]);
	/* No access: nothing a device could mirror, as in test_hmm. */
	ASSERT_EQ(HMM_DUMMY_PROT_ERROR, snap[4]);

	/* Nothing was faulted in: the hole is still a hole. */
	memset(again, 0x5a, sizeof(again));
	ASSERT_EQ(0, dev_snap(self->fd, p, again, 5, &cmd));
	ASSERT_EQ(0, memcmp(snap, again, sizeof(snap)));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_EQ(c0.faults, c1.faults);

	ASSERT_EQ(0, mprotect(p + 4 * psz, psz, PROT_READ));
	ASSERT_EQ(-1, pat_diff(p + 2 * psz, 3 * psz, 19));
	ASSERT_EQ(-1, zero_diff(p, 2 * psz));
	ASSERT_EQ(0, munmap(p, 5 * psz));
}

/* 2. Protections. */

TEST_F(mirror, prot_none_read_fails_until_readable)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_cmd cmd;
	void *p = map_anon(len, MAP_PRIVATE);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 21);
	ASSERT_EQ(0, mprotect(p, len, PROT_NONE));

	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, buf, n, &cmd));

	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	pat_fill(buf, len, 1021);
	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, 21));

	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

TEST_F(mirror, readonly_write_fails_until_writable)
{
	struct hmm_dummy_cmd cmd;
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	void *p = map_anon(len, MAP_PRIVATE);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 23);
	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	good_read(_metadata, self->fd, p, len, self->psz, 23);

	pat_fill(buf, len, 24);
	ASSERT_EQ(-EPERM, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(-1, pat_diff(p, len, 23));

	ASSERT_EQ(0, mprotect(p, len, PROT_READ | PROT_WRITE));
	ASSERT_EQ(0, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(p, len, 24));
	good_read(_metadata, self->fd, p, len, self->psz, 24);

	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

TEST_F(mirror, snapshot_prot_none_reports_error)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char snap[NPAGES];
	struct hmm_dummy_cmd cmd;
	void *p = map_anon(len, MAP_PRIVATE);

	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 25);
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_WRITE));

	ASSERT_EQ(0, mprotect(p, len, PROT_NONE));
	memset(snap, 0x5a, sizeof(snap));
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_ERROR));

	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	ASSERT_EQ(-1, pat_diff(p, len, 25));
	good_read(_metadata, self->fd, p, len, self->psz, 25);
	ASSERT_EQ(0, munmap(p, len));
}

/* 3. Invalidations. */

/* munmap drops the device entries; new memory at the address is seen. */
TEST_F(mirror, munmap_invalidates_mirror)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_counters c0, c1;
	struct hmm_dummy_cmd cmd;
	void *p = map_anon(len, MAP_PRIVATE);
	void *q;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 27);
	good_read(_metadata, self->fd, p, len, self->psz, 27);
	ASSERT_EQ(0, get_counters(self->fd, &c0));
	ASSERT_LE(n, c0.mirrored);

	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_TRUE(grew(&c0, &c1, HMM_DUMMY_EVENT_UNMAP));
	ASSERT_EQ(n, c0.mirrored - c1.mirrored);
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, buf, n, &cmd));
	/* A snapshot reports a range without a mapping as errors. */
	memset(buf, 0x5a, n);
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(-1, prot_diff(buf, n, HMM_DUMMY_PROT_ERROR));

	q = mmap(p, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(p, q);
	pat_fill(q, len, 28);
	pat_fill(buf, len, 1027);
	ASSERT_EQ(0, dev_read(self->fd, q, buf, n, &cmd));
	ASSERT_LE(1U, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, len, 28));

	ASSERT_EQ(0, munmap(q, len));
	free(buf);
}

/* mprotect(PROT_READ) takes away the device's write access. */
TEST_F(mirror, mprotect_readonly_invalidates_write)
{
	struct hmm_dummy_cmd cmd;
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_counters c0, c1;
	void *p = map_anon(len, MAP_PRIVATE);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 29);
	pat_fill(buf, len, 30);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(-1, pat_diff(p, len, 30));
	ASSERT_EQ(0, get_counters(self->fd, &c0));

	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_TRUE(grew(&c0, &c1, HMM_DUMMY_EVENT_PROTECT));

	pat_fill(buf, len, 31);
	ASSERT_EQ(-EPERM, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(-1, pat_diff(p, len, 30));
	good_read(_metadata, self->fd, p, len, self->psz, 30);

	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/* After MADV_DONTNEED the device reads fresh zero pages, not old data. */
TEST_F(mirror, madvise_dontneed_reads_zeros)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	unsigned char snap[NPAGES];
	struct hmm_dummy_counters c0, c1;
	struct hmm_dummy_cmd cmd;
	void *p = map_anon(len, MAP_PRIVATE);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 33);
	good_read(_metadata, self->fd, p, len, self->psz, 33);
	ASSERT_EQ(0, get_counters(self->fd, &c0));

	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_TRUE(grew(&c0, &c1, HMM_DUMMY_EVENT_CLEAR) ||
		    grew(&c0, &c1, HMM_DUMMY_EVENT_UNMAP));
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, &cmd));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_NONE));

	pat_fill(buf, len, 1033);
	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_LE(1U, cmd.faults);
	ASSERT_EQ(-1, zero_diff(buf, len));
	ASSERT_EQ(-1, zero_diff(p, len));

	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/* mremap moves the data: found at the new address, gone from the old. */
TEST_F(mirror, mremap_moves_mirror)
{
	struct hmm_dummy_counters c0, c1;
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_cmd cmd;
	void *p = map_anon(len, MAP_PRIVATE);
	void *dst, *q;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	dst = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	pat_fill(p, len, 35);
	good_read(_metadata, self->fd, p, len, self->psz, 35);
	ASSERT_EQ(0, get_counters(self->fd, &c0));

	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, q);
	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_TRUE(grew(&c0, &c1, HMM_DUMMY_EVENT_UNMAP));

	pat_fill(buf, len, 1035);
	ASSERT_EQ(0, dev_read(self->fd, q, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_LE(1U, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, len, 35));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(-1, pat_diff(q, len, 35));

	ASSERT_EQ(0, munmap(q, len));
	free(buf);
}

/*
 * Child side of fork_cow_keeps_data_apart. Returns 0 or the number of
 * the step that went wrong.
 */
static int cow_child(int dev, void *p, size_t len, size_t psz, int rd, int wr)
{
	unsigned char *buf = malloc(len);
	char b;
	int fd;

	if (!buf || read(rd, &b, 1) != 1)
		return 1;
	/* The parent wrote pattern 38 through its device: not seen here. */
	if (pat_diff(p, len, 37) != -1)
		return 2;
	pat_fill(p, len, 39);
	fd = dummy_open(dev);
	if (fd < 0)
		return 3;
	memset(buf, 0, len);
	if (dev_read(fd, p, buf, len / psz, NULL) || pat_diff(buf, len, 39) != -1)
		return 4;
	if (write(wr, "c", 1) != 1 || read(rd, &b, 1) != 1)
		return 5;
	memset(buf, 0, len);
	if (dev_read(fd, p, buf, len / psz, NULL) || pat_diff(buf, len, 39) != -1)
		return 6;
	close(fd);
	free(buf);
	return 0;
}

/*
 * After fork, the parent writes through its device (breaking COW) and
 * the child through the CPU; each one's device reads its own data only.
 */
TEST_F(mirror, fork_cow_keeps_data_apart)
{
	struct hmm_dummy_cmd cmd;
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_counters c0, c1, c2;
	void *p = map_anon(len, MAP_PRIVATE);
	int p2c[2], c2p[2];
	pid_t pid;
	char b;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe(p2c));
	ASSERT_EQ(0, pipe(c2p));
	pat_fill(p, len, 37);
	good_read(_metadata, self->fd, p, len, self->psz, 37);
	ASSERT_EQ(0, get_counters(self->fd, &c0));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p2c[1]);
		close(c2p[0]);
		_exit(cow_child(self->dev, p, len, self->psz, p2c[0], c2p[1]));
	}
	close(p2c[0]);
	close(c2p[1]);

	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_TRUE(grew(&c0, &c1, HMM_DUMMY_EVENT_PROTECT));

	pat_fill(buf, len, 38);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(0, get_counters(self->fd, &c2));
	ASSERT_TRUE(grew(&c1, &c2, HMM_DUMMY_EVENT_CLEAR));
	ASSERT_EQ(-1, pat_diff(p, len, 38));

	ASSERT_EQ(1, write(p2c[1], "p", 1));
	ASSERT_EQ(1, read(c2p[0], &b, 1));
	/* The child has written pattern 39 into its copy by now. */
	good_read(_metadata, self->fd, p, len, self->psz, 38);
	ASSERT_EQ(-1, pat_diff(p, len, 38));
	ASSERT_EQ(1, write(p2c[1], "p", 1));
	ASSERT_EQ(0, wait_child(pid));
	good_read(_metadata, self->fd, p, len, self->psz, 38);

	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/* 4. Lifetime of the mirror. */

/* A forked child exiting does not end the parent's mirror. */
TEST_F(mirror, child_exit_leaves_parent_mirror)
{
	size_t len = NPAGES * self->psz;
	struct hmm_dummy_counters c0, c1;
	struct hmm_dummy_info i0, i1;
	void *p = map_anon(len, MAP_PRIVATE);
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 41);
	good_read(_metadata, self->fd, p, len, self->psz, 41);
	ASSERT_EQ(0, get_counters(self->fd, &c0));
	ASSERT_EQ(0, get_info(self->fd, &i0));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child's copy changes, then its mm goes away. */
		pat_fill(p, len, 42);
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));

	ASSERT_EQ(0, get_counters(self->fd, &c1));
	ASSERT_EQ(0U, c1.released);
	ASSERT_EQ(c0.invalidations[HMM_DUMMY_EVENT_RELEASE],
		  c1.invalidations[HMM_DUMMY_EVENT_RELEASE]);
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.mirrors, i1.mirrors);
	ASSERT_EQ(i0.releases, i1.releases);
	good_read(_metadata, self->fd, p, len, self->psz, 41);
	ASSERT_EQ(-1, pat_diff(p, len, 41));
	ASSERT_EQ(0, munmap(p, len));
}

/*
 * Child side of opener_exit_releases_once: open the device, mirror some
 * memory, let the parent take the file, wait for its go and exit.
 */
static int opener_child(int dev, int up, int down, size_t psz)
{
	size_t len = 4 * psz;
	unsigned char *buf = malloc(len);
	void *p = map_anon(len, MAP_PRIVATE);
	char b;
	int fd;

	if (!buf || p == MAP_FAILED)
		return 1;
	pat_fill(p, len, 43);
	fd = dummy_open(dev);
	if (fd < 0)
		return 2;
	if (dev_read(fd, p, buf, 4, NULL) || pat_diff(buf, len, 43) != -1)
		return 3;
	/* Tell the parent which descriptor to take, wait for its go. */
	if (write(up, &fd, sizeof(fd)) != sizeof(fd))
		return 4;
	if (read(down, &b, 1) != 1)
		return 5;
	return 0;
}

/*
 * The opener exits while another process holds its file: the mirror is
 * released exactly once, data commands fail with ENODEV, and closing the
 * file later does not release it again.
 */
TEST_F(mirror, opener_exit_releases_once)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_info i0, i1;
	struct hmm_dummy_counters c;
	void *p = map_anon(len, MAP_PRIVATE);
	int up[2], down[2], cfd, rfd;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 45);
	ASSERT_EQ(0, get_info(self->fd, &i0));
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(up[0]);
		close(down[1]);
		_exit(opener_child(self->dev, up[1], down[0], self->psz));
	}
	close(up[1]);
	close(down[0]);
	ASSERT_EQ(sizeof(cfd), read(up[0], &cfd, sizeof(cfd)));
	rfd = steal_fd(pid, cfd);
	ASSERT_LE(0, rfd) TH_LOG("pidfd_getfd: %s", strerror(errno));

	/* The child is alive: its mirror is registered and not released. */
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.mirrors + 1, i1.mirrors);
	ASSERT_EQ(i0.releases, i1.releases);
	ASSERT_EQ(0, get_counters(rfd, &c));
	ASSERT_EQ(0U, c.released);
	ASSERT_LE(4U, c.mirrored);

	ASSERT_EQ(1, write(down[1], "g", 1));
	ASSERT_EQ(0, wait_child(pid));

	ASSERT_EQ(0, get_counters(rfd, &c));
	ASSERT_EQ(1U, c.released);
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.releases + 1, i1.releases);

	pat_fill(buf, len, 46);
	ASSERT_EQ(-ENODEV, dev_read(rfd, p, buf, n, NULL));
	ASSERT_EQ(-ENODEV, dev_write(rfd, p, buf, n, NULL));
	ASSERT_EQ(-ENODEV, dev_snap(rfd, p, buf, n, NULL));
	ASSERT_EQ(-1, pat_diff(p, len, 45));

	ASSERT_EQ(0, close(rfd));
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.releases + 1, i1.releases);
	ASSERT_EQ(i0.mirrors, i1.mirrors);

	/* Our own mirror of the same device is untouched. */
	ASSERT_EQ(0, get_counters(self->fd, &c));
	ASSERT_EQ(0U, c.released);
	good_read(_metadata, self->fd, p, len, self->psz, 45);
	close(up[0]);
	close(down[1]);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/* Opening adds a mirror; closing removes it and counts one release. */
TEST_F(mirror, close_ends_mirror)
{
	size_t len = NPAGES * self->psz;
	struct hmm_dummy_info i0, i1;
	struct hmm_dummy_counters c;
	void *p = map_anon(len, MAP_PRIVATE);
	int fd;

	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 47);
	ASSERT_EQ(0, get_info(self->fd, &i0));
	ASSERT_EQ((__u32)self->dev, i0.device);

	fd = dummy_open(self->dev);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.mirrors + 1, i1.mirrors);
	ASSERT_EQ(i0.releases, i1.releases);

	good_read(_metadata, fd, p, len, self->psz, 47);
	ASSERT_EQ(0, get_counters(fd, &c));
	ASSERT_EQ(0U, c.released);

	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.mirrors, i1.mirrors);
	ASSERT_EQ(i0.releases + 1, i1.releases);

	/* The fixture's own file still mirrors the same memory. */
	good_read(_metadata, self->fd, p, len, self->psz, 47);
	ASSERT_EQ(0, munmap(p, len));
}

/* Two devices mirror one mm, each with its own page table. */
TEST_F(mirror, two_devices_mirror_one_mm)
{
	size_t len = NPAGES * self->psz;
	__u64 n = NPAGES;
	unsigned char *buf = malloc(len);
	struct hmm_dummy_counters a0, a1, b0, b1;
	struct hmm_dummy_cmd cmd;
	void *p = map_anon(len, MAP_PRIVATE);
	int fa = self->fd, fb;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	fb = dummy_open(!self->dev);
	if (fb < 0 && errno == ENOENT)
		SKIP(return, "/dev/hmm_dummy%d is missing", !self->dev);
	ASSERT_LE(0, fb);
	pat_fill(p, len, 49);

	/* Device A's faults do not fill device B's page table. */
	good_read(_metadata, fa, p, len, self->psz, 49);
	ASSERT_EQ(0, dev_read(fa, p, buf, n, &cmd));
	ASSERT_EQ(0U, cmd.faults);
	pat_fill(buf, len, 1049);
	ASSERT_EQ(0, dev_read(fb, p, buf, n, &cmd));
	ASSERT_LE(1U, cmd.faults);
	ASSERT_EQ(-1, pat_diff(buf, len, 49));

	/* What B writes, A and the CPU read. */
	pat_fill(buf, len, 50);
	ASSERT_EQ(0, dev_write(fb, p, buf, n, &cmd));
	good_read(_metadata, fa, p, len, self->psz, 50);
	ASSERT_EQ(-1, pat_diff(p, len, 50));

	ASSERT_EQ(0, get_counters(fa, &a0));
	ASSERT_EQ(0, get_counters(fb, &b0));
	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	ASSERT_EQ(0, get_counters(fa, &a1));
	ASSERT_EQ(0, get_counters(fb, &b1));
	ASSERT_TRUE(grew(&a0, &a1, HMM_DUMMY_EVENT_PROTECT));
	ASSERT_TRUE(grew(&b0, &b1, HMM_DUMMY_EVENT_PROTECT));
	pat_fill(buf, len, 51);
	ASSERT_EQ(-EPERM, dev_write(fa, p, buf, n, &cmd));
	ASSERT_EQ(-EPERM, dev_write(fb, p, buf, n, &cmd));
	ASSERT_EQ(-1, pat_diff(p, len, 50));
	good_read(_metadata, fa, p, len, self->psz, 50);
	good_read(_metadata, fb, p, len, self->psz, 50);

	a0 = a1;
	b0 = b1;
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	ASSERT_EQ(0, get_counters(fa, &a1));
	ASSERT_EQ(0, get_counters(fb, &b1));
	ASSERT_TRUE(grew(&a0, &a1, HMM_DUMMY_EVENT_CLEAR) ||
		    grew(&a0, &a1, HMM_DUMMY_EVENT_UNMAP));
	ASSERT_TRUE(grew(&b0, &b1, HMM_DUMMY_EVENT_CLEAR) ||
		    grew(&b0, &b1, HMM_DUMMY_EVENT_UNMAP));
	pat_fill(buf, len, 1051);
	ASSERT_EQ(0, dev_read(fa, p, buf, n, &cmd));
	ASSERT_EQ(-1, zero_diff(buf, len));
	pat_fill(buf, len, 1051);
	ASSERT_EQ(0, dev_read(fb, p, buf, n, &cmd));
	ASSERT_EQ(-1, zero_diff(buf, len));

	a0 = a1;
	b0 = b1;
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, get_counters(fa, &a1));
	ASSERT_EQ(0, get_counters(fb, &b1));
	ASSERT_TRUE(grew(&a0, &a1, HMM_DUMMY_EVENT_UNMAP));
	ASSERT_TRUE(grew(&b0, &b1, HMM_DUMMY_EVENT_UNMAP));
	ASSERT_EQ(-EFAULT, dev_read(fa, p, buf, n, &cmd));
	ASSERT_EQ(-EFAULT, dev_read(fb, p, buf, n, &cmd));
	close(fb);
	free(buf);
}

/* Child side of inherited_fd_in_child_eperm. */
static int inherited_fd_child(int fd, void *p, size_t len, size_t psz)
{
	unsigned char *buf = malloc(len);
	__u64 n = len / psz;

	if (!buf)
		return 1;
	pat_fill(buf, len, 54);
	if (dev_read(fd, p, buf, n, NULL) != -EPERM)
		return 2;
	if (dev_write(fd, p, buf, n, NULL) != -EPERM)
		return 3;
	if (dev_snap(fd, p, buf, n, NULL) != -EPERM)
		return 4;
	if (pat_diff(p, len, 53) != -1 || pat_diff(buf, len, 54) != -1)
		return 5;
	free(buf);
	return 0;
}

/* A forked child cannot drive the parent's mirror through the inherited fd. */
TEST_F(mirror, inherited_fd_in_child_eperm)
{
	size_t len = NPAGES * self->psz;
	struct hmm_dummy_counters c;
	void *p = map_anon(len, MAP_PRIVATE);
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 53);
	good_read(_metadata, self->fd, p, len, self->psz, 53);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(inherited_fd_child(self->fd, p, len, self->psz));
	ASSERT_EQ(0, wait_child(pid));

	ASSERT_EQ(0, get_counters(self->fd, &c));
	ASSERT_EQ(0U, c.released);
	ASSERT_EQ(-1, pat_diff(p, len, 53));
	good_read(_metadata, self->fd, p, len, self->psz, 53);
	ASSERT_EQ(0, munmap(p, len));
}

/* 5. Races. */

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Give the other threads a chance to move @v, but not forever. */
static void wait_for_change(atomic_ulong *v)
{
	unsigned long start = atomic_load(v);
	int i;

	for (i = 0; i < RACE_YIELDS && atomic_load(v) == start; i++)
		sched_yield();
}

/*
 * READ racing with remapping. One page, at @addr, is replaced again and
 * again by a page of a new generation, and between two generations is
 * made inaccessible (mprotect or a PROT_NONE mmap over it). A generation
 * g is prepared off to the side and moved in whole with mremap(), so a
 * READ has no legitimate way to see a half-written page. A successful
 * READ must return a whole generation that was mapped at @addr at some
 * point during the READ: not older than the last one known to be gone
 * when the READ started (@hidden), not newer than the last one shown
 * when it returned (@shown).
 */
struct read_race {
	int fd;
	unsigned char *addr;
	size_t psz;
	atomic_uint shown;
	atomic_uint hidden;
	atomic_int stop;
	atomic_ulong ok;
	atomic_ulong failed;
	atomic_ulong torn;
	atomic_ulong stale;
	atomic_int bad_errno;
};

static void *read_race_reader(void *arg)
{
	struct read_race *r = arg;
	unsigned char *buf = malloc(r->psz);
	unsigned int lo, hi, gen;
	int ret;

	if (!buf) {
		atomic_store(&r->bad_errno, ENOMEM);
		return NULL;
	}
	while (!atomic_load(&r->stop)) {
		memset(buf, 0, r->psz);
		lo = atomic_load(&r->hidden);
		ret = dev_read(r->fd, r->addr, buf, 1, NULL);
		hi = atomic_load(&r->shown);
		if (ret) {
			if (ret != -EFAULT && ret != -EPERM)
				atomic_store(&r->bad_errno, -ret);
			atomic_fetch_add(&r->failed, 1);
			continue;
		}
		atomic_fetch_add(&r->ok, 1);
		gen = gen_check(buf, r->psz);
		if (!gen)
			atomic_fetch_add(&r->torn, 1);
		else if (gen <= lo || gen > hi)
			atomic_fetch_add(&r->stale, 1);
	}
	free(buf);
	return NULL;
}

/* Show generation @gen at r->addr, then take it away. */
static int read_race_round(struct read_race *r, unsigned int gen)
{
	void *p, *q;
	int ret;

	p = mmap(NULL, r->psz, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	gen_fill(p, r->psz, gen);
	atomic_store(&r->shown, gen);
	q = mremap(p, r->psz, r->psz, MREMAP_MAYMOVE | MREMAP_FIXED, r->addr);
	if (q != r->addr)
		return -errno;
	wait_for_change(&r->ok);

	if (gen & 1) {
		ret = mprotect(r->addr, r->psz, PROT_NONE);
	} else {
		q = mmap(r->addr, r->psz, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		ret = q == r->addr ? 0 : -1;
	}
	if (ret)
		return -errno;
	atomic_store(&r->hidden, gen);
	wait_for_change(&r->failed);
	return 0;
}

TEST_F_TIMEOUT(mirror, race_read_vs_remap, 60)
{
	pthread_t th[RACE_READERS];
	unsigned long ok, torn, stale;
	struct read_race *r = calloc(1, sizeof(*r));
	double end = now_seconds() + RACE_SECONDS;
	unsigned char *area;
	unsigned int gen;
	int i, nth, err = 0;

	ASSERT_NE(NULL, r);
	/* Three pages of our own; the race happens on the middle one. */
	area = mmap(NULL, 3 * self->psz, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	r->fd = self->fd;
	r->addr = area + self->psz;
	r->psz = self->psz;

	for (nth = 0; nth < RACE_READERS; nth++)
		if (pthread_create(&th[nth], NULL, read_race_reader, r))
			break;
	if (nth < RACE_READERS)
		err = -EAGAIN;
	for (gen = 1; !err && gen <= RACE_ROUNDS && now_seconds() < end; gen++)
		err = read_race_round(r, gen);
	atomic_store(&r->stop, 1);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);

	ok = atomic_load(&r->ok);
	torn = atomic_load(&r->torn);
	stale = atomic_load(&r->stale);
	TH_LOG("%u rounds, %lu reads ok, %lu failed", gen - 1, ok,
	       (unsigned long)atomic_load(&r->failed));
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, atomic_load(&r->bad_errno));
	ASSERT_EQ(0U, torn);
	ASSERT_EQ(0U, stale);
	ASSERT_LT(0U, ok);
	ASSERT_EQ(0, munmap(area, 3 * self->psz));
	free(r);
}

/*
 * WRITE racing with mprotect. A writer thread WRITEs one page through the
 * device, a new generation each time, while the test flips the page
 * between read-write and read-only. While it is read-only no WRITE may
 * land: the page must keep the content it had when mprotect() returned,
 * and that content is always one whole generation.
 */
struct write_race {
	int fd;
	unsigned char *addr;
	size_t psz;
	atomic_uint issued;
	atomic_int stop;
	atomic_ulong ok;
	atomic_ulong failed;
	atomic_int bad_errno;
};

static void *write_race_writer(void *arg)
{
	struct write_race *w = arg;
	unsigned char *buf = malloc(w->psz);
	unsigned int gen = atomic_load(&w->issued);
	int ret;

	if (!buf) {
		atomic_store(&w->bad_errno, ENOMEM);
		return NULL;
	}
	while (!atomic_load(&w->stop)) {
		gen_fill(buf, w->psz, ++gen);
		atomic_store(&w->issued, gen);
		ret = dev_write(w->fd, w->addr, buf, 1, NULL);
		if (!ret) {
			atomic_fetch_add(&w->ok, 1);
			continue;
		}
		if (ret != -EPERM && ret != -EFAULT)
			atomic_store(&w->bad_errno, -ret);
		atomic_fetch_add(&w->failed, 1);
	}
	free(buf);
	return NULL;
}

struct write_race_bad {
	unsigned long torn;	/* read-only content not a whole generation */
	unsigned long landed;	/* content changed while read-only */
	unsigned long mismatch;	/* device READ differs from the CPU */
};

/* One read-write window, then one read-only window. */
static int write_race_round(struct write_race *w, unsigned char *snap,
			    unsigned char *buf, struct write_race_bad *bad)
{
	uint32_t gen;

	if (mprotect(w->addr, w->psz, PROT_READ | PROT_WRITE))
		return -errno;
	wait_for_change(&w->ok);
	if (mprotect(w->addr, w->psz, PROT_READ))
		return -errno;

	memcpy(snap, w->addr, w->psz);
	gen = gen_check(snap, w->psz);
	if (!gen || gen > atomic_load(&w->issued))
		bad->torn++;
	wait_for_change(&w->failed);
	memset(buf, 0, w->psz);
	if (dev_read(w->fd, w->addr, buf, 1, NULL) || memcmp(buf, snap, w->psz))
		bad->mismatch++;
	if (memcmp(snap, w->addr, w->psz))
		bad->landed++;
	return 0;
}

TEST_F_TIMEOUT(mirror, race_write_vs_mprotect, 60)
{
	struct write_race *w = calloc(1, sizeof(*w));
	unsigned char *snap = malloc(self->psz);
	unsigned char *buf = malloc(self->psz);
	double end = now_seconds() + RACE_SECONDS;
	struct write_race_bad bad = { 0 };
	unsigned long ok, failed;
	unsigned char *area;
	pthread_t th;
	int round, err = 0;

	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, snap);
	ASSERT_NE(NULL, buf);
	area = map_anon(3 * self->psz, MAP_PRIVATE);
	ASSERT_NE(MAP_FAILED, area);
	w->fd = self->fd;
	w->addr = area + self->psz;
	w->psz = self->psz;
	gen_fill(w->addr, self->psz, 1);
	atomic_store(&w->issued, 1);

	ASSERT_EQ(0, pthread_create(&th, NULL, write_race_writer, w));
	for (round = 0; !err && round < RACE_ROUNDS && now_seconds() < end; round++)
		err = write_race_round(w, snap, buf, &bad);
	atomic_store(&w->stop, 1);
	pthread_join(th, NULL);

	ok = atomic_load(&w->ok);
	failed = atomic_load(&w->failed);
	TH_LOG("%d rounds, %lu writes ok, %lu failed", round, ok, failed);
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, atomic_load(&w->bad_errno));
	ASSERT_EQ(0U, bad.torn);
	ASSERT_EQ(0U, bad.landed);
	ASSERT_EQ(0U, bad.mismatch);
	ASSERT_LT(0U, ok);
	ASSERT_LT(0U, failed);
	/* The last content is still one whole generation, seen by both. */
	ASSERT_NE(0U, gen_check(w->addr, self->psz));
	memset(buf, 0, self->psz);
	ASSERT_EQ(0, dev_read(self->fd, w->addr, buf, 1, NULL));
	ASSERT_EQ(0, memcmp(buf, w->addr, self->psz));
	ASSERT_EQ(0, munmap(area, 3 * self->psz));
	free(buf);
	free(snap);
	free(w);
}

/* 6. Bad input. */

static const unsigned long data_cmds[] = {
	HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_SNAPSHOT,
};

#define NR_DATA_CMDS	ARRAY_SIZE(data_cmds)

TEST_F(mirror, bad_unaligned_addr)
{
	size_t len = 2 * self->psz;
	unsigned char *buf = malloc(len);
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	size_t i;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 61);
	for (i = 0; i < NR_DATA_CMDS; i++) {
		pat_fill(buf, len, 62);
		ASSERT_EQ(-EINVAL, dummy_cmd(self->fd, data_cmds[i],
					     (uintptr_t)p + 1, buf, 1, NULL));
		ASSERT_EQ(-EINVAL, dummy_cmd(self->fd, data_cmds[i],
					     (uintptr_t)p + self->psz / 2, buf, 1, NULL));
		ASSERT_EQ(-1, pat_diff(buf, len, 62));
		ASSERT_EQ(-1, pat_diff(p, len, 61));
	}
	good_read(_metadata, self->fd, p, len, self->psz, 61);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

TEST_F(mirror, bad_zero_npages)
{
	size_t len = self->psz;
	unsigned char *buf = malloc(len);
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	size_t i;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 63);
	for (i = 0; i < NR_DATA_CMDS; i++) {
		pat_fill(buf, len, 64);
		ASSERT_EQ(-EINVAL, dummy_cmd(self->fd, data_cmds[i],
					     (uintptr_t)p, buf, 0, NULL));
		ASSERT_EQ(-1, pat_diff(buf, len, 64));
		ASSERT_EQ(-1, pat_diff(p, len, 63));
	}
	good_read(_metadata, self->fd, p, len, self->psz, 63);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/*
 * More than HMM_DUMMY_MAX_PAGES is E2BIG, also when the count would look
 * small if cut to 32 bits. HMM_DUMMY_MAX_PAGES itself is accepted: the
 * hole after the first page is what fails it.
 */
TEST_F(mirror, bad_too_many_pages)
{
	static const __u64 big[] = {
		HMM_DUMMY_MAX_PAGES + 1, (1ULL << 32) + 1, 1ULL << 40,
	};
	unsigned char *buf = malloc(HMM_DUMMY_MAX_PAGES);
	unsigned char *p = map_anon(2 * self->psz, MAP_PRIVATE);
	struct hmm_dummy_cmd cmd;
	size_t i, j;
	int ret;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p + self->psz, self->psz));
	pat_fill(p, self->psz, 65);
	for (i = 0; i < NR_DATA_CMDS; i++) {
		pat_fill(buf, self->psz, 66);
		for (j = 0; j < ARRAY_SIZE(big); j++)
			ASSERT_EQ(-E2BIG, dummy_cmd(self->fd, data_cmds[i],
						    (uintptr_t)p, buf, big[j], NULL));
		/* Too big and overflowing: either error will do. */
		ret = dummy_cmd(self->fd, data_cmds[i], (uintptr_t)p, buf, ~0ULL, NULL);
		ASSERT_TRUE(ret == -E2BIG || ret == -EINVAL);
		ASSERT_EQ(-1, pat_diff(buf, self->psz, 66));
		ASSERT_EQ(-1, pat_diff(p, self->psz, 65));
	}
	/* The largest count is accepted; the hole after p reads as errors. */
	memset(buf, 0x5a, HMM_DUMMY_MAX_PAGES);
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, HMM_DUMMY_MAX_PAGES, &cmd));
	ASSERT_EQ(HMM_DUMMY_MAX_PAGES, cmd.cpages);
	ASSERT_EQ(HMM_DUMMY_PROT_WRITE, buf[0]);
	ASSERT_EQ(HMM_DUMMY_PROT_ERROR, buf[1]);
	good_read(_metadata, self->fd, p, self->psz, self->psz, 65);
	ASSERT_EQ(0, munmap(p, self->psz));
	free(buf);
}

/* addr + npages * page size wrapping around is EINVAL. */
TEST_F(mirror, bad_range_overflow)
{
	__u64 psz = self->psz;
	struct {
		__u64 addr;
		__u64 npages;
	} bad[] = {
		{ -psz, 2 },
		{ -psz, HMM_DUMMY_MAX_PAGES },
		{ -(16 * psz), 17 },
		{ -(4 * psz), HMM_DUMMY_MAX_PAGES },
	};
	unsigned char *buf = malloc(HMM_DUMMY_MAX_PAGES);
	size_t i, j;

	ASSERT_NE(NULL, buf);
	for (i = 0; i < NR_DATA_CMDS; i++) {
		pat_fill(buf, psz, 67);
		for (j = 0; j < ARRAY_SIZE(bad); j++)
			ASSERT_EQ(-EINVAL, dummy_cmd(self->fd, data_cmds[i], bad[j].addr,
						     buf, bad[j].npages, NULL));
		ASSERT_EQ(-1, pat_diff(buf, psz, 67));
	}
	free(buf);
}

/* A user buffer the kernel cannot write (READ, SNAPSHOT) or read (WRITE). */
TEST_F(mirror, bad_user_buffer)
{
	size_t psz = self->psz;
	unsigned char *p = map_anon(2 * psz, MAP_PRIVATE);
	unsigned char *ro = map_anon(2 * psz, MAP_PRIVATE);
	unsigned char *none = map_anon(2 * psz, MAP_PRIVATE);
	void *kbuf = (void *)(uintptr_t)KERNEL_ADDR;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_NE(MAP_FAILED, none);
	pat_fill(p, 2 * psz, 69);
	pat_fill(ro, 2 * psz, 70);
	ASSERT_EQ(0, mprotect(ro, 2 * psz, PROT_READ));
	ASSERT_EQ(0, mprotect(none, 2 * psz, PROT_NONE));

	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, NULL, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, ro, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, none, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, kbuf, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_snap(self->fd, p, NULL, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_snap(self->fd, p, ro, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_write(self->fd, p, NULL, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_write(self->fd, p, none, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_write(self->fd, p, kbuf, 2, NULL));
	/* Half of the buffer is good: still EFAULT. */
	ASSERT_EQ(0, mprotect(ro, 2 * psz, PROT_READ | PROT_WRITE));
	ASSERT_EQ(0, mprotect(ro + psz, psz, PROT_NONE));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, ro, 2, NULL));

	ASSERT_EQ(-1, pat_diff(p, 2 * psz, 69));
	good_read(_metadata, self->fd, p, 2 * psz, psz, 69);
	ASSERT_EQ(0, munmap(p, 2 * psz));
	ASSERT_EQ(0, munmap(ro, 2 * psz));
	ASSERT_EQ(0, munmap(none, 2 * psz));
}

/* A NULL or unwritable struct hmm_dummy_cmd, and NULL for the others. */
TEST_F(mirror, bad_cmd_pointer)
{
	size_t psz = self->psz;
	unsigned char *buf = malloc(psz);
	unsigned char *p = map_anon(psz, MAP_PRIVATE);
	struct hmm_dummy_cmd *cmd;
	size_t i;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, psz, 71);
	for (i = 0; i < NR_DATA_CMDS; i++) {
		ASSERT_EQ(-1, ioctl(self->fd, data_cmds[i], NULL));
		ASSERT_EQ(EFAULT, errno);
	}
	ASSERT_EQ(-1, ioctl(self->fd, HMM_DUMMY_COUNTERS, NULL));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(-1, ioctl(self->fd, HMM_DUMMY_INFO, NULL));
	ASSERT_EQ(EFAULT, errno);

	/* The command is read fine but its results cannot be written back. */
	cmd = mmap(NULL, psz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, cmd);
	cmd->addr = (uintptr_t)p;
	cmd->ptr = (uintptr_t)buf;
	cmd->npages = 1;
	ASSERT_EQ(0, mprotect(cmd, psz, PROT_READ));
	ASSERT_EQ(-1, ioctl(self->fd, HMM_DUMMY_READ, cmd));
	ASSERT_EQ(EFAULT, errno);

	ASSERT_EQ(-1, pat_diff(p, psz, 71));
	good_read(_metadata, self->fd, p, psz, psz, 71);
	ASSERT_EQ(0, munmap(cmd, psz));
	ASSERT_EQ(0, munmap(p, psz));
	free(buf);
}

/* Ranges with holes: at the start, at the end, in the middle. */
TEST_F(mirror, bad_unmapped_range)
{
	size_t psz = self->psz;
	unsigned char *buf = malloc(4 * psz);
	unsigned char *p = map_anon(4 * psz, MAP_PRIVATE);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	/* Pages 0 and 2 mapped, 1 and 3 holes. */
	ASSERT_EQ(0, munmap(p + psz, psz));
	ASSERT_EQ(0, munmap(p + 3 * psz, psz));
	pat_fill(p, psz, 73);
	pat_fill(p + 2 * psz, psz, 74);

	ASSERT_EQ(-EFAULT, dev_read(self->fd, p + psz, buf, 1, NULL));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, buf, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p + psz, buf, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p + 2 * psz, buf, 2, NULL));
	ASSERT_EQ(-EFAULT, dev_read(self->fd, p, buf, 4, NULL));
	memset(buf, 0x5a, 3);
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, 3, NULL));
	ASSERT_EQ(HMM_DUMMY_PROT_WRITE, buf[0]);
	ASSERT_EQ(HMM_DUMMY_PROT_ERROR, buf[1]);
	ASSERT_EQ(HMM_DUMMY_PROT_WRITE, buf[2]);
	pat_fill(buf, 2 * psz, 75);
	ASSERT_EQ(-EFAULT, dev_write(self->fd, p + psz, buf, 1, NULL));
	ASSERT_EQ(-EFAULT, dev_write(self->fd, p + psz, buf, 2, NULL));

	ASSERT_EQ(-1, pat_diff(p, psz, 73));
	ASSERT_EQ(-1, pat_diff(p + 2 * psz, psz, 74));
	good_read(_metadata, self->fd, p, psz, psz, 73);
	good_read(_metadata, self->fd, p + 2 * psz, psz, psz, 74);
	ASSERT_EQ(0, munmap(p, psz));
	ASSERT_EQ(0, munmap(p + 2 * psz, psz));
	free(buf);
}

/*
 * Kernel addresses are outside the mirrored mm: EFAULT (no mapping
 * there) or EINVAL (rejected up front) are both fine. Address 0 is an
 * ordinary unmapped user address: EFAULT to access, ERROR to snapshot.
 */
TEST_F(mirror, bad_kernel_address)
{
	size_t len = NPAGES * self->psz;
	unsigned char *buf = malloc(len);
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	size_t i;
	int ret;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, 77);
	pat_fill(buf, len, 78);
	for (i = 0; i < NR_DATA_CMDS; i++) {
		ret = dummy_cmd(self->fd, data_cmds[i], KERNEL_ADDR, buf, 1, NULL);
		ASSERT_TRUE(ret == -EFAULT || ret == -EINVAL);
		ret = dummy_cmd(self->fd, data_cmds[i], KERNEL_ADDR, buf, NPAGES, NULL);
		ASSERT_TRUE(ret == -EFAULT || ret == -EINVAL);
	}
	ASSERT_EQ(-EFAULT, dev_read(self->fd, NULL, buf, 1, NULL));
	ASSERT_EQ(-EFAULT, dev_write(self->fd, NULL, buf, 1, NULL));
	buf[0] = 0x5a;
	ASSERT_EQ(0, dev_snap(self->fd, NULL, buf, 1, NULL));
	ASSERT_EQ(HMM_DUMMY_PROT_ERROR, buf[0]);
	ASSERT_EQ(-1, pat_diff(p, len, 77));
	good_read(_metadata, self->fd, p, len, self->psz, 77);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/*
 * A range just below the top of the 64-bit address space does not wrap,
 * so it is EFAULT (nothing mapped there), never EINVAL: the driver's
 * batches once wrapped past it (found by hmm_fuzz).
 */
TEST_F(mirror, bad_top_of_address_space)
{
	const __u64 top = 0xffffffffffff8000ULL;
	unsigned char buf[8 * 4096];
	__u64 n;

	ASSERT_GE(sizeof(buf), 7 * self->psz);
	for (n = 1; n <= 7; n++) {
		ASSERT_EQ(-EFAULT, dummy_cmd(self->fd, HMM_DUMMY_READ, top, buf, n, NULL));
		ASSERT_EQ(-EFAULT, dummy_cmd(self->fd, HMM_DUMMY_WRITE, top, buf, n, NULL));
	}
}

/*
 * The start of a VM_PFNMAP mapping of this process ("pf" in the VmFlags
 * of /proc/self/smaps), or 0. On x86 the vDSO has one: [vvar] up to 6.12,
 * [vvar_vclock] since the vDSO data moved to a generic store.
 */
static unsigned long find_pfnmap(void)
{
	unsigned long start = 0, from, to, found = 0;
	char line[512], perms[5];
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* A mapping's first line: "start-end perms offset ..." */
		if (sscanf(line, "%lx-%lx %4s", &from, &to, perms) == 3) {
			start = from;
			continue;
		}
		if (!strncmp(line, "VmFlags:", 8) && strstr(line, " pf"))
			found = start;
	}
	fclose(f);
	return found;
}

#ifdef UFFD_FEATURE_RWP
/*
 * A userfaultfd registered for read-write protection on @p, in the mode
 * @features asks for, with the range protected; -1 when the kernel has no
 * such thing.
 */
static int uffd_rwprotect(void *p, size_t len, __u64 features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_RWP,
	};
	struct uffdio_rwprotect rwp = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_RWPROTECT_MODE_RWP,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg) ||
	    ioctl(uffd, UFFDIO_RWPROTECT, &rwp)) {
		close(uffd);
		return -1;
	}
	return uffd;
}

/* Lift the protection from @p, then close @uffd. */
static void uffd_rwp_release(int uffd, void *p, size_t len)
{
	struct uffdio_rwprotect rwp = {
		.range = { .start = (uintptr_t)p, .len = len },
	};

	ioctl(uffd, UFFDIO_RWPROTECT, &rwp);
	close(uffd);
}
#endif

/*
 * userfaultfd's read-write protection keeps the ptes present but PROT_NONE:
 * no access may pass without a fault. The mirror reports such pages
 * missing, and a device read faults, which in the asynchronous mode lifts
 * the protection as a CPU access would. (In the synchronous mode such a
 * fault cannot wait for the handler: a debug kernel says so with a stack
 * dump, so the device read is only tried in the asynchronous one.)
 */
TEST_F(mirror, uffd_rwp_pages_are_not_mirrored)
{
#ifdef UFFD_FEATURE_RWP
	size_t n = 4, len = n * self->psz;
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	unsigned char *buf = malloc(len), *snap = malloc(n);
	int uffd;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, snap);
	pat_fill(p, len, 81);
	uffd = uffd_rwprotect(p, len, UFFD_FEATURE_RWP);
	if (uffd < 0)
		SKIP(return, "no userfaultfd read-write protection");
	memset(snap, 0x5a, n);
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, NULL));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_NONE))
		TH_LOG("a read-write protected page is mirrored as 0x%02x", snap[0]);
	uffd_rwp_release(uffd, p, len);

	/* Asynchronous: the device read resolves the protection itself. */
	uffd = uffd_rwprotect(p, len, UFFD_FEATURE_RWP | UFFD_FEATURE_RWP_ASYNC);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, dev_snap(self->fd, p, snap, n, NULL));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_NONE));
	ASSERT_EQ(0, dev_read(self->fd, p, buf, n, NULL));
	ASSERT_EQ(-1, pat_diff(buf, len, 81));
	uffd_rwp_release(uffd, p, len);
	ASSERT_EQ(-1, pat_diff(p, len, 81));
	ASSERT_EQ(0, munmap(p, len));
	free(snap);
	free(buf);
#else
	SKIP(return, "built without userfaultfd read-write protection");
#endif
}

/* hmm_range_fault() cannot handle VM_IO / VM_PFNMAP mappings. */
TEST_F(mirror, bad_pfnmap_vma)
{
	size_t len = self->psz;
	unsigned char *buf = malloc(len);
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	unsigned long vvar = find_pfnmap();

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	if (!vvar)
		SKIP(return, "no VM_PFNMAP mapping to try");
	pat_fill(p, len, 79);
	pat_fill(buf, len, 80);
	ASSERT_EQ(-EFAULT, dev_read(self->fd, (void *)vvar, buf, 1, NULL));
	ASSERT_EQ(-EFAULT, dev_write(self->fd, (void *)vvar, buf, 1, NULL));
	ASSERT_EQ(-1, pat_diff(buf, len, 80));
	good_read(_metadata, self->fd, p, len, self->psz, 79);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/*
 * Numbers the driver does not know are ENOTTY, including the READ number
 * with another size or direction, and must not run anything.
 */
TEST_F(mirror, bad_unknown_ioctl)
{
	static const unsigned long unknown[] = {
		0,
		_IO(HMM_DUMMY_IOC_MAGIC, 0xff),
		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x42, struct hmm_dummy_cmd),
		_IOR(HMM_DUMMY_IOC_MAGIC, 0x7f, __u64),
		_IOWR('h', 0x00, struct hmm_dummy_cmd),
		_IOW(HMM_DUMMY_IOC_MAGIC, 0x00, struct hmm_dummy_cmd),
		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x00, __u32),
		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x01, __u64),
	};
	size_t psz = self->psz;
	unsigned char *buf = malloc(psz);
	unsigned char *p = map_anon(psz, MAP_PRIVATE);
	struct hmm_dummy_cmd cmd;
	size_t i;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, psz, 81);
	pat_fill(buf, psz, 82);
	for (i = 0; i < ARRAY_SIZE(unknown); i++) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.addr = (uintptr_t)p;
		cmd.ptr = (uintptr_t)buf;
		cmd.npages = 1;
		errno = 0;
		ASSERT_EQ(-1, ioctl(self->fd, unknown[i], &cmd));
		ASSERT_EQ(ENOTTY, errno);
		ASSERT_EQ(-1, pat_diff(buf, psz, 82));
		ASSERT_EQ(-1, pat_diff(p, psz, 81));
	}
	good_read(_metadata, self->fd, p, psz, psz, 81);
	ASSERT_EQ(0, munmap(p, psz));
	free(buf);
}

/*
 * Invalidations of pages the device does not use still make its walks
 * stale (the sequence count covers the whole mm). With threads changing
 * unrelated pages all the time, a large device read either completes
 * with the right data or gives up with EBUSY; it never hangs.
 */
struct churn {
	unsigned char *page;
	size_t psz;
	atomic_int *stop;
	unsigned long rounds;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(c->stop)) {
		mprotect(c->page, c->psz, PROT_READ);
		mprotect(c->page, c->psz, PROT_READ | PROT_WRITE);
		c->rounds++;
	}
	return NULL;
}

#define CHURNERS	4
#define CHURN_PAGES	4096UL

TEST_F_TIMEOUT(mirror, read_beside_unrelated_churn, 120)
{
	size_t len = CHURN_PAGES * self->psz;
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	unsigned char *side = map_anon(CHURNERS * 2 * self->psz, MAP_PRIVATE);
	unsigned char *buf = malloc(len);
	struct churn c[CHURNERS];
	unsigned long done = 0, busy = 0;
	atomic_int stop = 0;
	pthread_t th[CHURNERS];
	int i, ret;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(MAP_FAILED, side);
	ASSERT_NE(NULL, buf);
	pat_fill(p, len, 50);
	for (i = 0; i < CHURNERS; i++) {
		/* Every other page, so each mprotect() splits its own VMA. */
		c[i] = (struct churn){ side + 2 * i * self->psz, self->psz, &stop, 0 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, churn_thread, &c[i]));
	}
	for (i = 0; i < 4; i++) {
		memset(buf, 0, len);
		ret = dev_read(self->fd, p, buf, CHURN_PAGES, NULL);
		if (ret == -EBUSY) {
			busy++;
			continue;
		}
		if (ret)
			break;
		if (pat_diff(buf, len, 50) != -1)
			break;
		done++;
		/* The next read faults again: the device page table is emptied. */
		ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
		pat_fill(p, len, 50);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < CHURNERS; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(4, done + busy) TH_LOG("read %d failed: %d", i, ret);
	TH_LOG("%lu reads completed, %lu gave up with EBUSY; churn rounds %lu",
	       done, busy, c[0].rounds);
	munmap(p, len);
	munmap(side, CHURNERS * 2 * self->psz);
	free(buf);
}

TEST_HARNESS_MAIN
