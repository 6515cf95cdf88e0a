// SPDX-License-Identifier: GPL-2.0
/*
 * hmm_stress: threads and processes racing migrations, faults and mapping
 * changes on the same pages, with every byte they see checked exactly.
 *
 * The buffer is cut into one chunk per thread. A thread alone writes the
 * pages of its chunk, each time with a new generation: a stamp naming the
 * page, its owner and the generation, spread over the whole page so that
 * a stale, misplaced or torn copy cannot pass. Every thread migrates any
 * page to either device and back, reads it through the CPU and through
 * the devices, zaps it, pages it out; owners also mprotect, remap and
 * make their chunk PROT_NONE for a moment. Children forked in the middle
 * check that they see the pages as they were at the fork, then migrate
 * and write their own copies.
 *
 * Each page has a sequence count, odd while its content changes (a write,
 * a zap, a remap), and the generation it holds when even. A reader takes
 * the count before and after it looks: when both are the same even value
 * the page must hold exactly that generation (or zeroes after a zap, or
 * either after MADV_FREE); when they differ the look raced with a writer
 * and is not judged. Nothing else is ever accepted. Errors of the device
 * commands are judged the same way against a count of mapping changes.
 *
 * thp_race does the same for THPs: whole 2 MiB THPs, ranges straddling
 * two of them and small pieces move to both devices and back, unlocked,
 * while one thread writes, zaps and refaults them under a lock per THP
 * and checks every page it looks at, through the CPU and the devices.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
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
#include <sys/types.h>
#include <sys/wait.h>
#include "hmm_dummy_uapi.h"

#include "../kselftest_harness.h"
#include "hmm_dummy_util.h"

#define PAGE			4096UL
#define WORDS			(PAGE / 8)
#define MAX_THREADS		8	/* --threads; 4 unless told */
#define DEFAULT_THREADS		4
#define CHUNK_PAGES		32
#define MAX_PAGES		(MAX_THREADS * CHUNK_PAGES)
#define MAX_RANGE		16	/* pages of one device command */
#define DEFAULT_SECONDS		45
#define CHILD_SECONDS		3
#define MAX_NOTES		40
#define NOTE_LEN		240

#define STAMP_MAGIC		0xa5ULL
#define GEN_MASK		0xffffffffULL
/* val: the generation, and MADV_FREE's "or zero" */
#define VAL_FREE		0x100000000ULL
/* val: written by a device WRITE since the page was MADV_FREE'd */
#define VAL_DEV_AFTER_FREE	0x200000000ULL
/* Generations a forked child writes into its own copies. */
#define CHILD_GEN		0x80000000U

enum op {
	OP_CPU_READ, OP_CPU_WRITE, OP_DEV_WRITE, OP_TO_DEV, OP_TO_SYS, OP_DEV_READ,
	OP_DONTNEED, OP_FREE, OP_PAGEOUT, OP_MPROTECT, OP_PROT_NONE, OP_REMAP,
	OP_REOPEN, OP_FORK, OP_RELEASE, OP_VERIFY_OWN, NR_OPS
};

static const char * const op_names[NR_OPS] = {
	"cpu_read", "cpu_write", "dev_write", "migrate_to_dev", "migrate_to_sys",
	"dev_read", "dontneed", "madv_free", "pageout", "mprotect_ro_rw",
	"prot_none", "munmap_remap", "reopen", "fork", "release", "verify_own",
};

/* Per thousand operations. */
static const unsigned int op_weight[NR_OPS] = {
	[OP_CPU_READ] = 170, [OP_CPU_WRITE] = 120, [OP_DEV_WRITE] = 60,
	[OP_TO_DEV] = 160, [OP_TO_SYS] = 110, [OP_DEV_READ] = 120,
	[OP_DONTNEED] = 40, [OP_FREE] = 20, [OP_PAGEOUT] = 20, [OP_MPROTECT] = 20,
	[OP_PROT_NONE] = 10, [OP_REMAP] = 10, [OP_REOPEN] = 10, [OP_FORK] = 3,
	[OP_RELEASE] = 1, [OP_VERIFY_OWN] = 126,
};

/*
 * One page: @seq is odd while the content changes; when even, @val says
 * what the page holds.
 */
struct page_state {
	unsigned long seq;
	__u64 val;
	__u32 last_gen;		/* the owner's last generation */
};

/*
 * One thread's chunk. @wlock serialises changes of content (the owner's
 * writes, anyone's zap); @maplock is taken for reading by CPU readers and
 * for writing by the owner to unmap the chunk or take its access away;
 * @map_seq is odd while the mapping is not the usual one.
 */
struct chunk {
	pthread_mutex_t wlock;
	pthread_rwlock_t maplock;
	unsigned long map_seq;
	bool ro;
};

/* What the processes report, in shared memory. */
struct shared {
	unsigned long ops[NR_OPS];
	unsigned long checked;		/* page looks judged */
	unsigned long raced;		/* page looks that raced a writer */
	unsigned long child_checked;
	unsigned long errors_seen;	/* explained errors of device commands */
	unsigned long data_bad;
	unsigned long errno_bad;
	unsigned long child_bad;
	unsigned long nnotes;
	char notes[MAX_NOTES][NOTE_LEN];
};

struct thread {
	int id;
	pthread_t tid;
	__u64 rng;
	int fd[2];
	__u64 *buf;		/* MAX_RANGE pages for device commands */
	__u64 *page;		/* one page for CPU reads */
};

/* What a forker saw before fork(), and its parent after. */
struct fork_view {
	unsigned long seq[MAX_PAGES];
	__u64 val[MAX_PAGES];
	unsigned long map_seq[MAX_THREADS];
	bool ro[MAX_THREADS];
};

static struct shared *sh;
static char *mem;
static struct page_state pages[MAX_PAGES];
static struct chunk chunks[MAX_THREADS];
static struct thread threads[MAX_THREADS];
static struct fork_view pre_fork;
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t child_pid;
static struct timespec deadline;
static int stop;
static bool use_free = true;
/* Threads, each with a chunk of its own: --threads. */
static int nthreads = DEFAULT_THREADS;
static unsigned int npages = DEFAULT_THREADS * CHUNK_PAGES;

/* ---- helpers ---- */

static __u64 mix64(__u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __u64 rnd(struct thread *t)
{
	return mix64(t->rng += 0x9e3779b97f4a7c15ULL);
}

static unsigned int below(struct thread *t, unsigned int n)
{
	return n ? rnd(t) % n : 0;
}

static void count(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static void __printf(1, 2) note(const char *fmt, ...)
{
	unsigned long n = __atomic_fetch_add(&sh->nnotes, 1, __ATOMIC_RELAXED);
	va_list ap;

	if (n >= MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(sh->notes[n], NOTE_LEN, fmt, ap);
	va_end(ap);
}

static bool time_up(void)
{
	struct timespec now;

	if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline.tv_sec ||
	       (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

static char *page_addr(unsigned int p)
{
	return mem + (unsigned long)p * PAGE;
}

static unsigned int owner_of(unsigned int p)
{
	return p / CHUNK_PAGES;
}

/* ---- stamps ---- */

static __u64 stamp_head(unsigned int p, __u32 gen)
{
	return STAMP_MAGIC << 56 | (__u64)owner_of(p) << 48 | (__u64)p << 32 | gen;
}

static __u64 stamp_word(__u64 head, unsigned int j)
{
	return j ? mix64(head + j) : head;
}

static void stamp_fill(__u64 *w, unsigned int p, __u32 gen)
{
	__u64 head = stamp_head(p, gen);
	unsigned int j;

	for (j = 0; j < WORDS; j++)
		w[j] = stamp_word(head, j);
}

/* Whether @w holds the stamp with head @w[0], and which. */
static bool valid_stamp(const __u64 *w)
{
	unsigned int j;

	if (w[0] >> 56 != STAMP_MAGIC)
		return false;
	for (j = 1; j < WORDS; j++)
		if (w[j] != stamp_word(w[0], j))
			return false;
	return true;
}

/* What a page that is not as expected holds, for the report. */
static void describe(const __u64 *w, char *buf, size_t len)
{
	unsigned int j, z = 0;

	for (j = 0; j < WORDS; j++)
		z += !w[j];
	if (z == WORDS)
		snprintf(buf, len, "zeroes");
	else if (valid_stamp(w))
		snprintf(buf, len, "the stamp of page %llu gen %#llx (owner %llu)",
			 (w[0] >> 32) & 0xffff, w[0] & GEN_MASK, (w[0] >> 48) & 0xff);
	else
		snprintf(buf, len, "no stamp (%u zero words, word0 %#llx)", z, w[0]);
}

/*
 * Whether the page copy @w is what @val says page @p holds: exactly the
 * stamp of that generation, zeroes for generation 0. After MADV_FREE the
 * kernel may drop the page at any time, even while it is being read, so
 * zeroes from some word on are fine then.
 */
static bool page_ok(const __u64 *w, unsigned int p, __u64 val)
{
	__u32 gen = val & GEN_MASK;
	__u64 head = stamp_head(p, gen);
	unsigned int j;

	for (j = 0; j < WORDS; j++)
		if (w[j] != (gen ? stamp_word(head, j) : 0))
			break;
	if (j == WORDS)
		return true;
	if (!(val & VAL_FREE))
		return false;
	for (; j < WORDS; j++)
		if (w[j])
			return false;
	return true;
}

static void bad_page(const char *who, unsigned int p, __u64 val, const __u64 *w)
{
	char what[96];

	count(&sh->data_bad);
	describe(w, what, sizeof(what));
	note("%s: page %u (owner %u) should hold gen %#llx%s%s, holds %s", who, p,
	     owner_of(p), val & GEN_MASK, val & VAL_FREE ? " or zeroes" : "",
	     val & VAL_DEV_AFTER_FREE ? " [device WRITE after MADV_FREE]" : "", what);
}

/* ---- the sequence counts ---- */

static unsigned long seq_begin(unsigned int p, __u64 *val)
{
	unsigned long s = __atomic_load_n(&pages[p].seq, __ATOMIC_ACQUIRE);

	*val = __atomic_load_n(&pages[p].val, __ATOMIC_ACQUIRE);
	return s;
}

/* Whether the look since seq_begin() returned @s can be judged. */
static bool seq_stable(unsigned int p, unsigned long s)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(s & 1) && __atomic_load_n(&pages[p].seq, __ATOMIC_ACQUIRE) == s;
}

static void write_begin(unsigned int p)
{
	__atomic_fetch_add(&pages[p].seq, 1, __ATOMIC_SEQ_CST);
}

static void write_end(unsigned int p, __u64 val)
{
	__atomic_store_n(&pages[p].val, val, __ATOMIC_RELEASE);
	__atomic_fetch_add(&pages[p].seq, 1, __ATOMIC_SEQ_CST);
}

static unsigned long map_begin(unsigned int c)
{
	return __atomic_load_n(&chunks[c].map_seq, __ATOMIC_ACQUIRE);
}

static void map_change(unsigned int c)
{
	__atomic_fetch_add(&chunks[c].map_seq, 1, __ATOMIC_SEQ_CST);
}

/* Judge the look at @p that began with (@s, @val) and saw @w. */
static void judge(const char *who, unsigned int p, unsigned long s, __u64 val, const __u64 *w)
{
	if (!seq_stable(p, s)) {
		count(&sh->raced);
		return;
	}
	count(&sh->checked);
	if (!page_ok(w, p, val))
		bad_page(who, p, val, w);
}

/* ---- device commands ---- */

static int dev_cmd(int fd, unsigned long req, unsigned int p, void *buf, unsigned int n,
		   struct hmm_dummy_cmd *out)
{
	return dummy_cmd(fd, req, (uintptr_t)page_addr(p), buf, n, out);
}

/*
 * An error of a device command on pages [p, p + n) is explained when the
 * mapping of one of their chunks changed meanwhile; @maps holds the
 * map_seq of each chunk from before.
 */
static bool mapping_changed(unsigned int p, unsigned int n, const unsigned long *maps)
{
	unsigned int c;

	for (c = owner_of(p); c <= owner_of(p + n - 1); c++)
		if ((maps[c] & 1) || map_begin(c) != maps[c])
			return true;
	return false;
}

static void bad_errno(struct thread *t, const char *what, unsigned int p, unsigned int n,
		      int ret)
{
	count(&sh->errno_bad);
	note("thread %d: %s of pages %u+%u: %s", t->id, what, p, n, strerror(-ret));
}

static void pick_range(struct thread *t, unsigned int *p, unsigned int *n)
{
	*n = 1 + below(t, below(t, 4) ? 4 : MAX_RANGE);
	*p = below(t, npages - *n + 1);
}

/* Take the counts of pages [p, p + n) and of their chunks. */
static void range_begin(unsigned int p, unsigned int n, unsigned long *s, __u64 *v,
			unsigned long *maps)
{
	unsigned int i, c;

	for (c = 0; c < nthreads; c++)
		maps[c] = map_begin(c);
	for (i = 0; i < n; i++)
		s[i] = seq_begin(p + i, &v[i]);
}

/*
 * READ through the device, or MIGRATE_TO_DEV and its read back: the pages
 * the device copied must be what the counts say.
 */
static void op_dev_look(struct thread *t, bool migrate)
{
	unsigned long s[MAX_RANGE], maps[MAX_THREADS];
	struct hmm_dummy_cmd out = { 0 };
	__u64 v[MAX_RANGE];
	unsigned int p, n, i;
	int ret, dev = below(t, 2);

	pick_range(t, &p, &n);
	range_begin(p, n, s, v, maps);
	ret = dev_cmd(t->fd[dev], migrate ? HMM_DUMMY_MIGRATE_TO_DEV : HMM_DUMMY_READ, p,
		      t->buf, n, &out);
	for (i = 0; i < out.cpages && i < n; i++)
		judge(migrate ? "migrate_to_dev read back" : "device read", p + i, s[i], v[i],
		      t->buf + i * WORDS);
	if (!ret || (migrate && ret == -ENOENT))
		return;
	if (ret == -EBUSY) {
		count(&sh->errors_seen);
		return;
	}
	if (mapping_changed(p, n, maps)) {
		count(&sh->errors_seen);
		return;
	}
	bad_errno(t, migrate ? "MIGRATE_TO_DEV" : "READ", p, n, ret);
}

static void op_to_sys(struct thread *t)
{
	unsigned long maps[MAX_THREADS], s[MAX_RANGE];
	struct hmm_dummy_cmd out = { 0 };
	__u64 v[MAX_RANGE];
	unsigned int p, n;
	int ret;

	pick_range(t, &p, &n);
	range_begin(p, n, s, v, maps);
	ret = dev_cmd(t->fd[below(t, 2)], HMM_DUMMY_MIGRATE_TO_SYS, p, NULL, n, &out);
	if (!ret && out.cpages > n)
		bad_errno(t, "MIGRATE_TO_SYS cpages too big", p, n, -EOVERFLOW);
	if (!ret)
		return;
	if (mapping_changed(p, n, maps)) {
		count(&sh->errors_seen);
		return;
	}
	bad_errno(t, "MIGRATE_TO_SYS", p, n, ret);
}

/* ---- CPU access ---- */

/* Copy page @p to @w with 8-byte loads; the caller holds the maplock. */
static void cpu_copy(__u64 *w, unsigned int p)
{
	const __u64 *src = (const __u64 *)page_addr(p);
	unsigned int j;

	for (j = 0; j < WORDS; j++)
		w[j] = __atomic_load_n(&src[j], __ATOMIC_RELAXED);
}

static void cpu_look(struct thread *t, unsigned int p, const char *who)
{
	struct chunk *c = &chunks[owner_of(p)];
	unsigned long s;
	__u64 v;

	pthread_rwlock_rdlock(&c->maplock);
	s = seq_begin(p, &v);
	cpu_copy(t->page, p);
	judge(who, p, s, v, t->page);
	pthread_rwlock_unlock(&c->maplock);
}

static void op_cpu_read(struct thread *t)
{
	unsigned int p, n, i;

	pick_range(t, &p, &n);
	for (i = 0; i < n && i < 4; i++)
		cpu_look(t, p + i, "cpu read");
}

/* The owner's own pages, all of them. */
static void op_verify_own(struct thread *t)
{
	unsigned int i;

	for (i = 0; i < CHUNK_PAGES; i++)
		cpu_look(t, t->id * CHUNK_PAGES + i, "owner verify");
}

/* A page of the caller's chunk. */
static unsigned int own_page(struct thread *t)
{
	return t->id * CHUNK_PAGES + below(t, CHUNK_PAGES);
}

/* The owner writes new generations into pages [p, p + n) of its chunk. */
static void op_write(struct thread *t, bool device)
{
	struct chunk *c = &chunks[t->id];
	unsigned int p = own_page(t), n, i, j;
	__u64 val[4], *dst;
	int ret;

	n = 1 + below(t, 4);
	if (p + n > (t->id + 1) * CHUNK_PAGES)
		n = (t->id + 1) * CHUNK_PAGES - p;
	if (c->ro)
		return;
	pthread_mutex_lock(&c->wlock);
	for (i = 0; i < n; i++) {
		val[i] = ++pages[p + i].last_gen;
		/* Keep the MADV_FREE history, to name a lost write. */
		if (device && (__atomic_load_n(&pages[p + i].val, __ATOMIC_RELAXED) &
			       (VAL_FREE | VAL_DEV_AFTER_FREE)))
			val[i] |= VAL_DEV_AFTER_FREE;
		write_begin(p + i);
		if (device)
			stamp_fill(t->buf + i * WORDS, p + i, val[i]);
	}
	if (device) {
		/*
		 * A WRITE that fails part way leaves a batch half written:
		 * do it again, the pages still counted as being written.
		 */
		for (i = 0; i < 8; i++) {
			ret = dev_cmd(t->fd[below(t, 2)], HMM_DUMMY_WRITE, p, t->buf, n, NULL);
			if (ret != -EBUSY)
				break;
			count(&sh->errors_seen);
		}
		if (ret)
			bad_errno(t, "owner's WRITE", p, n, ret);
	} else {
		for (i = 0; i < n; i++) {
			dst = (__u64 *)page_addr(p + i);
			for (j = 0; j < WORDS; j++)
				__atomic_store_n(&dst[j], stamp_word(stamp_head(p + i, val[i]), j),
						 __ATOMIC_RELAXED);
		}
	}
	for (i = 0; i < n; i++)
		write_end(p + i, val[i]);
	pthread_mutex_unlock(&c->wlock);
}

/*
 * MADV_DONTNEED of a few pages of any chunk: the zap is a change of
 * content, so it takes the chunk's wlock and the pages' counts.
 */
static void op_dontneed(struct thread *t)
{
	unsigned int p = below(t, npages), n = 1 + below(t, 4), i;
	struct chunk *c = &chunks[owner_of(p)];
	__u64 old;

	if (owner_of(p + n - 1) != owner_of(p))
		n = 1;
	pthread_rwlock_rdlock(&c->maplock);
	pthread_mutex_lock(&c->wlock);
	for (i = 0; i < n; i++)
		write_begin(p + i);
	if (madvise(page_addr(p), n * PAGE, MADV_DONTNEED))
		bad_errno(t, "MADV_DONTNEED", p, n, -errno);
	for (i = 0; i < n; i++) {
		old = __atomic_load_n(&pages[p + i].val, __ATOMIC_RELAXED);
		write_end(p + i, old & VAL_DEV_AFTER_FREE);
	}
	pthread_mutex_unlock(&c->wlock);
	pthread_rwlock_unlock(&c->maplock);
}

/* MADV_FREE of own pages: until the next write they read as before or zeroes. */
static void op_free(struct thread *t)
{
	struct chunk *c = &chunks[t->id];
	unsigned int p = own_page(t);
	__u64 old;

	if (!use_free || c->ro)
		return;
	pthread_mutex_lock(&c->wlock);
	write_begin(p);
	/* Published before the advice: a reader may see zeroes at once. */
	old = __atomic_load_n(&pages[p].val, __ATOMIC_RELAXED);
	write_end(p, old | VAL_FREE);
	if (madvise(page_addr(p), PAGE, MADV_FREE))
		bad_errno(t, "MADV_FREE", p, 1, -errno);
	pthread_mutex_unlock(&c->wlock);
}

static void op_pageout(struct thread *t)
{
	unsigned int p, n;

	pick_range(t, &p, &n);
	/* Content stays: nothing to count. Holes make it fail, harmlessly. */
	madvise(page_addr(p), n * PAGE, MADV_PAGEOUT);
}

/* The owner toggles its chunk between read-only and read-write. */
static void op_mprotect(struct thread *t)
{
	struct chunk *c = &chunks[t->id];

	pthread_mutex_lock(&c->wlock);
	map_change(t->id);
	if (mprotect(page_addr(t->id * CHUNK_PAGES), CHUNK_PAGES * PAGE,
		     c->ro ? PROT_READ | PROT_WRITE : PROT_READ))
		bad_errno(t, "mprotect", t->id * CHUNK_PAGES, CHUNK_PAGES, -errno);
	else
		c->ro = !c->ro;
	map_change(t->id);
	pthread_mutex_unlock(&c->wlock);
}

/*
 * The owner takes all access away from its chunk for a moment: a device
 * command on it must fail the documented way meanwhile, and the data must
 * be there afterwards.
 */
static void op_prot_none(struct thread *t)
{
	struct chunk *c = &chunks[t->id];
	unsigned int p = own_page(t);
	int prot = c->ro ? PROT_READ : PROT_READ | PROT_WRITE, ret;

	pthread_rwlock_wrlock(&c->maplock);
	map_change(t->id);
	if (mprotect(page_addr(t->id * CHUNK_PAGES), CHUNK_PAGES * PAGE, PROT_NONE)) {
		bad_errno(t, "mprotect PROT_NONE", p, 1, -errno);
		goto out;
	}
	ret = dev_cmd(t->fd[below(t, 2)], HMM_DUMMY_READ, p, t->buf, 1, NULL);
	if (ret != -EFAULT)
		bad_errno(t, "READ of PROT_NONE (want EFAULT)", p, 1, ret);
	ret = dev_cmd(t->fd[below(t, 2)], below(t, 2) ? HMM_DUMMY_MIGRATE_TO_DEV :
		      HMM_DUMMY_MIGRATE_TO_SYS, p, t->buf, 1, NULL);
	if (ret != -EINVAL)
		bad_errno(t, "migration of PROT_NONE (want EINVAL)", p, 1, ret);
	if (mprotect(page_addr(t->id * CHUNK_PAGES), CHUNK_PAGES * PAGE, prot))
		bad_errno(t, "mprotect back", p, 1, -errno);
out:
	map_change(t->id);
	pthread_rwlock_unlock(&c->maplock);
}

/* The owner replaces its chunk with a new mapping: zeroes everywhere. */
static void op_remap(struct thread *t)
{
	struct chunk *c = &chunks[t->id];
	unsigned int first = t->id * CHUNK_PAGES, i;
	char *a = page_addr(first);

	pthread_rwlock_wrlock(&c->maplock);
	pthread_mutex_lock(&c->wlock);
	map_change(t->id);
	for (i = 0; i < CHUNK_PAGES; i++)
		write_begin(first + i);
	if (munmap(a, CHUNK_PAGES * PAGE) ||
	    mmap(a, CHUNK_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != a) {
		bad_errno(t, "munmap+mmap", first, CHUNK_PAGES, -errno);
		__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	}
	c->ro = false;
	for (i = 0; i < CHUNK_PAGES; i++)
		write_end(first + i, 0);
	map_change(t->id);
	pthread_mutex_unlock(&c->wlock);
	pthread_rwlock_unlock(&c->maplock);
}

/* Close one of the thread's files and open it again, maybe in core copy mode. */
static void op_reopen(struct thread *t)
{
	int dev = below(t, 2);
	__u32 mode = below(t, 4) ? HMM_DUMMY_COPY_DRIVER : HMM_DUMMY_COPY_CORE;

	close(t->fd[dev]);
	t->fd[dev] = dummy_open(dev);
	if (t->fd[dev] < 0) {
		bad_errno(t, "reopen", 0, 0, -errno);
		__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
		return;
	}
	if (ioctl(t->fd[dev], HMM_DUMMY_COPY_MODE, &mode))
		bad_errno(t, "COPY_MODE", 0, 0, -errno);
}

static void op_release(struct thread *t)
{
	struct hmm_dummy_cmd out;
	int ret = dummy_cmd(t->fd[below(t, 2)], HMM_DUMMY_RELEASE, 0, NULL, 0, &out);

	if (ret)
		bad_errno(t, "RELEASE", 0, 0, ret);
}

/* ---- forked children ---- */

static void child_note_bad(unsigned int p, __u64 val, const __u64 *w, const char *how)
{
	char what[96];

	count(&sh->child_bad);
	describe(w, what, sizeof(what));
	note("child %d, %s: page %u should hold gen %#llx, holds %s", getpid(), how, p,
	     val & GEN_MASK, what);
}

/*
 * The child's look at its pages: @expect[p] is what page p must hold, or
 * ~0 when it cannot be known (it changed around the fork).
 */
static void child_check(unsigned int p, __u64 val, const __u64 *w, const char *how)
{
	count(&sh->child_checked);
	if (!page_ok(w, p, val))
		child_note_bad(p, val, w, how);
}

static void child_ops(struct thread *t, __u64 *expect, bool *writable)
{
	struct hmm_dummy_cmd out;
	unsigned int p, n, i, j;
	struct timespec end;
	int fd[2], ret, k;
	__u64 *dst;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += CHILD_SECONDS;
	if (end.tv_sec > deadline.tv_sec)
		end = deadline;
	deadline = end;
	fd[0] = dummy_open(0);
	fd[1] = dummy_open(1);
	for (k = 0; k < 400 && !time_up(); k++) {
		pick_range(t, &p, &n);
		for (i = 0; i < n && expect[p + i] != ~0ULL; i++)
			;
		n = i;
		if (!n)
			continue;
		switch (below(t, 6)) {
		case 0:
			cpu_copy(t->page, p);
			child_check(p, expect[p], t->page, "cpu read");
			break;
		case 1:
		case 2:
			ret = dev_cmd(fd[below(t, 2)], below(t, 2) ? HMM_DUMMY_READ :
				      HMM_DUMMY_MIGRATE_TO_DEV, p, t->buf, n, &out);
			for (i = 0; i < out.cpages && i < n; i++)
				child_check(p + i, expect[p + i], t->buf + i * WORDS,
					    "device read");
			if (ret && ret != -ENOENT && ret != -EBUSY) {
				count(&sh->child_bad);
				note("child %d: device command on pages %u+%u: %s", getpid(), p,
				     n, strerror(-ret));
			}
			break;
		case 3:
			ret = dev_cmd(fd[below(t, 2)], HMM_DUMMY_MIGRATE_TO_SYS, p, NULL, n, NULL);
			if (ret) {
				count(&sh->child_bad);
				note("child %d: MIGRATE_TO_SYS %u+%u: %s", getpid(), p, n,
				     strerror(-ret));
			}
			break;
		case 4:
			if (!writable[owner_of(p)])
				break;
			expect[p] = CHILD_GEN | k;
			dst = (__u64 *)page_addr(p);
			for (j = 0; j < WORDS; j++)
				dst[j] = stamp_word(stamp_head(p, expect[p]), j);
			break;
		default:
			if (madvise(page_addr(p), PAGE, MADV_DONTNEED))
				break;
			expect[p] = 0;
			break;
		}
	}
	/* Every page it knows, once more, after all of that. */
	for (p = 0; p < npages; p++) {
		if (expect[p] == ~0ULL)
			continue;
		cpu_copy(t->page, p);
		child_check(p, expect[p], t->page, "final cpu read");
	}
}

/*
 * In the child: the parent sends what it saw after fork(). A page whose
 * count did not move from before the fork to after it holds, in the
 * child, exactly what the count says.
 */
static void child_main(struct thread *t, int rfd)
{
	static struct fork_view post;
	static __u64 expect[MAX_PAGES];
	bool writable[MAX_THREADS];
	size_t got = 0;
	ssize_t r;
	unsigned int p, c;

	while (got < sizeof(post)) {
		r = read(rfd, (char *)&post + got, sizeof(post) - got);
		if (r <= 0)
			_exit(3);
		got += r;
	}
	for (c = 0; c < nthreads; c++)
		writable[c] = !pre_fork.ro[c];
	for (p = 0; p < npages; p++) {
		c = owner_of(p);
		expect[p] = ~0ULL;
		if ((pre_fork.map_seq[c] & 1) || post.map_seq[c] != pre_fork.map_seq[c] ||
		    (pre_fork.seq[p] & 1) || post.seq[p] != pre_fork.seq[p] ||
		    (pre_fork.val[p] & VAL_FREE))
			continue;
		expect[p] = pre_fork.val[p] & GEN_MASK;
	}
	child_ops(t, expect, writable);
	_exit(0);
}

static void take_view(struct fork_view *v)
{
	unsigned int i;

	for (i = 0; i < nthreads; i++) {
		v->map_seq[i] = map_begin(i);
		v->ro[i] = __atomic_load_n(&chunks[i].ro, __ATOMIC_ACQUIRE);
	}
	for (i = 0; i < npages; i++)
		v->seq[i] = seq_begin(i, &v->val[i]);
}

static void reap_child(bool block)
{
	int status;

	if (!child_pid || waitpid(child_pid, &status, block ? 0 : WNOHANG) != child_pid)
		return;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		count(&sh->child_bad);
		note("child %d ended with status %#x", child_pid, status);
	}
	child_pid = 0;
}

/* One child at a time; it checks the pages the fork froze for it. */
static void op_fork(struct thread *t)
{
	static struct fork_view post;
	int pfd[2];
	pid_t pid;

	if (pthread_mutex_trylock(&fork_lock))
		return;
	reap_child(false);
	if (child_pid || pipe(pfd))
		goto out;
	take_view(&pre_fork);
	pid = fork();
	if (!pid) {
		close(pfd[1]);
		t->rng ^= getpid();
		child_main(t, pfd[0]);
	}
	take_view(&post);
	close(pfd[0]);
	if (pid > 0) {
		child_pid = pid;
		if (write(pfd[1], &post, sizeof(post)) != sizeof(post))
			note("short write to the child");
	}
	close(pfd[1]);
out:
	pthread_mutex_unlock(&fork_lock);
}

/* ---- the threads ---- */

static int pick_op(struct thread *t)
{
	unsigned int r = below(t, 1000), acc = 0;
	int k;

	for (k = 0; k < NR_OPS; k++) {
		acc += op_weight[k];
		if (r < acc)
			return k;
	}
	return OP_VERIFY_OWN;
}

static void op_cpu_write(struct thread *t)
{
	op_write(t, false);
}

static void op_dev_write(struct thread *t)
{
	op_write(t, true);
}

static void op_to_dev(struct thread *t)
{
	op_dev_look(t, true);
}

static void op_dev_read(struct thread *t)
{
	op_dev_look(t, false);
}

static void (*const op_fn[NR_OPS])(struct thread *t) = {
	[OP_CPU_READ] = op_cpu_read, [OP_CPU_WRITE] = op_cpu_write,
	[OP_DEV_WRITE] = op_dev_write, [OP_TO_DEV] = op_to_dev, [OP_TO_SYS] = op_to_sys,
	[OP_DEV_READ] = op_dev_read, [OP_DONTNEED] = op_dontneed, [OP_FREE] = op_free,
	[OP_PAGEOUT] = op_pageout, [OP_MPROTECT] = op_mprotect,
	[OP_PROT_NONE] = op_prot_none, [OP_REMAP] = op_remap, [OP_REOPEN] = op_reopen,
	[OP_FORK] = op_fork, [OP_RELEASE] = op_release, [OP_VERIFY_OWN] = op_verify_own,
};

static void *thread_main(void *arg)
{
	struct thread *t = arg;
	int k;

	while (!time_up()) {
		k = pick_op(t);
		count(&sh->ops[k]);
		op_fn[k](t);
	}
	return NULL;
}

/* ---- setup and the end ---- */

static int setup(__u64 seed)
{
	unsigned int i;

	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	for (i = 0; i < nthreads; i++) {
		pthread_mutex_init(&chunks[i].wlock, NULL);
		pthread_rwlock_init(&chunks[i].maplock, NULL);
		threads[i].id = i;
		threads[i].rng = seed + i * 0x1000193;
		threads[i].fd[0] = dummy_open(0);
		threads[i].fd[1] = dummy_open(1);
		threads[i].buf = malloc(MAX_RANGE * PAGE);
		threads[i].page = malloc(PAGE);
		if (threads[i].fd[0] < 0 || threads[i].fd[1] < 0 || !threads[i].buf ||
		    !threads[i].page)
			return -1;
	}
	return 0;
}

/* With everything quiet: every page through the CPU and through a device. */
static void final_check(void)
{
	struct thread *t = &threads[0];
	struct hmm_dummy_cmd out;
	unsigned int p, i;
	int ret;

	for (p = 0; p < npages; p += MAX_RANGE) {
		ret = dev_cmd(t->fd[p / MAX_RANGE % 2], HMM_DUMMY_READ, p, t->buf, MAX_RANGE,
			      &out);
		if (ret)
			bad_errno(t, "final READ", p, MAX_RANGE, ret);
		for (i = 0; i < out.cpages && i < MAX_RANGE; i++)
			judge("final device read", p + i, pages[p + i].seq, pages[p + i].val,
			      t->buf + i * WORDS);
		for (i = 0; i < MAX_RANGE; i++)
			cpu_look(t, p + i, "final cpu read");
	}
}

static void teardown(void)
{
	unsigned int i;

	munmap(mem, npages * PAGE);
	for (i = 0; i < nthreads; i++) {
		close(threads[i].fd[0]);
		close(threads[i].fd[1]);
		free(threads[i].buf);
		free(threads[i].page);
	}
}

static void report(double secs)
{
	unsigned long i, n = sh->nnotes < MAX_NOTES ? sh->nnotes : MAX_NOTES, total = 0;
	char line[600];
	size_t off = 0;
	int k;

	for (k = 0; k < NR_OPS; k++) {
		total += sh->ops[k];
		off += snprintf(line + off, sizeof(line) - off, "%s%s=%lu", k ? " " : "",
				op_names[k], sh->ops[k]);
	}
	ksft_print_msg("%lu operations in %.2f minutes (%.0f a second, %d threads): %s\n",
		       total, secs / 60, total / secs, nthreads, line);
	ksft_print_msg("looks: %lu judged, %lu raced, %lu in children; %lu errors explained\n",
		       sh->checked, sh->raced, sh->child_checked, sh->errors_seen);
	for (i = 0; i < n; i++)
		ksft_print_msg("finding: %s\n", sh->notes[i]);
	if (sh->nnotes > n)
		ksft_print_msg("... and %lu more\n", sh->nnotes - n);
}

/* The harness's time limit of random_ops; --time must leave room in it. */
#define STRESS_TIMEOUT		300
#define MAX_SECONDS		(STRESS_TIMEOUT - 60)

/* Set by main() from the command line. */
static __u64 opt_seed;
static long opt_seconds = DEFAULT_SECONDS;

FIXTURE(stress)
{
	__u64 seed;
	long seconds;
};

FIXTURE_SETUP(stress)
{
	if (access("/dev/hmm_dummy1", F_OK))
		SKIP(return, "/dev/hmm_dummy0 and 1 are needed (is hmm_dummy loaded?)");
	self->seed = opt_seed;
	self->seconds = opt_seconds;
}

FIXTURE_TEARDOWN(stress)
{
}

/*
 * The random mix described at the top: every page look as expected, every
 * device command error explained, children that saw their pages as at the
 * fork, and no device memory left in use at the end.
 */
TEST_F_TIMEOUT(stress, random_ops, STRESS_TIMEOUT)
{
	struct timespec t0, t1;
	long used0, used1;
	double secs;
	int i;

	ksft_print_msg("seed %llu, %ld s, %d threads of %d pages%s\n",
		       (unsigned long long)self->seed, self->seconds, nthreads,
		       CHUNK_PAGES, use_free ? "" : ", no MADV_FREE");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	ASSERT_EQ(0, setup(self->seed));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	deadline = t0;
	deadline.tv_sec += self->seconds;
	for (i = 0; i < nthreads; i++)
		ASSERT_EQ(0, pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]));
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i].tid, NULL);
	reap_child(true);
	final_check();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	teardown();
	used0 = dummy_settled_pages_used(0);
	used1 = dummy_settled_pages_used(1);

	report(secs);
	EXPECT_EQ(0UL, sh->data_bad)
		TH_LOG("%lu of %lu page looks not as expected", sh->data_bad, sh->checked);
	EXPECT_EQ(0UL, sh->errno_bad)
		TH_LOG("%lu device command errors not explained", sh->errno_bad);
	EXPECT_NE(0UL, sh->ops[OP_FORK]);
	EXPECT_EQ(0UL, sh->child_bad)
		TH_LOG("forked children: %lu of %lu checks bad", sh->child_bad,
		       sh->child_checked);
	EXPECT_EQ(0, used0);
	EXPECT_EQ(0, used1);
}

/* ---- exclusive access racing fork(), mprotect() and device reads ---- */

/* Bounds of the races below, in TCG time. */
#define FORK_SECONDS		20
#define RACE_FORKS		10000
#define RACE_SECONDS		10
#define RACE_EXCLUSIVES		20000
#define RACE_READS		20000
#define UNRELATED		4	/* threads changing other pages */
#define RACE_ALARM		(FORK_SECONDS + 10)
#define SEED_X			21
#define CANARY			0xa5

/*
 * Page X of private anonymous memory holding a pattern, and two files:
 * @fd[0] and @fd[1] are separate opens of /dev/hmm_dummy0, so separate
 * mirrors of this mm.
 */
FIXTURE(excl_race)
{
	int fd[2];
	size_t psz;
	unsigned char *x;
};

FIXTURE_SETUP(excl_race)
{
	char why[80];
	int i;

	self->fd[0] = -1;
	self->fd[1] = -1;
	self->psz = sysconf(_SC_PAGESIZE);
	self->x = MAP_FAILED;
	for (i = 0; i < 2; i++) {
		self->fd[i] = dummy_fixture_open(0, why, sizeof(why));
		if (self->fd[i] < 0 && why[0])
			SKIP(return, "%s", why);
		ASSERT_LE(0, self->fd[i]);
	}
	self->x = map_anon(self->psz, MAP_PRIVATE);
	ASSERT_NE(MAP_FAILED, self->x);
	pat_fill(self->x, self->psz, SEED_X);
}

FIXTURE_TEARDOWN(excl_race)
{
	if (self->x != MAP_FAILED)
		munmap(self->x, self->psz);
	if (self->fd[0] >= 0)
		close(self->fd[0]);
	if (self->fd[1] >= 0)
		close(self->fd[1]);
}

/* Seconds since @t0. */
static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - t0->tv_sec + (now.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * A thread doing one thing over and over until told to stop: EXCLUSIVE
 * of page @page through @fd, its read back checked, or (@page NULL)
 * mprotect() of @other to read-only and back, or (@zap) MADV_DONTNEED of
 * @other and a write that faults it in again.
 */
struct looper {
	int fd;
	unsigned char *page;
	unsigned char *other;
	bool zap;
	size_t psz;
	pthread_t thread;
	atomic_bool stop;
	atomic_ulong done;
	unsigned long errors;
	unsigned long bad_data;
	int first_error;
};

static void looper_error(struct looper *l, int err)
{
	if (!l->errors++)
		l->first_error = err;
}

static void *looper_main(void *arg)
{
	struct looper *l = arg;
	unsigned char *buf = malloc(l->psz);
	struct hmm_dummy_cmd out;
	int ret;

	if (!buf) {
		looper_error(l, -ENOMEM);
		return NULL;
	}
	while (!atomic_load(&l->stop)) {
		if (!l->page && l->zap) {
			if (madvise(l->other, l->psz, MADV_DONTNEED))
				looper_error(l, -errno);
			l->other[0] = 1;
			atomic_fetch_add(&l->done, 1);
			continue;
		}
		if (!l->page) {
			if (mprotect(l->other, l->psz, PROT_READ) ||
			    mprotect(l->other, l->psz, PROT_READ | PROT_WRITE))
				looper_error(l, -errno);
			atomic_fetch_add(&l->done, 1);
			continue;
		}
		memset(buf, CANARY, l->psz);
		ret = dummy_cmd(l->fd, HMM_DUMMY_EXCLUSIVE, (uintptr_t)l->page, buf, 1, &out);
		if (ret)
			looper_error(l, ret);
		else if (out.cpages != 1 || pat_diff(buf, l->psz, SEED_X) >= 0)
			l->bad_data++;
		atomic_fetch_add(&l->done, 1);
	}
	free(buf);
	return NULL;
}

/* Start @l with every signal blocked: they are for the test's thread. */
static int looper_start(struct looper *l)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&l->thread, NULL, looper_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static void looper_stop(struct looper *l)
{
	atomic_store(&l->stop, true);
	pthread_join(l->thread, NULL);
}

/*
 * Keep the caller, and the threads it starts from now on, on the CPU it
 * runs on.
 */
static int stay_on_this_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* Give the calling thread a real-time priority (@on) or take it away. */
static int realtime(bool on)
{
	struct sched_param sp = { .sched_priority = on ? 1 : 0 };

	return sched_setscheduler(0, on ? SCHED_FIFO : SCHED_OTHER, &sp);
}

/* Wait until @l has done something, so that the race is on. */
static bool looper_running(struct looper *l)
{
	int ms;

	for (ms = 0; ms < 10000 && !atomic_load(&l->done); ms++)
		usleep(1000);
	return atomic_load(&l->done);
}

/*
 * fork() must not fail because a device is taking a page exclusive:
 * fork() gives a device-exclusive entry back to the CPU and needs the
 * page lock for that, which make_device_exclusive() returns held, so
 * EXCLUSIVE must not let fork() in (drop the mmap lock) before it lets
 * the page go. Every child sees X as it was.
 *
 * Both threads share one CPU and the forking one has a real-time
 * priority: it wakes from a short sleep in the middle of whatever
 * EXCLUSIVE is doing, and a fork() that then waits for the mmap lock runs
 * the moment EXCLUSIVE drops it, before EXCLUSIVE can go on.
 */
TEST_F_TIMEOUT(excl_race, fork_during_exclusive, RACE_ALARM + 30)
{
	struct looper l = { .fd = self->fd[0], .page = self->x, .psz = self->psz };
	unsigned long forks = 0, bad_children = 0;
	int fork_errno = 0, status;
	struct timespec t0;
	bool rt;
	double secs;
	pid_t pid;

	ASSERT_EQ(0, stay_on_this_cpu());
	ASSERT_EQ(0, looper_start(&l));
	ASSERT_TRUE(looper_running(&l));
	rt = !realtime(true);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (forks < RACE_FORKS && since(&t0) < FORK_SECONDS) {
		pid = fork();
		if (pid < 0) {
			fork_errno = errno;
			break;
		}
		if (!pid)
			_exit(pat_diff(self->x, self->psz, SEED_X) >= 0);
		forks++;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			bad_children++;
		usleep(20 + forks % 200);
	}
	secs = since(&t0);
	if (rt)
		realtime(false);
	looper_stop(&l);
	ksft_print_msg("%lu forks, %lu EXCLUSIVE in %.1f s%s\n", forks,
		       atomic_load(&l.done), secs, rt ? "" : " (no real-time priority)");

	ASSERT_EQ(0, fork_errno)
		TH_LOG("fork() %lu failed: %s", forks + 1, strerror(fork_errno));
	ASSERT_EQ(0UL, bad_children);
	ASSERT_EQ(0UL, l.bad_data);
	ASSERT_EQ(0UL, l.errors)
		TH_LOG("%lu EXCLUSIVE failed, the first with %s", l.errors,
		       strerror(-l.first_error));
	ASSERT_LE(10UL, atomic_load(&l.done));
	ASSERT_EQ(-1, pat_diff(self->x, self->psz, SEED_X));
}

/*
 * Invalidations of other pages do not concern a page being taken
 * exclusive: while other threads keep changing the protection of
 * unrelated pages (under the mmap lock held for writing) and zapping
 * others (with it held for reading, so also in the middle of a try),
 * every EXCLUSIVE of X succeeds and reads X's bytes.
 */
TEST_F_TIMEOUT(excl_race, exclusive_ignores_unrelated_changes, RACE_ALARM + 30)
{
	size_t psz = self->psz;
	unsigned char *buf = malloc(psz);
	struct looper l[UNRELATED] = { 0 };
	struct hmm_dummy_counters c0, c1;
	/* Read after the loop, which may not run (or fail at once). */
	struct hmm_dummy_cmd out = { 0 };
	unsigned long n = 0, pairs = 0, zaps = 0, errors = 0;
	int ret = 0, first_error = 0, i;
	struct timespec t0;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, get_counters(self->fd[0], &c0));
	for (i = 0; i < UNRELATED; i++) {
		l[i].fd = -1;
		l[i].psz = psz;
		l[i].zap = i % 2;
		l[i].other = map_anon(psz, MAP_PRIVATE);
		ASSERT_NE(MAP_FAILED, l[i].other);
		memset(l[i].other, 0x3c, psz);
		ASSERT_EQ(0, looper_start(&l[i]));
	}
	for (i = 0; i < UNRELATED; i++)
		ASSERT_TRUE(looper_running(&l[i]));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n < RACE_EXCLUSIVES && since(&t0) < RACE_SECONDS) {
		memset(buf, CANARY, psz);
		ret = dummy_cmd(self->fd[0], HMM_DUMMY_EXCLUSIVE, (uintptr_t)self->x, buf, 1,
				&out);
		if (ret || out.cpages != 1 || pat_diff(buf, psz, SEED_X) >= 0)
			break;
		n++;
	}
	for (i = 0; i < UNRELATED; i++) {
		looper_stop(&l[i]);
		*(l[i].zap ? &zaps : &pairs) += atomic_load(&l[i].done);
		if (l[i].errors && !errors)
			first_error = l[i].first_error;
		errors += l[i].errors;
	}
	ASSERT_EQ(0, get_counters(self->fd[0], &c1));
	ksft_print_msg("%lu EXCLUSIVE in %.1f s; %lu mprotect pairs, %lu zaps, %llu protections\n",
		       n, since(&t0), pairs, zaps,
		       (unsigned long long)(c1.invalidations[HMM_DUMMY_EVENT_PROTECT] -
					    c0.invalidations[HMM_DUMMY_EVENT_PROTECT]));

	ASSERT_EQ(0, ret) TH_LOG("EXCLUSIVE %lu failed", n + 1);
	ASSERT_EQ(1U, out.cpages);
	ASSERT_EQ(-1, pat_diff(buf, psz, SEED_X));
	ASSERT_LT(0UL, n) TH_LOG("the loop took nothing");
	ASSERT_EQ(0UL, errors) TH_LOG("mprotect or madvise failed %lu times: %s", errors,
				      strerror(-first_error));
	/* The mirror heard the unrelated invalidations meanwhile. */
	ASSERT_LT(c0.invalidations[HMM_DUMMY_EVENT_PROTECT],
		  c1.invalidations[HMM_DUMMY_EVENT_PROTECT]);
	ASSERT_EQ(-1, pat_diff(self->x, psz, SEED_X));
	for (i = 0; i < UNRELATED; i++)
		munmap(l[i].other, psz);
	free(buf);
}

static void on_alarm(int sig)
{
}

/*
 * READ_UNLOCKED of X through one file while another keeps taking X
 * exclusive: each fault of the read takes X back and each EXCLUSIVE
 * takes it away again, yet every read returns X's bytes, and in bounded
 * time (the alarm ends a read that keeps going round with EINTR).
 */
TEST_F_TIMEOUT(excl_race, read_unlocked_vs_exclusive, RACE_ALARM + 30)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct looper l = { .fd = self->fd[1], .page = self->x, .psz = self->psz };
	size_t psz = self->psz;
	unsigned char *buf = malloc(psz);
	struct hmm_dummy_cmd cmd;
	unsigned long n = 0, faults = 0;
	struct timespec t0;
	int ret = 0;

	ASSERT_NE(NULL, buf);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, looper_start(&l));
	ASSERT_TRUE(looper_running(&l));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	alarm(RACE_ALARM);
	while (n < RACE_READS && since(&t0) < RACE_SECONDS) {
		memset(buf, CANARY, psz);
		memset(&cmd, 0, sizeof(cmd));
		cmd.addr = (uintptr_t)self->x;
		cmd.ptr = (uintptr_t)buf;
		cmd.npages = 1;
		/* No retry on EINTR: that is how the alarm ends a livelock. */
		ret = ioctl(self->fd[0], HMM_DUMMY_READ_UNLOCKED, &cmd) ? -errno : 0;
		if (ret || cmd.cpages != 1 || pat_diff(buf, psz, SEED_X) >= 0)
			break;
		faults += cmd.faults;
		n++;
	}
	alarm(0);
	looper_stop(&l);
	ksft_print_msg("%lu READ_UNLOCKED (%lu faults), %lu EXCLUSIVE in %.1f s\n", n,
		       faults, atomic_load(&l.done), since(&t0));

	ASSERT_EQ(0, ret) TH_LOG("READ_UNLOCKED %lu failed%s", n + 1,
				 ret == -EINTR ? " (the alarm ended it)" : "");
	ASSERT_EQ(1U, cmd.cpages);
	ASSERT_EQ(-1, pat_diff(buf, psz, SEED_X));
	ASSERT_EQ(0UL, l.bad_data);
	ASSERT_EQ(0UL, l.errors)
		TH_LOG("%lu EXCLUSIVE failed, the first with %s", l.errors,
		       strerror(-l.first_error));
	ASSERT_LE(10UL, atomic_load(&l.done));
	free(buf);
}

/* ---- whole THPs moving between both devices and RAM ---- */

#define TR_THPS			4	/* 2 MiB THPs of the racing area */
#define TR_PAGES		(SZ_2M / PAGE)
#define TR_SECONDS		15
#define TR_MOVERS		2
#define TR_MAX_MOVE		(2 * TR_PAGES)	/* a straddling move, at most */
#define TR_MAX_LOOK		TR_PAGES
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25	/* bookworm's libc lacks it */
#endif

/*
 * The area's content changes only under the lock of its THP: a writer
 * stamps pages with a new generation or zaps them (gen 0: zeroes), and a
 * checker compares what the CPU or a device reads with @gen. Movers take
 * no lock: whole THPs, ranges straddling two THPs and small pieces go to
 * either device and back while the content changes, so every look of a
 * checker also judges what the moves did to the data.
 */
static struct {
	unsigned char *p;
	void *raw;
	pthread_mutex_t lock[TR_THPS];
	unsigned int gen[TR_THPS][TR_PAGES];
	unsigned int next_gen;
	atomic_ulong moves, whole, dev_thps, busy, looks, writes, zaps, collapses, bad;
	atomic_int stop;
	char first_bad[NOTE_LEN];
} tr;

static void tr_bad(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&tr.bad, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(tr.first_bad, sizeof(tr.first_bad), fmt, ap);
	va_end(ap);
}

static unsigned char *tr_page(unsigned int k, unsigned int i)
{
	return tr.p + (k * TR_PAGES + i) * PAGE;
}

/* Page i of THP k as read at @got, against what the model says. */
static void tr_judge(unsigned int k, unsigned int i, const void *got, const char *how)
{
	size_t off = (k * TR_PAGES + i) * PAGE;
	unsigned int gen = tr.gen[k][i];
	long d = gen ? pat_diff_at(got, off, PAGE, gen) : zero_diff(got, PAGE);

	atomic_fetch_add(&tr.looks, 1);
	if (d >= 0)
		tr_bad("%s: THP %u page %u byte %ld, expected generation %u", how, k, i, d, gen);
}

/* Whether THP k is one device THP of the device of @fd. */
static bool tr_is_device_thp(int fd, unsigned int k)
{
	const unsigned char want = HMM_DUMMY_PROT_PMD | HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL;
	unsigned char snap = 0;

	return !dev_snap(fd, tr_page(k, 0), &snap, 1, NULL) && (snap & want) == want;
}

/* A move of pages [first, first + n) of the area, to a device or back. */
static void tr_move(struct thread *t, unsigned int first, unsigned int n)
{
	unsigned int to = below(t, 3);
	unsigned long req = to < 2 ? HMM_DUMMY_MIGRATE_TO_DEV : HMM_DUMMY_MIGRATE_TO_SYS;
	struct hmm_dummy_cmd out;
	int ret;

	ret = dummy_cmd(t->fd[to & 1], req, (uintptr_t)(tr.p + first * PAGE), t->buf, n, &out);
	atomic_fetch_add(&tr.moves, 1);
	/* Moved meanwhile by the other mover or a CPU fault: the read back stops. */
	if (req == HMM_DUMMY_MIGRATE_TO_DEV && ret == -ENOENT)
		ret = 0;
	if (ret == -EBUSY) {
		atomic_fetch_add(&tr.busy, 1);
		return;
	}
	if (ret)
		tr_bad("%s of pages %u+%u: %s", to < 2 ? "MIGRATE_TO_DEV" : "MIGRATE_TO_SYS",
		       first, n, strerror(-ret));
	if (to == 2 || n != TR_PAGES || first % TR_PAGES)
		return;
	atomic_fetch_add(&tr.whole, 1);
	if (tr_is_device_thp(t->fd[to], first / TR_PAGES))
		atomic_fetch_add(&tr.dev_thps, 1);
}

static void *tr_mover(void *arg)
{
	struct thread *t = arg;
	unsigned int k, n, r;

	while (!atomic_load(&tr.stop)) {
		k = below(t, TR_THPS);
		r = below(t, 4);
		if (r < 2) {
			tr_move(t, k * TR_PAGES, TR_PAGES);
		} else if (r == 2 && k + 1 < TR_THPS) {
			/* From inside THP k to inside THP k + 1. */
			n = 1 + below(t, TR_PAGES - 1);
			tr_move(t, (k + 1) * TR_PAGES - n, n + 1 + below(t, TR_PAGES - 1));
		} else {
			n = 1 + below(t, 16);
			tr_move(t, k * TR_PAGES + below(t, TR_PAGES - n + 1), n);
		}
	}
	return NULL;
}

/* Pages [first, first + n) of THP k get a new generation, by the CPU. */
static void tr_write(unsigned int k, unsigned int first, unsigned int n)
{
	unsigned int i, gen = ++tr.next_gen;

	for (i = first; i < first + n; i++) {
		pat_fill_at(tr_page(k, i), (k * TR_PAGES + i) * PAGE, PAGE, gen);
		tr.gen[k][i] = gen;
	}
	atomic_fetch_add(&tr.writes, 1);
}

static void tr_zap(unsigned int k, unsigned int first, unsigned int n)
{
	unsigned int i;

	if (madvise(tr_page(k, first), n * PAGE, MADV_DONTNEED)) {
		tr_bad("MADV_DONTNEED of THP %u: %s", k, strerror(errno));
		return;
	}
	for (i = first; i < first + n; i++)
		tr.gen[k][i] = 0;
	atomic_fetch_add(&tr.zaps, 1);
}

/* Through the CPU or a device: what pages of THP k hold. */
static void tr_look(struct thread *t, unsigned int k)
{
	unsigned int n = 1 + below(t, TR_MAX_LOOK), first = below(t, TR_PAGES - n + 1), i;
	int dev = below(t, 3), ret;

	if (dev == 2) {
		for (i = first; i < first + n; i++)
			tr_judge(k, i, tr_page(k, i), "CPU");
		return;
	}
	ret = dev_read(t->fd[dev], tr_page(k, first), t->buf, n, NULL);
	if (ret == -EBUSY) {
		atomic_fetch_add(&tr.busy, 1);
		return;
	}
	if (ret) {
		tr_bad("READ of THP %u pages %u+%u: %s", k, first, n, strerror(-ret));
		return;
	}
	for (i = 0; i < n; i++)
		tr_judge(k, first + i, (unsigned char *)t->buf + i * PAGE, "device read");
}

/*
 * The content thread: writes of a few pages, a zap of the whole THP, a
 * write that faults its pages in again (racing the finalize of a move of
 * base pages there) and MADV_COLLAPSE, which makes them one THP again,
 * zaps of a part, and looks.
 */
static void *tr_owner(void *arg)
{
	struct thread *t = arg;
	unsigned int k, n, r;

	while (!atomic_load(&tr.stop)) {
		k = below(t, TR_THPS);
		r = below(t, 10);
		pthread_mutex_lock(&tr.lock[k]);
		if (r < 3) {
			n = 1 + below(t, 32);
			tr_write(k, below(t, TR_PAGES - n + 1), n);
		} else if (r < 5) {
			tr_zap(k, 0, TR_PAGES);
			tr_write(k, 0, 1 + below(t, TR_PAGES));
			/*
			 * The zap leaves the page table behind, so the write
			 * faulted base pages: make it a THP again (a mover may
			 * win the race, so a refusal is no fault).
			 */
			if (!madvise(tr_page(k, 0), SZ_2M, MADV_COLLAPSE))
				atomic_fetch_add(&tr.collapses, 1);
		} else if (r < 6) {
			n = 1 + below(t, 64);
			tr_zap(k, below(t, TR_PAGES - n + 1), n);
		} else {
			tr_look(t, k);
		}
		pthread_mutex_unlock(&tr.lock[k]);
	}
	return NULL;
}

FIXTURE(thp_race)
{
	struct thread t[TR_MOVERS + 1];
};

FIXTURE_SETUP(thp_race)
{
	char why[80];
	int i, d;

	memset(self->t, 0, sizeof(self->t));
	for (i = 0; i < 2 * (TR_MOVERS + 1); i++)
		self->t[i / 2].fd[i % 2] = -1;
	for (i = 0; i <= TR_MOVERS; i++) {
		for (d = 0; d < 2; d++) {
			self->t[i].fd[d] = dummy_fixture_open(d, why, sizeof(why));
			if (self->t[i].fd[d] < 0 && why[0])
				SKIP(return, "%s", why);
			ASSERT_LE(0, self->t[i].fd[d]);
		}
		self->t[i].id = i;
		self->t[i].rng = mix64(opt_seed + i);
		self->t[i].buf = malloc(TR_MAX_MOVE * PAGE);
		ASSERT_NE(NULL, self->t[i].buf);
	}
}

FIXTURE_TEARDOWN(thp_race)
{
	int i, d;

	for (i = 0; i <= TR_MOVERS; i++) {
		for (d = 0; d < 2; d++)
			if (self->t[i].fd[d] >= 0)
				close(self->t[i].fd[d]);
		free(self->t[i].buf);
	}
}

/* A 2 MiB aligned area of TR_THPS THPs, each filled with generation 1. */
static int tr_setup(void)
{
	unsigned int k;

	tr.raw = mmap(NULL, (TR_THPS + 1) * SZ_2M, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tr.raw == MAP_FAILED)
		return -1;
	tr.p = (unsigned char *)(((uintptr_t)tr.raw + SZ_2M - 1) & ~(SZ_2M - 1));
	if (madvise(tr.p, TR_THPS * SZ_2M, MADV_HUGEPAGE))
		return -1;
	tr.next_gen = 0;
	for (k = 0; k < TR_THPS; k++) {
		pthread_mutex_init(&tr.lock[k], NULL);
		tr_write(k, 0, TR_PAGES);
	}
	return 0;
}

/* Whether the device of @fd refused a device THP since @before was read. */
static bool tr_refused(int fd, const struct hmm_dummy_info *before)
{
	struct hmm_dummy_info now;

	return !get_info(fd, &now) && (now.huge_no_block != before->huge_no_block ||
				       now.huge_no_backing != before->huge_no_backing);
}

/*
 * Move THP k whole to the device of @fd, reading it back into @buf: 0
 * once it is one device THP holding what was written, 1 if the kernel
 * gave no THP there, else -1.
 */
static int tr_start_on_device(int fd, unsigned int k, void *buf)
{
	struct hmm_dummy_cmd out;
	unsigned char snap = 0;
	unsigned int i;

	if (dev_snap(fd, tr_page(k, 0), &snap, 1, NULL))
		return -1;
	if (!(snap & HMM_DUMMY_PROT_PMD))
		return 1;
	if (dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)tr_page(k, 0), buf,
		      TR_PAGES, &out) || out.cpages != TR_PAGES)
		return -1;
	for (i = 0; i < TR_PAGES; i++)
		if (pat_diff_at((unsigned char *)buf + i * PAGE, (k * TR_PAGES + i) * PAGE, PAGE,
				tr.gen[k][i]) >= 0)
			return -1;
	return tr_is_device_thp(fd, k) ? 0 : -1;
}

/*
 * Whole THPs, ranges straddling two and small pieces move to both devices
 * and back while one thread writes, zaps and refaults them and looks: every
 * look must see the last generation written. The race starts with each
 * THP moved whole to a device, as one device THP: the first operations
 * of every thread meet device THPs (later ones mostly meet their pieces,
 * as the first move of part of a THP splits it).
 */
TEST_F_TIMEOUT(thp_race, moves_writes_and_zaps, TR_SECONDS + 120)
{
	unsigned long bad, dev_thps;
	struct hmm_dummy_info before[2], after[2];
	struct thread *t = self->t;
	struct timespec t0;
	unsigned int k, i;
	int d, ret;

	ksft_print_msg("seed %llu, %d s, %d movers over %d THPs\n",
		       (unsigned long long)opt_seed, TR_SECONDS, TR_MOVERS, TR_THPS);
	for (d = 0; d < 2; d++)
		ASSERT_EQ(0, get_info(t[0].fd[d], &before[d]));
	ASSERT_EQ(0, tr_setup());
	for (k = 0; k < TR_THPS; k++) {
		ret = tr_start_on_device(t[0].fd[k & 1], k, t[0].buf);
		if (ret > 0)
			SKIP(munmap(tr.raw, (TR_THPS + 1) * SZ_2M); return, "no THP %u", k);
		/* A device short of memory may refuse a THP: it says so. */
		if (ret < 0 && tr_refused(t[0].fd[k & 1], &before[k & 1]))
			SKIP(munmap(tr.raw, (TR_THPS + 1) * SZ_2M); return,
			     "dev%u refused a device THP", k & 1);
		ASSERT_EQ(0, ret) TH_LOG("THP %u did not become one device THP", k);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i <= TR_MOVERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i].tid, NULL, i ? tr_mover : tr_owner, &t[i]));
	while (since(&t0) < TR_SECONDS && !atomic_load(&tr.bad))
		usleep(100000);
	atomic_store(&tr.stop, 1);
	for (i = 0; i <= TR_MOVERS; i++)
		pthread_join(t[i].tid, NULL);
	for (k = 0; k < TR_THPS; k++)
		for (i = 0; i < TR_PAGES; i++)
			tr_judge(k, i, tr_page(k, i), "final CPU");
	bad = atomic_load(&tr.bad);
	dev_thps = atomic_load(&tr.dev_thps);
	ksft_print_msg("%lu moves (%lu of whole THPs, %lu seen as device THPs, %lu busy)\n",
		       atomic_load(&tr.moves), atomic_load(&tr.whole), dev_thps,
		       atomic_load(&tr.busy));
	ksft_print_msg("%lu writes, %lu zaps, %lu collapses, %lu page looks\n",
		       atomic_load(&tr.writes), atomic_load(&tr.zaps), atomic_load(&tr.collapses),
		       atomic_load(&tr.looks));
	/* Why a whole move gave base pages: the device's refusals. */
	for (d = 0; d < 2; d++) {
		ASSERT_EQ(0, get_info(t[0].fd[d], &after[d]));
		ksft_print_msg("dev%d refused device THPs: %llu no block, %llu no backing\n", d,
			       after[d].huge_no_block - before[d].huge_no_block,
			       after[d].huge_no_backing - before[d].huge_no_backing);
	}
	munmap(tr.raw, (TR_THPS + 1) * SZ_2M);
	EXPECT_EQ(0UL, bad) TH_LOG("%lu bad, the first: %s", bad, tr.first_bad);
	EXPECT_EQ(0, dummy_settled_pages_used(0));
	EXPECT_EQ(0, dummy_settled_pages_used(1));
}

/*
 * --seed, --time, --threads and --no-free are random_ops'; the other arguments go
 * to the harness (-t NAME, -l, ...).
 */
int main(int argc, char **argv)
{
	char **rest = calloc(argc + 1, sizeof(*rest));
	int i, n = 0;

	opt_seed = time(NULL) ^ ((__u64)getpid() << 16);
	if (!rest)
		return KSFT_FAIL;
	rest[n++] = argv[0];
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			opt_seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
			opt_seconds = strtol(argv[++i], NULL, 0);
			if (opt_seconds < 1 || opt_seconds > MAX_SECONDS) {
				fprintf(stderr, "--time: 1 to %d seconds\n", MAX_SECONDS);
				return KSFT_FAIL;
			}
		} else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			nthreads = strtol(argv[++i], NULL, 0);
			if (nthreads < 1 || nthreads > MAX_THREADS) {
				fprintf(stderr, "--threads: 1 to %d\n", MAX_THREADS);
				return KSFT_FAIL;
			}
			npages = nthreads * CHUNK_PAGES;
		} else if (!strcmp(argv[i], "--no-free")) {
			use_free = false;
		} else {
			rest[n++] = argv[i];
		}
	}
	return test_harness_run(n, rest);
}
