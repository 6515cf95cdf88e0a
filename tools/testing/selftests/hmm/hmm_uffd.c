// SPDX-License-Identifier: GPL-2.0
/*
 * Device reads of memory registered with userfaultfd.
 *
 * A fault into a userfaultfd region waits for a handler in user space, and
 * can only do so by giving up the mmap lock. HMM_DUMMY_READ_UNLOCKED lets
 * its faults do that (hmm_vma_fault_pfns_unlocked()); the tests below
 * serve its faults from a handler thread, leave them unserved and
 * interrupt them with a signal or kill the process, and check what the
 * commands that cannot wait (READ, WRITE) do instead of waiting.
 *
 * Not tested here, on purpose: a locked READ of a page left missing in a
 * region registered in the ordinary (waiting) MISSING mode, and a device
 * WRITE of pages protected in the synchronous WP mode. Such a fault
 * cannot wait, and handle_userfault() then fails it with VM_FAULT_SIGBUS,
 * but a CONFIG_DEBUG_VM kernel also prints "FAULT_FLAG_ALLOW_RETRY
 * missing" with a stack dump, which the debug run takes for a splat. The
 * SIGBUS and user-mode-only registrations below reach the same failure
 * without the dump.
 *
 * Data is always a pattern that differs per byte, per page and per seed,
 * and every byte read is checked.
 */
#include "../kselftest_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "hmm_dummy_uapi.h"
#include <linux/userfaultfd.h>

#include "hmm_dummy_util.h"

/* The most pages one region of these tests has. */
#define MAX_PAGES		256
/* Memory no test registers, checked intact at the end of each test. */
#define BYSTANDER_PAGES		8
/* How long to wait for something that should happen at once, in ms. */
#define WAIT_MS			10000

#define SEED_CPU		11	/* what the CPU wrote before registering */
#define SEED_SERVED		12	/* what the handler provides */
#define SEED_DEVICE		13	/* what a device WRITE stores */
#define SEED_LATER		14	/* what the CPU writes after waiting */
#define SEED_BYSTANDER		15
#define CANARY			0xa5

/* Bits of a /proc/self/pagemap entry: uffd write-protected, present. */
#define PM_UFFD_WP		57
#define PM_PRESENT		63

/* What every fixture of this file has. */
struct uffd_env {
	int fd;
	size_t psz;
	unsigned char *bystander;
};

static void env_setup(struct __test_metadata *_metadata, struct uffd_env *env)
{
	char why[80];

	env->psz = sysconf(_SC_PAGESIZE);
	env->bystander = MAP_FAILED;
	env->fd = dummy_fixture_open(0, why, sizeof(why));
	if (env->fd < 0 && why[0])
		SKIP(return, "%s", why);
	ASSERT_LE(0, env->fd);
	env->bystander = map_anon(BYSTANDER_PAGES * env->psz, MAP_PRIVATE);
	ASSERT_NE(MAP_FAILED, env->bystander);
	pat_fill(env->bystander, BYSTANDER_PAGES * env->psz, SEED_BYSTANDER);
}

static void env_teardown(struct uffd_env *env)
{
	if (env->bystander != MAP_FAILED)
		munmap(env->bystander, BYSTANDER_PAGES * env->psz);
	if (env->fd >= 0)
		close(env->fd);
}

FIXTURE(uffd)
{
	struct uffd_env env;
};

FIXTURE_SETUP(uffd)
{
	env_setup(_metadata, &self->env);
}

FIXTURE_TEARDOWN(uffd)
{
	env_teardown(&self->env);
}

/*
 * The end of every test: memory nobody registered is intact, and the
 * file's counters are sane: not released, padding zero, no more entries
 * mirrored than @max_mirrored, and at least one device fault if any.
 */
static void check_sane(struct __test_metadata *_metadata,
		       const struct uffd_env *env, __u64 max_mirrored)
{
	struct hmm_dummy_counters c;

	ASSERT_EQ(-1, pat_diff(env->bystander, BYSTANDER_PAGES * env->psz,
			       SEED_BYSTANDER));
	ASSERT_EQ(0, get_counters(env->fd, &c));
	ASSERT_EQ(0U, c.released);
	ASSERT_EQ(0U, c.pad);
	ASSERT_GE(max_mirrored, c.mirrored);
	if (c.mirrored)
		ASSERT_LE(1U, c.faults);
}

/*
 * A command without dummy_cmd()'s retry on EINTR: returns 0 or -errno,
 * @out gets what the driver wrote back.
 */
static int raw_cmd(int fd, unsigned long req, void *addr, void *buf,
		   __u64 npages, struct hmm_dummy_cmd *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->addr = (uintptr_t)addr;
	out->ptr = (uintptr_t)buf;
	out->npages = npages;
	ret = ioctl(fd, req, out);
	return ret < 0 ? -errno : 0;
}

/*
 * A userfaultfd with @features, with @flags added to O_CLOEXEC |
 * O_NONBLOCK: the fd, or -1 when the kernel lacks it or a feature.
 */
static int uffd_open(__u64 features, int flags)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);

	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api) || (api.features & features) != features) {
		close(uffd);
		return -1;
	}
	return uffd;
}

static int uffd_register(int uffd, void *p, size_t len, __u64 mode)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = mode,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg);
}

/* Write-protect (@on) or unprotect and wake the writers of @p. */
static int uffd_wp(int uffd, void *p, size_t len, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
}

/* Provide page @idx of @base: pattern @seed at the page's offset. */
static int uffd_serve(int uffd, unsigned char *base, size_t idx, size_t psz,
		      unsigned int seed)
{
	unsigned char *src = malloc(psz);
	struct uffdio_copy copy = {
		.dst = (uintptr_t)(base + idx * psz),
		.len = psz,
	};
	int ret;

	if (!src)
		return -1;
	pat_fill_at(src, idx * psz, psz, seed);
	copy.src = (uintptr_t)src;
	ret = ioctl(uffd, UFFDIO_COPY, &copy);
	free(src);
	return ret;
}

/*
 * Wait up to @ms for a message on @uffd and read it: 1, or 0 on timeout,
 * or -1 on an error.
 */
static int uffd_next(int uffd, struct uffd_msg *msg, int ms)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	int ret = poll(&pfd, 1, ms);

	if (ret <= 0)
		return ret;
	return read(uffd, msg, sizeof(*msg)) == sizeof(*msg) ? 1 : -1;
}

/*
 * A handler thread: reads the messages of a userfaultfd covering @npages
 * pages at @base, counts them per page, and (unless @hold) serves each
 * page fault with UFFDIO_COPY of pattern @seed at the page's offset.
 */
struct handler {
	int uffd;
	int stop[2];
	unsigned char *base;
	size_t psz;
	size_t npages;
	unsigned int seed;
	bool hold;
	pthread_t thread;
	atomic_uint seen[MAX_PAGES];
	atomic_uint messages;
	atomic_uint foreign;	/* outside the range, or not a page fault */
	atomic_uint writes;	/* faults flagged as writes */
	atomic_uint failed;	/* UFFDIO_COPY failures */
};

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct pollfd pfd[2] = {
		{ .fd = h->uffd, .events = POLLIN },
		{ .fd = h->stop[0], .events = POLLIN },
	};
	struct uffd_msg msg;
	uintptr_t addr;
	size_t idx;

	for (;;) {
		if (poll(pfd, 2, -1) < 0 || pfd[1].revents)
			return NULL;
		if (!(pfd[0].revents & POLLIN))
			continue;
		if (read(h->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		atomic_fetch_add(&h->messages, 1);
		addr = msg.arg.pagefault.address;
		if (msg.event != UFFD_EVENT_PAGEFAULT || addr < (uintptr_t)h->base ||
		    addr >= (uintptr_t)h->base + h->npages * h->psz) {
			atomic_fetch_add(&h->foreign, 1);
			continue;
		}
		if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE)
			atomic_fetch_add(&h->writes, 1);
		idx = (addr - (uintptr_t)h->base) / h->psz;
		atomic_fetch_add(&h->seen[idx], 1);
		if (!h->hold && uffd_serve(h->uffd, h->base, idx, h->psz, h->seed))
			atomic_fetch_add(&h->failed, 1);
	}
}

static int handler_start(struct handler *h, int uffd, unsigned char *base,
			 size_t npages, size_t psz, unsigned int seed, bool hold)
{
	memset(h, 0, sizeof(*h));
	h->uffd = uffd;
	h->base = base;
	h->npages = npages;
	h->psz = psz;
	h->seed = seed;
	h->hold = hold;
	if (pipe(h->stop))
		return -1;
	return pthread_create(&h->thread, NULL, handler_main, h) ? -1 : 0;
}

static void handler_stop(struct handler *h)
{
	char c = 0;

	if (write(h->stop[1], &c, 1) == 1)
		pthread_join(h->thread, NULL);
	close(h->stop[0]);
	close(h->stop[1]);
}

/* A userfaultfd in asynchronous WP mode registered over @p: the fd, or -1. */
static int wp_async_register(void *p, size_t len)
{
	int uffd = uffd_open(UFFD_FEATURE_WP_ASYNC, 0);

	if (uffd >= 0 && uffd_register(uffd, p, len, UFFDIO_REGISTER_MODE_WP)) {
		close(uffd);
		uffd = -1;
	}
	return uffd;
}

/* Bit @bit of the /proc/self/pagemap entry of @addr (0 if unreadable). */
static bool pagemap_bit(void *addr, size_t psz, int bit)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	__u64 ent = 0;

	if (fd < 0)
		return false;
	if (pread(fd, &ent, sizeof(ent), (uintptr_t)addr / psz * sizeof(ent)) !=
	    sizeof(ent))
		ent = 0;
	close(fd);
	return (ent >> bit) & 1;
}

/* In a test region, page @i is missing iff it is @first + k * @stride. */
static bool is_missing(size_t i, size_t first, size_t stride)
{
	return i >= first && !((i - first) % stride);
}

/*
 * A region of @n pages where every page not is_missing() is written with
 * SEED_CPU (at its offset) and the others stay missing, registered for
 * MISSING faults on a new userfaultfd (@features, @flags), whose fd goes
 * to *@uffd. Returns the region, or MAP_FAILED.
 */
static unsigned char *missing_region(size_t n, size_t psz, size_t first,
				     size_t stride, __u64 features, int flags,
				     int *uffd)
{
	unsigned char *p = map_anon(n * psz, MAP_PRIVATE);
	size_t i;

	*uffd = -1;
	if (p == MAP_FAILED)
		return p;
	for (i = 0; i < n; i++)
		if (!is_missing(i, first, stride))
			pat_fill_at(p + i * psz, i * psz, psz, SEED_CPU);
	*uffd = uffd_open(features, flags);
	if (*uffd < 0 || uffd_register(*uffd, p, n * psz, UFFDIO_REGISTER_MODE_MISSING)) {
		if (*uffd >= 0)
			close(*uffd);
		*uffd = -1;
		munmap(p, n * psz);
		return MAP_FAILED;
	}
	return p;
}

/*
 * Check @buf, @n pages read from a missing_region(): the index of the
 * first page whose bytes are not what they should be, with the missing
 * pages holding @served at their offset (0: zeros), or -1.
 */
static long region_diff(const unsigned char *buf, size_t n, size_t psz,
			size_t first, size_t stride, unsigned int served)
{
	const unsigned char *b;
	size_t i;
	long d;

	for (i = 0; i < n; i++) {
		b = buf + i * psz;
		if (!is_missing(i, first, stride))
			d = pat_diff_at(b, i * psz, psz, SEED_CPU);
		else if (served)
			d = pat_diff_at(b, i * psz, psz, served);
		else
			d = zero_diff(b, psz);
		if (d >= 0)
			return i;
	}
	return -1;
}

/* The index of the first of @n pages of @buf not all @byte, or -1. */
static long fill_diff(const unsigned char *buf, size_t n, size_t psz,
		      unsigned char byte)
{
	size_t i;

	for (i = 0; i < n * psz; i++)
		if (buf[i] != byte)
			return i / psz;
	return -1;
}

FIXTURE(uffd_missing)
{
	struct uffd_env env;
};

FIXTURE_VARIANT(uffd_missing)
{
	size_t npages;
	size_t stride;
};

/* Every other page missing, in one batch of the driver. */
FIXTURE_VARIANT_ADD(uffd_missing, interleaved)
{
	.npages = 16,
	.stride = 2,
};

/* One page in three missing, over several batches (64 pages each). */
FIXTURE_VARIANT_ADD(uffd_missing, batches)
{
	.npages = 3 * 64 + 5,
	.stride = 3,
};

FIXTURE_SETUP(uffd_missing)
{
	env_setup(_metadata, &self->env);
}

FIXTURE_TEARDOWN(uffd_missing)
{
	env_teardown(&self->env);
}

/*
 * READ_UNLOCKED of a range mixing present and missing pages waits for the
 * handler to provide each missing page, once, as a read fault, and returns
 * every page's exact bytes; the CPU then sees the same.
 */
TEST_F(uffd_missing, read_unlocked_waits_for_handler)
{
	struct uffd_env *e = &self->env;
	size_t n = variant->npages, psz = e->psz, stride = variant->stride, i;
	unsigned char *buf = malloc(n * psz), *p;
	struct hmm_dummy_cmd cmd;
	struct hmm_dummy_counters c;
	struct handler *h = calloc(1, sizeof(*h));
	int uffd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, h);
	p = missing_region(n, psz, 0, stride, 0, 0, &uffd);
	if (p == MAP_FAILED)
		SKIP(return, "no userfaultfd");
	ASSERT_EQ(0, handler_start(h, uffd, p, n, psz, SEED_SERVED, false));
	memset(buf, CANARY, n * psz);

	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, (uintptr_t)p, buf, n,
			       &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_LE(1U, cmd.faults);
	ASSERT_EQ(-1, region_diff(buf, n, psz, 0, stride, SEED_SERVED));
	for (i = 0; i < n; i++)
		ASSERT_EQ(is_missing(i, 0, stride), atomic_load(&h->seen[i]))
			TH_LOG("page %zu: %u messages", i, atomic_load(&h->seen[i]));
	ASSERT_EQ(0U, atomic_load(&h->foreign));
	ASSERT_EQ(0U, atomic_load(&h->writes));
	ASSERT_EQ(0U, atomic_load(&h->failed));
	ASSERT_EQ(-1, region_diff(p, n, psz, 0, stride, SEED_SERVED));
	ASSERT_EQ(0, get_counters(e->fd, &c));
	ASSERT_EQ(n, c.mirrored);

	/* Everything is mirrored now: no fault, no message. */
	memset(buf, CANARY, n * psz);
	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, (uintptr_t)p, buf, n,
			       &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(0U, cmd.faults);
	ASSERT_EQ(-1, region_diff(buf, n, psz, 0, stride, SEED_SERVED));
	ASSERT_EQ((n + stride - 1) / stride, atomic_load(&h->messages));

	handler_stop(h);
	close(uffd);
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(p, n * psz));
	free(h);
	free(buf);
}

/* Closes a userfaultfd once a fault is waiting on it. */
struct closer {
	int uffd;
	int saw;
	struct uffd_msg msg;
};

static void *closer_main(void *arg)
{
	struct closer *cl = arg;

	cl->saw = uffd_next(cl->uffd, &cl->msg, WAIT_MS);
	close(cl->uffd);
	return NULL;
}

/*
 * Closing the userfaultfd while READ_UNLOCKED waits on it wakes the
 * fault, which then finds the region no longer registered: the missing
 * pages read as zeros, the present ones as they were.
 */
TEST_F(uffd, read_unlocked_wakes_when_uffd_closed)
{
	struct uffd_env *e = &self->env;
	size_t n = 8, psz = e->psz, first = 2, stride = 4;
	unsigned char *buf = malloc(n * psz), *p;
	struct hmm_dummy_cmd cmd;
	struct closer cl;
	pthread_t t;

	ASSERT_NE(NULL, buf);
	p = missing_region(n, psz, first, stride, 0, 0, &cl.uffd);
	if (p == MAP_FAILED)
		SKIP(return, "no userfaultfd");
	ASSERT_EQ(0, pthread_create(&t, NULL, closer_main, &cl));
	memset(buf, CANARY, n * psz);

	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, (uintptr_t)p, buf, n,
			       &cmd));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(1, cl.saw);
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, cl.msg.event);
	ASSERT_EQ((uintptr_t)p + first * psz, cl.msg.arg.pagefault.address & ~(psz - 1));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, region_diff(buf, n, psz, first, stride, 0));
	ASSERT_EQ(-1, region_diff(p, n, psz, first, stride, 0));
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(p, n * psz));
	free(buf);
}

/*
 * Write protection stops writes, not reads: READ_UNLOCKED and READ of
 * write-protected pages return their bytes without a userfaultfd message,
 * the device sees them read-only, and they stay protected.
 */
TEST_F(uffd, wp_pages_read_without_message)
{
	struct uffd_env *e = &self->env;
	size_t n = 8, psz = e->psz, len = n * psz, i;
	unsigned char *buf = malloc(len), *snap = malloc(n);
	unsigned char *p = map_anon(len, MAP_PRIVATE);
	struct hmm_dummy_cmd cmd;
	struct uffd_msg msg;
	int uffd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, snap);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, SEED_CPU);
	uffd = uffd_open(UFFD_FEATURE_PAGEFAULT_FLAG_WP, 0);
	if (uffd < 0 || uffd_register(uffd, p, len, UFFDIO_REGISTER_MODE_WP))
		SKIP(return, "no userfaultfd write protection");
	ASSERT_EQ(0, uffd_wp(uffd, p, len, true));
	for (i = 0; i < n; i++)
		ASSERT_TRUE(pagemap_bit(p + i * psz, psz, PM_UFFD_WP));

	memset(snap, 0x5a, n);
	ASSERT_EQ(0, dev_snap(e->fd, p, snap, n, NULL));
	ASSERT_EQ(-1, prot_diff(snap, n, HMM_DUMMY_PROT_READ))
		TH_LOG("a write-protected page is mirrored as 0x%02x", snap[0]);
	memset(buf, CANARY, len);
	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, (uintptr_t)p, buf, n,
			       &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, SEED_CPU));
	/* A fresh file: the locked path faults them in read-only too. */
	close(e->fd);
	e->fd = dummy_open(0);
	ASSERT_LE(0, e->fd);
	memset(buf, CANARY, len);
	ASSERT_EQ(0, dev_read(e->fd, p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, SEED_CPU));

	ASSERT_EQ(0, uffd_next(uffd, &msg, 0));
	for (i = 0; i < n; i++)
		ASSERT_TRUE(pagemap_bit(p + i * psz, psz, PM_UFFD_WP));
	ASSERT_EQ(-1, pat_diff(p, len, SEED_CPU));
	close(uffd);
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(p, len));
	free(snap);
	free(buf);
}

/*
 * In the asynchronous WP mode a write needs no handler: a device WRITE of
 * protected pages goes through, without a message, and lifts the
 * protection of the pages it wrote, as a CPU write would; the others stay
 * protected and unchanged.
 */
TEST_F(uffd, wp_async_device_write_lifts_protection)
{
	struct uffd_env *e = &self->env;
	size_t n = 8, psz = e->psz, len = n * psz, first = 2, nw = 4, i;
	unsigned char *buf = malloc(len), *p = map_anon(len, MAP_PRIVATE);
	struct hmm_dummy_cmd cmd;
	struct uffd_msg msg;
	bool written;
	int uffd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, SEED_CPU);
	uffd = wp_async_register(p, len);
	if (uffd < 0)
		SKIP(return, "no asynchronous userfaultfd write protection");
	ASSERT_EQ(0, uffd_wp(uffd, p, len, true));

	pat_fill_at(buf, first * psz, nw * psz, SEED_DEVICE);
	ASSERT_EQ(0, dev_write(e->fd, p + first * psz, buf, nw, &cmd));
	ASSERT_EQ(nw, cmd.cpages);
	ASSERT_EQ(0, uffd_next(uffd, &msg, 0));
	for (i = 0; i < n; i++) {
		written = i >= first && i < first + nw;
		ASSERT_EQ(-1, pat_diff_at(p + i * psz, i * psz, psz,
					  written ? SEED_DEVICE : SEED_CPU));
		ASSERT_EQ(!written, pagemap_bit(p + i * psz, psz, PM_UFFD_WP))
			TH_LOG("page %zu", i);
	}
	memset(buf, CANARY, len);
	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, (uintptr_t)p, buf, n,
			       &cmd));
	ASSERT_EQ(n, cmd.cpages);
	for (i = 0; i < n; i++)
		ASSERT_EQ(-1, pat_diff_at(buf + i * psz, i * psz, psz,
					  i >= first && i < first + nw ?
					  SEED_DEVICE : SEED_CPU));
	close(uffd);
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/*
 * Write protection moves with the pages: to the device and back to RAM,
 * each page keeps its uffd-wp bit and its data, and a CPU write then
 * lifts the protection of the page it wrote only (asynchronous mode).
 */
TEST_F(uffd, wp_protection_survives_migration)
{
	struct uffd_env *e = &self->env;
	size_t n = 16, psz = e->psz, len = n * psz, k = 5, i;
	unsigned char *buf = malloc(len), *p = map_anon(len, MAP_PRIVATE);
	struct hmm_dummy_cmd cmd;
	struct uffd_msg msg;
	int uffd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, SEED_CPU);
	uffd = wp_async_register(p, len);
	if (uffd < 0)
		SKIP(return, "no asynchronous userfaultfd write protection");
	ASSERT_EQ(0, uffd_wp(uffd, p, len, true));

	memset(buf, CANARY, len);
	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)p, buf, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, SEED_CPU));
	for (i = 0; i < n; i++)
		ASSERT_TRUE(pagemap_bit(p + i * psz, psz, PM_UFFD_WP))
			TH_LOG("device page %zu lost its protection", i);
	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_MIGRATE_TO_SYS, (uintptr_t)p, NULL, n, &cmd));
	ASSERT_EQ(n, cmd.cpages);
	for (i = 0; i < n; i++) {
		ASSERT_TRUE(pagemap_bit(p + i * psz, psz, PM_PRESENT));
		ASSERT_TRUE(pagemap_bit(p + i * psz, psz, PM_UFFD_WP))
			TH_LOG("page %zu came back unprotected", i);
	}
	ASSERT_EQ(-1, pat_diff(p, len, SEED_CPU));

	pat_fill_at(p + k * psz, k * psz, psz, SEED_LATER);
	ASSERT_EQ(0, uffd_next(uffd, &msg, 0));
	for (i = 0; i < n; i++) {
		ASSERT_EQ(i != k, pagemap_bit(p + i * psz, psz, PM_UFFD_WP))
			TH_LOG("page %zu", i);
		ASSERT_EQ(-1, pat_diff_at(p + i * psz, i * psz, psz,
					  i == k ? SEED_LATER : SEED_CPU));
	}
	close(uffd);
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

struct writer {
	unsigned char *page;
	size_t off;
	size_t psz;
	atomic_bool done;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	pat_fill_at(w->page, w->off, w->psz, SEED_LATER);
	atomic_store(&w->done, true);
	return NULL;
}

/*
 * No device command writes through a fault that may wait, so the write
 * that waits for the handler here is the CPU's: while it waits, the
 * device still reads the old bytes; once the handler lifts the
 * protection, the device reads what the CPU wrote.
 */
TEST_F(uffd, wp_cpu_write_waits_device_reads_old_then_new)
{
	struct uffd_env *e = &self->env;
	size_t n = 4, psz = e->psz, len = n * psz, k = 1, i;
	unsigned char *buf = malloc(len), *p = map_anon(len, MAP_PRIVATE);
	struct writer w = { .psz = psz };
	struct hmm_dummy_cmd cmd;
	struct uffd_msg msg;
	pthread_t t;
	int uffd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, p);
	pat_fill(p, len, SEED_CPU);
	uffd = uffd_open(UFFD_FEATURE_PAGEFAULT_FLAG_WP, 0);
	if (uffd < 0 || uffd_register(uffd, p, len, UFFDIO_REGISTER_MODE_WP))
		SKIP(return, "no userfaultfd write protection");
	ASSERT_EQ(0, uffd_wp(uffd, p, len, true));
	w.page = p + k * psz;
	w.off = k * psz;
	ASSERT_EQ(0, pthread_create(&t, NULL, writer_main, &w));

	ASSERT_EQ(1, uffd_next(uffd, &msg, WAIT_MS));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	ASSERT_EQ((uintptr_t)w.page, msg.arg.pagefault.address & ~(psz - 1));
	ASSERT_EQ(UFFD_PAGEFAULT_FLAG_WP | UFFD_PAGEFAULT_FLAG_WRITE,
		  msg.arg.pagefault.flags &
		  (UFFD_PAGEFAULT_FLAG_WP | UFFD_PAGEFAULT_FLAG_WRITE));
	memset(buf, CANARY, len);
	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, (uintptr_t)p, buf, n,
			       &cmd));
	ASSERT_EQ(n, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, len, SEED_CPU));
	ASSERT_FALSE(atomic_load(&w.done));

	ASSERT_EQ(0, uffd_wp(uffd, w.page, psz, false));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_TRUE(atomic_load(&w.done));
	memset(buf, CANARY, len);
	ASSERT_EQ(0, dummy_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, (uintptr_t)p, buf, n,
			       &cmd));
	ASSERT_EQ(n, cmd.cpages);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(-1, pat_diff_at(buf + i * psz, i * psz, psz,
					  i == k ? SEED_LATER : SEED_CPU));
		ASSERT_EQ(-1, pat_diff_at(p + i * psz, i * psz, psz,
					  i == k ? SEED_LATER : SEED_CPU));
	}
	ASSERT_EQ(0, uffd_next(uffd, &msg, 0));
	close(uffd);
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(p, len));
	free(buf);
}

/* A READ_UNLOCKED in a thread of its own, to be interrupted. */
struct reader {
	int fd;
	unsigned char *addr;
	unsigned char *buf;
	size_t npages;
	struct hmm_dummy_cmd cmd;
	int ret;
	atomic_bool done;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->ret = raw_cmd(r->fd, HMM_DUMMY_READ_UNLOCKED, r->addr, r->buf, r->npages,
			 &r->cmd);
	atomic_store(&r->done, true);
	return NULL;
}

/* Wait up to WAIT_MS for @flag. */
static bool wait_flag(atomic_bool *flag)
{
	int ms;

	for (ms = 0; ms < WAIT_MS && !atomic_load(flag); ms += 10)
		usleep(10000);
	return atomic_load(flag);
}

static void on_sigusr1(int sig)
{
}

/*
 * A signal ends a READ_UNLOCKED waiting for a page nobody provides: the
 * ioctl fails with EINTR (the handler has no SA_RESTART), cpages counts
 * the pages before the missing one and only they are in the buffer. Once
 * the page is provided, the same READ_UNLOCKED succeeds.
 */
TEST_F(uffd, signal_interrupts_read_unlocked)
{
	struct uffd_env *e = &self->env;
	size_t n = 8, psz = e->psz, k = 5;
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	struct reader r = { .fd = e->fd, .npages = n };
	struct uffd_msg msg;
	pthread_t t;
	int uffd;

	r.buf = malloc(n * psz);
	ASSERT_NE(NULL, r.buf);
	r.addr = missing_region(n, psz, k, n, 0, 0, &uffd);
	if (r.addr == MAP_FAILED)
		SKIP(return, "no userfaultfd");
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	memset(r.buf, CANARY, n * psz);
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_main, &r));

	ASSERT_EQ(1, uffd_next(uffd, &msg, WAIT_MS));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	ASSERT_EQ((uintptr_t)r.addr + k * psz, msg.arg.pagefault.address & ~(psz - 1));
	ASSERT_EQ(0U, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	ASSERT_FALSE(atomic_load(&r.done));
	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	if (!wait_flag(&r.done)) {
		/* Let the reader go before failing. */
		uffd_serve(uffd, r.addr, k, psz, SEED_SERVED);
		pthread_join(t, NULL);
		ASSERT_TRUE(0) TH_LOG("READ_UNLOCKED did not end on a signal");
	}
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(-EINTR, r.ret);
	/* Pages are copied out a batch at a time: none of the last batch. */
	ASSERT_GE(k, r.cmd.cpages);
	ASSERT_EQ(-1, region_diff(r.buf, r.cmd.cpages, psz, k, n, SEED_SERVED));
	ASSERT_EQ(-1, fill_diff(r.buf + r.cmd.cpages * psz, n - r.cmd.cpages, psz,
				CANARY));

	ASSERT_EQ(0, uffd_serve(uffd, r.addr, k, psz, SEED_SERVED));
	memset(r.buf, CANARY, n * psz);
	ASSERT_EQ(0, raw_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, r.addr, r.buf, n, &r.cmd));
	ASSERT_EQ(n, r.cmd.cpages);
	ASSERT_EQ(-1, region_diff(r.buf, n, psz, k, n, SEED_SERVED));
	ASSERT_EQ(-1, region_diff(r.addr, n, psz, k, n, SEED_SERVED));
	ASSERT_EQ(0, uffd_next(uffd, &msg, 0));
	close(uffd);
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(r.addr, n * psz));
	free(r.buf);
}

/*
 * The child's part of fatal_signal_ends_read_unlocked: its own device
 * file and userfaultfd (a child does not inherit the registration), the
 * userfaultfd's number written to @out, then a READ_UNLOCKED of a page
 * nobody provides. Only SIGKILL should end it.
 */
static void blocked_child(int out, size_t psz)
{
	unsigned char *buf = malloc(psz), *p;
	struct hmm_dummy_cmd cmd;
	int fd = dummy_open(0), uffd;

	p = missing_region(1, psz, 0, 1, 0, 0, &uffd);
	if (!buf || fd < 0 || p == MAP_FAILED)
		_exit(1);
	if (write(out, &uffd, sizeof(uffd)) != sizeof(uffd))
		_exit(1);
	raw_cmd(fd, HMM_DUMMY_READ_UNLOCKED, p, buf, 1, &cmd);
	_exit(2);
}

/*
 * SIGKILL ends a READ_UNLOCKED waiting for a page nobody provides: the
 * process dies of it at once, and its device file goes away with it.
 */
TEST_F(uffd, fatal_signal_ends_read_unlocked)
{
	struct uffd_env *e = &self->env;
	struct hmm_dummy_info before, after;
	struct pollfd pfd = { .events = POLLIN };
	int pipefd[2], num = -1, pidfd, cuffd, status, i;
	pid_t pid;

	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, get_info(e->fd, &before));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pipefd[0]);
		blocked_child(pipefd[1], e->psz);
	}
	close(pipefd[1]);
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	ASSERT_LE(0, pidfd);
	if (read(pipefd[0], &num, sizeof(num)) != sizeof(num)) {
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		SKIP(return, "the child could not set up (exit status %d)",
		     WEXITSTATUS(status));
	}
	/* The child's userfaultfd has a message once the child waits on it. */
	cuffd = syscall(SYS_pidfd_getfd, pidfd, num, 0);
	ASSERT_LE(0, cuffd);
	pfd.fd = cuffd;
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	ASSERT_EQ(0, waitpid(pid, &status, WNOHANG));

	ASSERT_EQ(0, kill(pid, SIGKILL));
	pfd.fd = pidfd;
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS)) TH_LOG("the killed child did not exit");
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(SIGKILL, WTERMSIG(status));
	close(cuffd);
	close(pidfd);
	close(pipefd[0]);
	/* The child's file is closed, so its mirror is gone. */
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, get_info(e->fd, &after));
		if (after.mirrors == before.mirrors)
			break;
		usleep(20000);
	}
	ASSERT_EQ(before.mirrors, after.mirrors);
	check_sane(_metadata, e, 0);
}

/*
 * What the reader child of read_unlocked_survives_stop_cont did, in memory
 * shared with the test.
 */
struct stop_cont_report {
	int ret;		/* of its READ_UNLOCKED */
	__u64 cpages;
	long bad_page;		/* region_diff() of what it read */
	unsigned int messages;	/* userfaultfd messages of its handler */
	unsigned int failed;	/* UFFDIO_COPY failures */
};

/*
 * The child's late handler: tells the test through @note that a fault
 * waits, then serves nothing until the test writes to @go (or WAIT_MS
 * passed), then provides the page and acknowledges the messages that
 * come after.
 */
struct late_handler {
	int uffd;
	int note;
	int go;
	unsigned char *base;
	size_t idx;
	size_t psz;
	struct stop_cont_report *rep;
};

static void *late_handler_main(void *arg)
{
	struct late_handler *lh = arg;
	struct pollfd pfd = { .fd = lh->go, .events = POLLIN };
	struct uffd_msg msg;
	bool served = false;
	char c = 0;

	while (uffd_next(lh->uffd, &msg, WAIT_MS) == 1) {
		__atomic_fetch_add(&lh->rep->messages, 1, __ATOMIC_RELAXED);
		if (served)
			continue;
		if (write(lh->note, &c, 1) != 1 || poll(&pfd, 1, WAIT_MS) < 0)
			__atomic_fetch_add(&lh->rep->failed, 1, __ATOMIC_RELAXED);
		if (uffd_serve(lh->uffd, lh->base, lh->idx, lh->psz, SEED_SERVED))
			__atomic_fetch_add(&lh->rep->failed, 1, __ATOMIC_RELAXED);
		served = true;
	}
	return NULL;
}

/*
 * The reader child: its own file and userfaultfd (a child does not
 * inherit the registration), a late handler, and one READ_UNLOCKED of a
 * range whose page @k is missing. The alarm ends a reader that hangs.
 */
static void stop_cont_child(size_t n, size_t k, size_t psz, int note, int go,
			    struct stop_cont_report *rep)
{
	unsigned char *buf = malloc(n * psz);
	struct late_handler lh = {
		.note = note, .go = go, .idx = k, .psz = psz, .rep = rep,
	};
	struct hmm_dummy_cmd cmd;
	int fd = dummy_open(0);
	pthread_t t;

	alarm(3 * WAIT_MS / 1000);
	lh.base = missing_region(n, psz, k, n, 0, 0, &lh.uffd);
	if (!buf || fd < 0 || lh.base == MAP_FAILED ||
	    pthread_create(&t, NULL, late_handler_main, &lh))
		_exit(1);
	memset(buf, CANARY, n * psz);
	rep->ret = raw_cmd(fd, HMM_DUMMY_READ_UNLOCKED, lh.base, buf, n, &cmd);
	rep->cpages = cmd.cpages;
	rep->bad_page = region_diff(buf, n, psz, k, n, SEED_SERVED);
	_exit(0);
}

/*
 * Job control is no reason to fail a device read: a reader process whose
 * READ_UNLOCKED waits for a userfaultfd handler is stopped with SIGSTOP
 * and continued with SIGCONT before the handler provides the page. The
 * read goes on (the ioctl restarts) and returns every page's bytes; it
 * does not end with EINTR, which the reader did not ask for (it handles
 * no signal).
 */
TEST_F(uffd, read_unlocked_survives_stop_cont)
{
	struct uffd_env *e = &self->env;
	size_t n = 4, psz = e->psz, k = 2;
	struct stop_cont_report *rep;
	struct pollfd pfd = { .events = POLLIN };
	int note[2], go[2], status;
	char c = 0;
	pid_t pid;

	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, rep);
	rep->ret = 1;
	rep->bad_page = -2;
	ASSERT_EQ(0, pipe(note));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(note[0]);
		close(go[1]);
		stop_cont_child(n, k, psz, note[1], go[0], rep);
	}
	/* go[0] stays open: the reader may be gone when it is told to go. */
	close(note[1]);

	/* The reader's fault waits for the handler. */
	pfd.fd = note[0];
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	if (read(note[0], &c, 1) != 1) {
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		SKIP(return, "the child could not set up (exit status %d)",
		     WEXITSTATUS(status));
	}
	ASSERT_EQ(0, kill(pid, SIGSTOP));
	ASSERT_EQ(pid, waitpid(pid, &status, WUNTRACED));
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(0, kill(pid, SIGCONT));
	ASSERT_EQ(pid, waitpid(pid, &status, WCONTINUED));
	ASSERT_TRUE(WIFCONTINUED(status));
	/* Give the reader time to go back to its wait, then serve it. */
	usleep(300000);
	ASSERT_EQ(1, write(go[1], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("the reader died of signal %d",
					      WTERMSIG(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	ASSERT_EQ(0, rep->ret) TH_LOG("READ_UNLOCKED: %s", strerror(-rep->ret));
	ASSERT_EQ(n, rep->cpages);
	ASSERT_EQ(-1, rep->bad_page);
	ASSERT_LE(1U, rep->messages);
	ASSERT_EQ(0U, rep->failed);
	close(note[0]);
	close(go[0]);
	close(go[1]);
	munmap(rep, sizeof(*rep));
	check_sane(_metadata, e, 0);
}

/*
 * With UFFD_FEATURE_SIGBUS a fault into a missing page fails at once
 * instead of waiting: READ and READ_UNLOCKED both end with EFAULT, copy
 * nothing and send no message, and leave the page missing.
 */
TEST_F(uffd, sigbus_mode_read_fails_without_waiting)
{
	struct uffd_env *e = &self->env;
	size_t n = 4, psz = e->psz, k = 2;
	unsigned char *buf = malloc(n * psz), *p;
	struct hmm_dummy_cmd cmd;
	struct uffd_msg msg;
	int uffd;

	ASSERT_NE(NULL, buf);
	p = missing_region(n, psz, k, n, UFFD_FEATURE_SIGBUS, 0, &uffd);
	if (p == MAP_FAILED)
		SKIP(return, "no userfaultfd SIGBUS mode");
	memset(buf, CANARY, n * psz);
	ASSERT_EQ(-EFAULT, raw_cmd(e->fd, HMM_DUMMY_READ, p, buf, n, &cmd));
	ASSERT_EQ(0U, cmd.cpages);
	ASSERT_EQ(-1, fill_diff(buf, n, psz, CANARY));
	ASSERT_EQ(-EFAULT, raw_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, p, buf, n, &cmd));
	ASSERT_EQ(0U, cmd.cpages);
	ASSERT_EQ(-1, fill_diff(buf, n, psz, CANARY));
	ASSERT_EQ(0, uffd_next(uffd, &msg, 0));
	ASSERT_FALSE(pagemap_bit(p + k * psz, psz, PM_PRESENT));

	/* The pages before it read as ever. */
	ASSERT_EQ(0, raw_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, p, buf, k, &cmd));
	ASSERT_EQ(k, cmd.cpages);
	ASSERT_EQ(-1, region_diff(buf, k, psz, k, n, SEED_SERVED));
	ASSERT_EQ(-1, fill_diff(buf + k * psz, n - k, psz, CANARY));
	close(uffd);
	check_sane(_metadata, e, k);
	ASSERT_EQ(0, munmap(p, n * psz));
	free(buf);
}

/*
 * A userfaultfd opened with UFFD_USER_MODE_ONLY handles the faults of user
 * mode only, and a device fault is not one: READ_UNLOCKED of a missing
 * page fails with EFAULT instead of waiting, and no message is sent.
 */
TEST_F(uffd, user_mode_only_uffd_does_not_serve_device)
{
	struct uffd_env *e = &self->env;
	size_t n = 2, psz = e->psz, k = 1;
	unsigned char *buf = malloc(n * psz), *p;
	struct hmm_dummy_cmd cmd;
	struct uffd_msg msg;
	int uffd;

	ASSERT_NE(NULL, buf);
	p = missing_region(n, psz, k, n, 0, UFFD_USER_MODE_ONLY, &uffd);
	if (p == MAP_FAILED)
		SKIP(return, "no user-mode-only userfaultfd");
	memset(buf, CANARY, n * psz);
	ASSERT_EQ(-EFAULT, raw_cmd(e->fd, HMM_DUMMY_READ_UNLOCKED, p, buf, n, &cmd));
	ASSERT_EQ(0U, cmd.cpages);
	ASSERT_EQ(-1, fill_diff(buf, n, psz, CANARY));
	ASSERT_EQ(0, uffd_next(uffd, &msg, 0));
	ASSERT_FALSE(pagemap_bit(p + k * psz, psz, PM_PRESENT));
	close(uffd);
	check_sane(_metadata, e, n);
	ASSERT_EQ(0, munmap(p, n * psz));
	free(buf);
}

TEST_HARNESS_MAIN
