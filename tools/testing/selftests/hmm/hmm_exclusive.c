// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of exclusive (atomic) device access through hmm_dummy.
 *
 * HMM_DUMMY_EXCLUSIVE takes pages with make_device_exclusive(): the CPU
 * page table keeps a device-exclusive entry and the device page table a
 * writable entry marked exclusive, until something takes the page back: a
 * CPU access, or any invalidation of it (mprotect, fork, munmap, madvise,
 * a migration, another device). HMM_DUMMY_CHECK_EXCLUSIVE counts the pages
 * of a range still marked, failing with EPERM while there are any.
 *
 * Each test checks one behaviour, and every byte: the data is a pattern
 * that differs per byte, per page and per seed.
 */
#include "../kselftest_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "hmm_dummy_uapi.h"

#include "hmm_dummy_util.h"

#define NPAGES			16UL
#define WRITERS			4
#define RACE_PAGES		32UL
#define RACE_ROUNDS		300
/* cpu_writers_race_exclusive stops early after this long, not below this many. */
#define RACE_SECONDS		10
#define RACE_MIN_ROUNDS		20
#define RACE_TIMEOUT		60

#define PM_PRESENT		0x8000000000000000ULL
#define PM_SWAP			0x4000000000000000ULL

FIXTURE(excl)
{
	int fd;
	int fd1;
	size_t psz;
};

FIXTURE_SETUP(excl)
{
	char why[80];

	self->fd1 = -1;
	self->psz = sysconf(_SC_PAGESIZE);
	self->fd = dummy_fixture_open(0, why, sizeof(why));
	if (self->fd < 0 && why[0])
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->fd);
	/* The second device is optional: the tests that need it skip. */
	self->fd1 = dummy_open(1);
}

FIXTURE_TEARDOWN(excl)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->fd1 >= 0)
		close(self->fd1);
}

/* EXCLUSIVE of @n pages at @p, read back into @buf; 0 or -errno. */
static int take(int fd, void *p, void *buf, __u64 n, struct hmm_dummy_cmd *out)
{
	return dummy_cmd(fd, HMM_DUMMY_EXCLUSIVE, (uintptr_t)p, buf, n, out);
}

/*
 * CHECK_EXCLUSIVE of @n pages at @p: how many are still exclusive, or
 * -errno on an error other than the EPERM that says there are some.
 * EPERM with no page counted, or success with some, is -EBADE.
 */
static long held(int fd, void *p, __u64 n)
{
	struct hmm_dummy_cmd c;
	int ret = dummy_cmd(fd, HMM_DUMMY_CHECK_EXCLUSIVE, (uintptr_t)p, NULL, n, &c);

	if (ret == -EPERM)
		return c.cpages ? (long)c.cpages : -EBADE;
	if (ret)
		return ret;
	return c.cpages ? -EBADE : 0;
}

static int set_flags(int fd, __u64 flags)
{
	return dummy_cmd(fd, HMM_DUMMY_FLAGS, 0, NULL, flags, NULL);
}

/* Anonymous private memory of @n pages holding pattern @seed. */
static void *filled(size_t psz, size_t n, unsigned int seed)
{
	void *p = map_anon(n * psz, MAP_PRIVATE);

	if (p != MAP_FAILED)
		pat_fill(p, n * psz, seed);
	return p;
}

/* Take @n pages at @p on @fd and check they hold pattern @seed. */
static void take_all(struct __test_metadata *_metadata, int fd, void *p,
		     size_t n, size_t psz, unsigned int seed)
{
	unsigned char *buf = malloc(n * psz);
	struct hmm_dummy_cmd c;

	ASSERT_NE(NULL, buf);
	memset(buf, 0xa5, n * psz);
	ASSERT_EQ(0, take(fd, p, buf, n, &c));
	ASSERT_EQ(n, c.cpages);
	ASSERT_EQ(-1, pat_diff(buf, n * psz, seed));
	ASSERT_EQ((long)n, held(fd, p, n));
	free(buf);
}

/* Index of the first SNAPSHOT byte that is neither @a nor @b, or -1. */
static long first_not(const unsigned char *snap, size_t n, unsigned char a, unsigned char b)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (snap[i] != a && snap[i] != b)
			return i;
	return -1;
}

/* The /proc/self/pagemap entry of @addr, 0 if it cannot be read. */
static unsigned long long pagemap_of(const void *addr)
{
	unsigned long long pm = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd >= 0 && pread(fd, &pm, sizeof(pm),
			     (uintptr_t)addr / sysconf(_SC_PAGESIZE) * sizeof(pm)) != sizeof(pm))
		pm = 0;
	if (fd >= 0)
		close(fd);
	return pm;
}

/* How many of the @n pages at @p have pagemap flags @mask equal to @want. */
static size_t pm_count(const unsigned char *p, size_t n, size_t psz,
		       unsigned long long mask, unsigned long long want)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		count += (pagemap_of(p + i * psz) & mask) == want;
	return count;
}

/* Seconds since @t0. */
static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A device READ of @n pages at @p must give pattern @seed. */
static void dev_check(struct __test_metadata *_metadata, int fd, void *p,
		      size_t n, size_t psz, unsigned int seed)
{
	unsigned char *buf = malloc(n * psz);
	struct hmm_dummy_cmd c;

	ASSERT_NE(NULL, buf);
	memset(buf, 0x5a, n * psz);
	ASSERT_EQ(0, dev_read(fd, p, buf, n, &c));
	ASSERT_EQ(n, c.cpages);
	ASSERT_EQ(-1, pat_diff(buf, n * psz, seed));
	free(buf);
}

/* Exclusive pages, then a CPU read of each takes it back, one by one. */
TEST_F(excl, cpu_read_takes_back)
{
	size_t psz = self->psz, i;
	unsigned char *p = filled(psz, NPAGES, 11);

	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 11);
	for (i = 0; i < NPAGES; i++) {
		ASSERT_EQ(-1, pat_diff_at(p + i * psz, i * psz, psz, 11));
		ASSERT_EQ((long)(NPAGES - i - 1), held(self->fd, p, NPAGES));
		ASSERT_EQ(0, held(self->fd, p + i * psz, 1));
	}
	ASSERT_EQ(-1, pat_diff(p, NPAGES * psz, 11));
	munmap(p, NPAGES * psz);
}

/* A CPU write takes the page back; the untouched pages stay the device's. */
TEST_F(excl, cpu_write_takes_back)
{
	size_t psz = self->psz, half = NPAGES / 2;
	unsigned char *p = filled(psz, NPAGES, 12), *buf = malloc(NPAGES * psz);
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	take_all(_metadata, self->fd, p, NPAGES, psz, 12);
	pat_fill(p, half * psz, 13);
	ASSERT_EQ((long)(NPAGES - half), held(self->fd, p, NPAGES));
	ASSERT_EQ(0, held(self->fd, p, half));
	ASSERT_EQ(-1, pat_diff(p, half * psz, 13));
	/* Reading through its own exclusive entries keeps them. */
	ASSERT_EQ(0, dev_read(self->fd, p + half * psz, buf, NPAGES - half, &c));
	ASSERT_EQ(NPAGES - half, c.cpages);
	ASSERT_EQ(0, c.faults);
	ASSERT_EQ(-1, pat_diff_at(buf, half * psz, (NPAGES - half) * psz, 12));
	ASSERT_EQ((long)(NPAGES - half), held(self->fd, p + half * psz, NPAGES - half));
	/* The device reads what the CPU wrote, faulting those pages in. */
	dev_check(_metadata, self->fd, p, half, psz, 13);
	ASSERT_EQ(-1, pat_diff_at(p + half * psz, half * psz, (NPAGES - half) * psz, 12));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	free(buf);
}

/* Never-touched memory becomes zero pages the device holds. */
TEST_F(excl, untouched_memory_reads_zeros)
{
	size_t psz = self->psz;
	unsigned char *p = map_anon(NPAGES * psz, MAP_PRIVATE), *buf = malloc(NPAGES * psz);
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	memset(buf, 0x77, NPAGES * psz);
	ASSERT_EQ(0, take(self->fd, p, buf, NPAGES, &c));
	ASSERT_EQ(NPAGES, c.cpages);
	ASSERT_EQ(-1, zero_diff(buf, NPAGES * psz));
	ASSERT_EQ((long)NPAGES, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, zero_diff(p, NPAGES * psz));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	free(buf);
}

struct writer {
	unsigned char *p;
	size_t psz;
	unsigned int id;
	atomic_int *stop;
	unsigned int last[RACE_PAGES];
	unsigned long rounds;
};

/* Seed of the data of round @r of page @i: never 0, never repeated. */
static unsigned int race_seed(unsigned int i, unsigned int r)
{
	return 1 + i + r * RACE_PAGES;
}

/* Write every page this writer owns, round after round, until told. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned int r, i;

	for (r = 1; !atomic_load(w->stop); r++) {
		for (i = w->id; i < RACE_PAGES; i += WRITERS) {
			pat_fill(w->p + i * w->psz, w->psz, race_seed(i, r));
			w->last[i] = race_seed(i, r);
		}
		w->rounds++;
	}
	return NULL;
}

/*
 * CPU writer threads against the device taking their pages exclusive in
 * a loop: no write is lost, and the last one of each page is what both the
 * CPU and the device find at the end. RACE_ROUNDS takes, or as many as
 * RACE_SECONDS allow on a slow (debug) kernel, but at least RACE_MIN_ROUNDS.
 */
TEST_F_TIMEOUT(excl, cpu_writers_race_exclusive, RACE_TIMEOUT)
{
	size_t psz = self->psz, i;
	unsigned char *p = filled(psz, RACE_PAGES, 0), *buf = malloc(RACE_PAGES * psz);
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	atomic_int stop = 0;
	unsigned long taken = 0, busy = 0, round, joined = 0;
	struct hmm_dummy_cmd c;
	struct timespec t0;
	int ret;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < WRITERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].p = p;
		w[i].psz = psz;
		w[i].id = i;
		w[i].stop = &stop;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, writer_main, &w[i]));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (round = 0; round < RACE_ROUNDS && since(&t0) < RACE_SECONDS; round++) {
		ret = take(self->fd, p, buf, RACE_PAGES, &c);
		if (ret == -EBUSY) {
			busy++;
			continue;
		}
		ASSERT_EQ(0, ret);
		ASSERT_EQ(RACE_PAGES, c.cpages);
		taken++;
	}
	atomic_store(&stop, 1);
	for (i = 0; i < WRITERS; i++)
		joined += !pthread_join(th[i], NULL);
	ASSERT_EQ(WRITERS, joined);
	TH_LOG("%lu rounds in %.1f s: %lu takes, %lu busy, writer rounds %lu %lu %lu %lu",
	       round, since(&t0), taken, busy,
	       w[0].rounds, w[1].rounds, w[2].rounds, w[3].rounds);
	ASSERT_LE(RACE_MIN_ROUNDS, round);
	ASSERT_LT(0, taken);
	/* The last state, from the device while it holds the pages, then the CPU. */
	ASSERT_EQ(0, take(self->fd, p, buf, RACE_PAGES, &c));
	ASSERT_EQ(RACE_PAGES, c.cpages);
	for (i = 0; i < RACE_PAGES; i++) {
		unsigned int want = w[i % WRITERS].last[i];

		ASSERT_NE(0, want);
		ASSERT_EQ(-1, pat_diff(buf + i * psz, psz, want));
		ASSERT_EQ(-1, pat_diff(p + i * psz, psz, want));
	}
	ASSERT_EQ(0, held(self->fd, p, RACE_PAGES));
	free(buf);
}

/* A page one device holds goes to the other when that one takes it. */
TEST_F(excl, second_device_takes_over)
{
	size_t psz = self->psz, k = 5;
	unsigned char *p = filled(psz, NPAGES, 21), *buf = malloc(psz);
	struct hmm_dummy_counters before, after;
	struct hmm_dummy_cmd c;

	if (self->fd1 < 0)
		SKIP(return, "/dev/hmm_dummy1 is missing");
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	take_all(_metadata, self->fd, p, NPAGES, psz, 21);
	ASSERT_EQ(0, get_counters(self->fd, &before));
	ASSERT_EQ(0, take(self->fd1, p + k * psz, buf, 1, &c));
	ASSERT_EQ(1, c.cpages);
	ASSERT_EQ(-1, pat_diff_at(buf, k * psz, psz, 21));
	ASSERT_EQ(0, get_counters(self->fd, &after));
	/* Device 0 heard device 1's exclusive-access invalidation. */
	ASSERT_LT(before.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE],
		  after.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE]);
	ASSERT_EQ(0, held(self->fd, p + k * psz, 1));
	ASSERT_EQ((long)(NPAGES - 1), held(self->fd, p, NPAGES));
	ASSERT_EQ(1, held(self->fd1, p, NPAGES));
	/* And back: device 0 takes it again, device 1 loses it. */
	ASSERT_EQ(0, take(self->fd, p + k * psz, buf, 1, &c));
	ASSERT_EQ(-1, pat_diff_at(buf, k * psz, psz, 21));
	ASSERT_EQ(0, held(self->fd1, p, NPAGES));
	ASSERT_EQ((long)NPAGES, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, NPAGES * psz, 21));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	free(buf);
}

/* Device 1 reading a page device 0 holds takes it back for the CPU. */
TEST_F(excl, other_device_read_takes_back)
{
	size_t psz = self->psz;
	unsigned char *p = filled(psz, NPAGES, 22);

	if (self->fd1 < 0)
		SKIP(return, "/dev/hmm_dummy1 is missing");
	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 22);
	dev_check(_metadata, self->fd1, p, NPAGES, psz, 22);
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(0, held(self->fd1, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, NPAGES * psz, 22));
}

/* A device write through its exclusive entries keeps them; the CPU sees it. */
TEST_F(excl, device_write_keeps_exclusive)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = filled(psz, NPAGES, 31), *buf = malloc(len);
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	take_all(_metadata, self->fd, p, NPAGES, psz, 31);
	pat_fill(buf, len, 32);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, NPAGES, &c));
	ASSERT_EQ(NPAGES, c.cpages);
	ASSERT_EQ(0, c.faults);
	ASSERT_EQ((long)NPAGES, held(self->fd, p, NPAGES));
	dev_check(_metadata, self->fd, p, NPAGES, psz, 32);
	ASSERT_EQ((long)NPAGES, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 32));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	free(buf);
}

/*
 * mprotect(PROT_READ) revokes; a device write then gets EPERM, and so
 * does taking the pages again (Documentation/mm/hmm-dummy.rst).
 */
TEST_F(excl, mprotect_revokes)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = filled(psz, NPAGES, 41), *buf = malloc(len);
	struct hmm_dummy_counters before, after;
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	take_all(_metadata, self->fd, p, NPAGES, psz, 41);
	ASSERT_EQ(0, get_counters(self->fd, &before));
	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	ASSERT_EQ(0, get_counters(self->fd, &after));
	ASSERT_LT(before.invalidations[HMM_DUMMY_EVENT_PROTECT],
		  after.invalidations[HMM_DUMMY_EVENT_PROTECT]);
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	pat_fill(buf, len, 42);
	ASSERT_EQ(-EPERM, dev_write(self->fd, p, buf, NPAGES, &c));
	ASSERT_EQ(0, c.cpages);
	/* Taking read-only memory exclusive is refused too. */
	ASSERT_EQ(-EPERM, take(self->fd, p, buf, 1, &c));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	dev_check(_metadata, self->fd, p, NPAGES, psz, 41);
	ASSERT_EQ(-1, pat_diff(p, len, 41));
	free(buf);
}

/* mprotect to the same protection changes nothing, and keeps the pages. */
TEST_F(excl, mprotect_same_protection_keeps)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = filled(psz, NPAGES, 43);

	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 43);
	ASSERT_EQ(0, mprotect(p, len, PROT_READ | PROT_WRITE));
	ASSERT_EQ((long)NPAGES, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 43));
}

/* fork after exclusive: both processes see the data, and COW works. */
TEST_F(excl, fork_after_exclusive)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = filled(psz, NPAGES, 51);
	int go[2], done[2];
	pid_t pid;
	char b;

	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 51);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child: the data as it was, then its own. */
		if (pat_diff(p, len, 51) >= 0)
			_exit(1);
		pat_fill(p, len, 52);
		if (write(done[1], "c", 1) != 1 || read(go[0], &b, 1) != 1)
			_exit(2);
		/* The parent wrote its own pattern meanwhile: not seen here. */
		_exit(pat_diff(p, len, 52) >= 0 ? 3 : 0);
	}
	/* fork() took the pages back to copy them. */
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(1, read(done[0], &b, 1));
	ASSERT_EQ(-1, pat_diff(p, len, 51));
	dev_check(_metadata, self->fd, p, NPAGES, psz, 51);
	/* The device takes the pages again: for writing, it breaks COW. */
	take_all(_metadata, self->fd, p, NPAGES, psz, 51);
	pat_fill(p, len, 53);
	ASSERT_EQ(1, write(go[1], "p", 1));
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(-1, pat_diff(p, len, 53));
	dev_check(_metadata, self->fd, p, NPAGES, psz, 53);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

/* munmap of exclusive pages: the device forgets them, the rest stay. */
TEST_F(excl, munmap_exclusive)
{
	size_t psz = self->psz, half = NPAGES / 2;
	unsigned char *p = filled(psz, NPAGES, 61), *q;
	struct hmm_dummy_counters before, after;

	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 61);
	ASSERT_EQ(0, get_counters(self->fd, &before));
	ASSERT_EQ(0, munmap(p, half * psz));
	ASSERT_EQ(0, get_counters(self->fd, &after));
	ASSERT_LT(before.invalidations[HMM_DUMMY_EVENT_UNMAP],
		  after.invalidations[HMM_DUMMY_EVENT_UNMAP]);
	ASSERT_EQ((long)(NPAGES - half), held(self->fd, p, NPAGES));
	ASSERT_EQ(0, held(self->fd, p, half));
	/* New memory at the same place holds zeros, and nothing exclusive. */
	q = mmap(p, half * psz, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ(p, q);
	ASSERT_EQ(0, held(self->fd, p, half));
	ASSERT_EQ(-1, zero_diff(q, half * psz));
	ASSERT_EQ(-1, pat_diff_at(p + half * psz, half * psz, (NPAGES - half) * psz, 61));
	ASSERT_EQ(0, munmap(p, NPAGES * psz));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
}

/* MADV_DONTNEED drops exclusive pages: zeros after, nothing held. */
TEST_F(excl, dontneed_drops)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = filled(psz, NPAGES, 62);

	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 62);
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, zero_diff(p, len));
}

/* Keep the test on one CPU, whose LRU batches MADV_PAGEOUT drains. */
static bool run_on_first_cpu(void)
{
	cpu_set_t all, one;
	int cpu;

	if (sched_getaffinity(0, sizeof(all), &all))
		return false;
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &all); cpu++)
		;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return !sched_setaffinity(0, sizeof(one), &one);
}

/*
 * MADV_FREE invalidates, so the device loses the pages, but it leaves the
 * CPU's device-exclusive entries alone: the pages are not made lazily
 * freeable, and MADV_PAGEOUT skips those entries too. A CPU read ends the
 * exclusive access; then reclaim swaps the pages out for real, and they
 * come back intact.
 */
TEST_F(excl, free_then_pageout_keeps_data)
{
	size_t psz = self->psz, len = NPAGES * psz, i, out = 0;
	unsigned long long pm[NPAGES];
	unsigned char *p;
	int tries;

	ASSERT_TRUE(run_on_first_cpu());
	p = filled(psz, NPAGES, 63);
	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 63);
	/* Device-exclusive entries: not present, shown as swap entries. */
	ASSERT_EQ(NPAGES, pm_count(p, NPAGES, psz, PM_PRESENT | PM_SWAP, PM_SWAP));
	for (i = 0; i < NPAGES; i++)
		pm[i] = pagemap_of(p + i * psz);
	ASSERT_EQ(0, madvise(p, len, MADV_FREE));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(0, madvise(p, len, MADV_PAGEOUT));
	/* Neither changed the CPU entries: the same device-exclusive ones. */
	for (i = 0; i < NPAGES; i++)
		ASSERT_EQ(pm[i], pagemap_of(p + i * psz)) TH_LOG("page %zu", i);
	/* The CPU read takes them back; MADV_FREE had not dropped the data. */
	ASSERT_EQ(-1, pat_diff(p, len, 63));
	ASSERT_EQ(NPAGES, pm_count(p, NPAGES, psz, PM_PRESENT, PM_PRESENT));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	/* Now reclaim can have them: dirty anonymous pages go to swap. */
	for (tries = 0; tries < 3 && out < NPAGES; tries++) {
		ASSERT_EQ(0, madvise(p, len, MADV_PAGEOUT));
		out = pm_count(p, NPAGES, psz, PM_PRESENT | PM_SWAP, PM_SWAP);
	}
	ASSERT_EQ(NPAGES, out) TH_LOG("%zu of %lu pages swapped out", out, NPAGES);
	ASSERT_EQ(-1, pat_diff(p, len, 63));
	dev_check(_metadata, self->fd, p, NPAGES, psz, 63);
	munmap(p, len);
}

/*
 * Closing the file while it holds pages: its mirror goes, the CPU entries
 * stay device-exclusive until something touches them, and a new file of
 * the device can take the pages, with the CPU's data intact.
 */
TEST_F(excl, close_while_exclusive)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = filled(psz, NPAGES, 71);
	struct hmm_dummy_info i0, i1;
	int fd = dummy_open(0), fd2;

	ASSERT_LE(0, fd);
	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, fd, p, NPAGES, psz, 71);
	ASSERT_EQ(0, get_info(self->fd, &i0));
	/* Just before the close: the file holds them all, the fixture's none. */
	ASSERT_EQ((long)NPAGES, held(fd, p, NPAGES));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.mirrors - 1, i1.mirrors);
	ASSERT_EQ(i0.releases + 1, i1.releases);
	/* Exclusive access takes no device memory, before or after. */
	ASSERT_EQ(i0.pages_used, i1.pages_used);
	/* Nothing took the pages back: the CPU entries are still exclusive. */
	ASSERT_EQ(NPAGES, pm_count(p, NPAGES, psz, PM_PRESENT | PM_SWAP, PM_SWAP));
	/* A new file takes them from the entries the closed one left. */
	fd2 = dummy_open(0);
	ASSERT_LE(0, fd2);
	take_all(_metadata, fd2, p, NPAGES, psz, 71);
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 71));
	ASSERT_EQ(0, held(fd2, p, NPAGES));
	ASSERT_EQ(NPAGES, pm_count(p, NPAGES, psz, PM_PRESENT, PM_PRESENT));
	ASSERT_EQ(0, close(fd2));
	munmap(p, len);
}

/*
 * A process exiting with exclusive pages: the child's file holds them up
 * to the end, its mirror is released once and unregistered, and the
 * parent's copy of the data is untouched and can be taken.
 */
TEST_F(excl, exit_while_exclusive)
{
	size_t psz = self->psz;
	unsigned char *p = filled(psz, NPAGES, 72);
	struct hmm_dummy_info i0, i1;
	int up[2], down[2];
	long child_held = -1;
	int tries;
	pid_t pid;
	char b;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	ASSERT_EQ(0, get_info(self->fd, &i0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		unsigned char *buf = malloc(NPAGES * psz);
		struct hmm_dummy_cmd c;
		int fd = dummy_open(0);

		/* The child's own file mirrors the child's mm. */
		if (fd < 0 || !buf || take(fd, p, buf, NPAGES, &c) || c.cpages != NPAGES)
			_exit(1);
		if (pat_diff(buf, NPAGES * psz, 72) >= 0)
			_exit(2);
		/* Report what the file holds, wait for the go, exit holding it. */
		child_held = held(fd, p, NPAGES);
		if (write(up[1], &child_held, sizeof(child_held)) != sizeof(child_held) ||
		    read(down[0], &b, 1) != 1)
			_exit(3);
		_exit(held(fd, p, NPAGES) == (long)NPAGES ? 0 : 4);
	}
	ASSERT_EQ(sizeof(child_held), read(up[0], &child_held, sizeof(child_held)));
	ASSERT_EQ((long)NPAGES, child_held);
	/* The child's mirror is registered and not released yet. */
	ASSERT_EQ(0, get_info(self->fd, &i1));
	ASSERT_EQ(i0.mirrors + 1, i1.mirrors);
	ASSERT_EQ(i0.releases, i1.releases);
	ASSERT_EQ(1, write(down[1], "g", 1));
	ASSERT_EQ(0, wait_child(pid));
	/* Gone: released once, unregistered, no device memory involved. */
	for (tries = 0; tries < 100; tries++) {
		ASSERT_EQ(0, get_info(self->fd, &i1));
		if (i1.mirrors == i0.mirrors)
			break;
		usleep(20000);
	}
	ASSERT_EQ(i0.mirrors, i1.mirrors);
	ASSERT_EQ(i0.releases + 1, i1.releases);
	ASSERT_EQ(i0.pages_used, i1.pages_used);
	/* The parent's pages never were the child's to take. */
	ASSERT_EQ(NPAGES, pm_count(p, NPAGES, psz, PM_PRESENT, PM_PRESENT));
	ASSERT_EQ(-1, pat_diff(p, NPAGES * psz, 72));
	take_all(_metadata, self->fd, p, NPAGES, psz, 72);
	ASSERT_EQ(-1, pat_diff(p, NPAGES * psz, 72));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

/* A page in device memory is brought back to RAM to be taken. */
TEST_F(excl, device_page_comes_back)
{
	size_t psz = self->psz, len = NPAGES * psz;
	long bad;
	unsigned char *p = filled(psz, NPAGES, 81), *buf = malloc(len);
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)p, buf,
			       NPAGES, &c));
	ASSERT_EQ(NPAGES, c.cpages);
	take_all(_metadata, self->fd, p, NPAGES, psz, 81);
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, NPAGES, &c));
	/* No page is in device memory, nor mapped by the CPU. */
	ASSERT_EQ(-1, prot_diff(buf, NPAGES, HMM_DUMMY_PROT_NONE));
	ASSERT_EQ(-1, pat_diff(p, len, 81));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	/* The CPU read them back into RAM, writable or not. */
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, NPAGES, &c));
	bad = first_not(buf, NPAGES, HMM_DUMMY_PROT_READ, HMM_DUMMY_PROT_WRITE);
	if (bad >= 0)
		TH_LOG("page %ld: SNAPSHOT 0x%02x, pagemap %016llx", bad, buf[bad],
		       (unsigned long long)pagemap_of(p + bad * psz));
	ASSERT_EQ(-1, bad);
	free(buf);
}

/* A migration invalidates exclusive pages; nothing is lost either way. */
TEST_F(excl, migration_ends_exclusive)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = filled(psz, NPAGES, 82), *buf = malloc(len);
	struct hmm_dummy_counters before, after;
	struct hmm_dummy_cmd c;
	int ret;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	take_all(_metadata, self->fd, p, NPAGES, psz, 82);
	ASSERT_EQ(0, get_counters(self->fd, &before));
	ret = dummy_cmd(self->fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)p, buf, NPAGES, &c);
	ASSERT_EQ(0, get_counters(self->fd, &after));
	TH_LOG("MIGRATE_TO_DEV of exclusive pages: %d, %llu read back", ret,
	       (unsigned long long)c.cpages);
	/* Pages a device-exclusive entry maps are not collected. */
	ASSERT_TRUE(ret == 0 || ret == -ENOENT);
	ASSERT_EQ(-1, pat_diff(buf, c.cpages * psz, 82));
	ASSERT_LT(before.invalidations[HMM_DUMMY_EVENT_MIGRATE],
		  after.invalidations[HMM_DUMMY_EVENT_MIGRATE]);
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 82));
	free(buf);
}

/* A THP: taking pages splits its mapping; the CPU takes back one page. */
TEST_F(excl, thp_pages)
{
	size_t psz = self->psz, n = SZ_2M / psz;
	unsigned char *raw, *p = map_thp_area((void **)&raw);

	ASSERT_NE(MAP_FAILED, p);
	if (!p)
		SKIP(return, "no THP");
	pat_fill(p, SZ_2M, 91);
	take_all(_metadata, self->fd, p, n, psz, 91);
	ASSERT_EQ(-1, pat_diff_at(p + 7 * psz, 7 * psz, psz, 91));
	ASSERT_EQ((long)(n - 1), held(self->fd, p, n));
	ASSERT_EQ(0, held(self->fd, p + 7 * psz, 1));
	ASSERT_EQ(-1, pat_diff(p, SZ_2M, 91));
	ASSERT_EQ(0, held(self->fd, p, n));
	munmap(raw, 2 * SZ_2M);
}

/* A temporary file in /tmp, already unlinked, holding pattern @seed. */
static int tmp_file(size_t len, unsigned int seed)
{
	char name[] = "/tmp/hmm_excl.XXXXXX";
	unsigned char *buf = malloc(len);
	int fd = mkstemp(name);

	if (fd < 0 || !buf) {
		free(buf);
		return -1;
	}
	unlink(name);
	pat_fill(buf, len, seed);
	if (pwrite(fd, buf, len, 0) != (ssize_t)len) {
		close(fd);
		fd = -1;
	}
	free(buf);
	return fd;
}

/* Shared memory is refused: make_device_exclusive() takes anonymous only. */
TEST_F(excl, shared_anon_refused)
{
	size_t psz = self->psz, len = NPAGES * psz;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned char *buf = malloc(len);
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	pat_fill(p, len, 101);
	ASSERT_EQ(-EOPNOTSUPP, take(self->fd, p, buf, NPAGES, &c));
	ASSERT_EQ(0, c.cpages);
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 101));
	dev_check(_metadata, self->fd, p, NPAGES, psz, 101);
	free(buf);
}

/* A shared file mapping is refused; its data stays. */
TEST_F(excl, shared_file_refused)
{
	size_t psz = self->psz, len = NPAGES * psz;
	int fd = tmp_file(len, 102);
	unsigned char *p, *buf = malloc(len);
	struct hmm_dummy_cmd c;

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, buf);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(-EOPNOTSUPP, take(self->fd, p, buf, NPAGES, &c));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 102));
	munmap(p, len);
	close(fd);
	free(buf);
}

/*
 * A private file mapping the caller may write is taken: the write fault
 * copies the page into anonymous memory first. The file is unchanged.
 */
TEST_F(excl, private_file_copied)
{
	size_t psz = self->psz, len = NPAGES * psz;
	int fd = tmp_file(len, 103);
	unsigned char *p, *buf = malloc(len);
	struct hmm_dummy_cmd c;

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, buf);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	take_all(_metadata, self->fd, p, NPAGES, psz, 103);
	pat_fill(buf, len, 104);
	ASSERT_EQ(0, dev_write(self->fd, p, buf, NPAGES, &c));
	ASSERT_EQ((long)NPAGES, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 104));
	ASSERT_EQ((ssize_t)len, pread(fd, buf, len, 0));
	ASSERT_EQ(-1, pat_diff(buf, len, 103));
	munmap(p, len);
	close(fd);
	free(buf);
}

/* A read-only private file mapping cannot be taken for writing: EPERM. */
TEST_F(excl, readonly_file_refused)
{
	size_t psz = self->psz, len = NPAGES * psz;
	int fd = tmp_file(len, 105);
	unsigned char *p, *buf = malloc(len);
	struct hmm_dummy_cmd c;

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, buf);
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(-EPERM, take(self->fd, p, buf, NPAGES, &c));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff(p, len, 105));
	munmap(p, len);
	close(fd);
	free(buf);
}

/* Bad ranges: empty, unaligned, unmapped, PROT_NONE. */
TEST_F(excl, bad_input)
{
	size_t psz = self->psz;
	unsigned char *p = filled(psz, NPAGES, 111), *buf = malloc(NPAGES * psz);
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(-EINVAL, take(self->fd, p, buf, 0, &c));
	ASSERT_EQ(-EINVAL, take(self->fd, p + 1, buf, 1, &c));
	ASSERT_EQ(-EINVAL, dummy_cmd(self->fd, HMM_DUMMY_CHECK_EXCLUSIVE, (uintptr_t)p,
				     NULL, 0, &c));
	ASSERT_EQ(0, munmap(p + (NPAGES - 1) * psz, psz));
	ASSERT_EQ(-EFAULT, take(self->fd, p + (NPAGES - 1) * psz, buf, 1, &c));
	ASSERT_EQ(0, mprotect(p, psz, PROT_NONE));
	ASSERT_EQ(-EFAULT, take(self->fd, p, buf, 1, &c));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	/* A range running into the hole fails there, the pages before held. */
	ASSERT_EQ(-EFAULT, take(self->fd, p + psz, buf, NPAGES - 1, &c));
	ASSERT_EQ((long)(NPAGES - 2), held(self->fd, p, NPAGES));
	ASSERT_EQ(-1, pat_diff_at(p + psz, psz, (NPAGES - 2) * psz, 111));
	ASSERT_EQ(0, held(self->fd, p, NPAGES));
	free(buf);
}

/* FLAGS: an unknown bit is EINVAL; the known one and none are taken. */
TEST_F(excl, flags_unknown_bit)
{
	ASSERT_EQ(-EINVAL, set_flags(self->fd, 1ULL << 1));
	ASSERT_EQ(-EINVAL, set_flags(self->fd, 1ULL << 63));
	ASSERT_EQ(-EINVAL, set_flags(self->fd, HMM_DUMMY_FLAG_FAIL_ALLOC | 1ULL << 7));
	ASSERT_EQ(0, set_flags(self->fd, HMM_DUMMY_FLAG_FAIL_ALLOC));
	ASSERT_EQ(0, set_flags(self->fd, 0));
}

/* FAIL_ALLOC, then a THP to the device and back: every page, intact. */
TEST_F(excl, fail_alloc_thp_migrates)
{
	size_t psz = self->psz, n = SZ_2M / psz;
	unsigned char *raw, *p = map_thp_area((void **)&raw), *buf = malloc(SZ_2M);
	struct hmm_dummy_cmd c;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	if (!p)
		SKIP(return, "no THP");
	pat_fill(p, SZ_2M, 121);
	ASSERT_EQ(0, set_flags(self->fd, HMM_DUMMY_FLAG_FAIL_ALLOC));
	memset(buf, 0, SZ_2M);
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)p, buf, n, &c));
	ASSERT_EQ(n, c.cpages);
	ASSERT_EQ(-1, pat_diff(buf, SZ_2M, 121));
	/* Every page in device memory, writable, mapped huge or not. */
	ASSERT_EQ(0, dev_snap(self->fd, p, buf, n, &c));
	ASSERT_EQ(-1, first_not(buf, n, HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL | HMM_DUMMY_PROT_WRITE,
				HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL | HMM_DUMMY_PROT_WRITE |
				HMM_DUMMY_PROT_PMD));
	ASSERT_EQ(0, dummy_cmd(self->fd, HMM_DUMMY_MIGRATE_TO_SYS, (uintptr_t)p, NULL, n, &c));
	ASSERT_EQ(n, c.cpages);
	ASSERT_EQ(-1, pat_diff(p, SZ_2M, 121));
	ASSERT_EQ(0, set_flags(self->fd, 0));
	munmap(raw, 2 * SZ_2M);
	free(buf);
}

/*
 * Counters: a mirror hears its own exclusive-access invalidation, one
 * per page, and so does another file of the same process.
 */
TEST_F(excl, counters_exclusive_event)
{
	size_t psz = self->psz;
	unsigned char *p = filled(psz, NPAGES, 131);
	struct hmm_dummy_counters b0, a0, b2, a2;
	int fd2 = dummy_open(0);

	ASSERT_LE(0, fd2);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, get_counters(self->fd, &b0));
	ASSERT_EQ(0, get_counters(fd2, &b2));
	take_all(_metadata, self->fd, p, NPAGES, psz, 131);
	ASSERT_EQ(0, get_counters(self->fd, &a0));
	ASSERT_EQ(0, get_counters(fd2, &a2));
	ASSERT_LE(b0.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE] + NPAGES,
		  a0.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE]);
	ASSERT_LE(b2.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE] + NPAGES,
		  a2.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE]);
	/* A CPU access takes the page back with a CLEAR invalidation. */
	ASSERT_EQ(-1, pat_diff(p, psz, 131));
	ASSERT_EQ(0, get_counters(self->fd, &b0));
	ASSERT_LT(a0.invalidations[HMM_DUMMY_EVENT_CLEAR],
		  b0.invalidations[HMM_DUMMY_EVENT_CLEAR]);
	ASSERT_EQ(a0.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE],
		  b0.invalidations[HMM_DUMMY_EVENT_EXCLUSIVE]);
	close(fd2);
}

TEST_HARNESS_MAIN
