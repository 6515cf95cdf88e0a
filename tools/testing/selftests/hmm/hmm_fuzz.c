// SPDX-License-Identifier: GPL-2.0
/*
 * hmm_fuzz: hostile ioctl arguments for /dev/hmm_dummyN.
 *
 * A seeded loop throws every command of hmm_dummy_uapi.h,
 * unknown numbers and known numbers with a wrong size at the driver, with
 * addresses, lengths and buffers chosen to hurt: unaligned, NULL, kernel,
 * unmapped, non-canonical, near the top of the user address space, huge
 * or wrapping lengths, ranges across VMAs and holes, PROT_NONE and
 * read-only memory, a buffer overlapping its own range, the argument
 * itself in device memory, read-only memory or half in a guard page.
 * Between the calls it remaps, mprotects, madvises and touches the pages
 * it works on, reopens the files and forks children whose calls on the
 * inherited files must fail with EPERM. Some calls aim at two THPs:
 * whole, straddling both, or running into the guard page after them,
 * while they are zapped in part or whole and faulted back.
 *
 * Each result is checked twice: the errno must be one the documentation
 * gives for that command, and it must be the one a model of the test's
 * own address space predicts, wherever the outcome is decidable. The
 * loop runs in a child so that a signal it dies of is seen, and its
 * histogram and findings live in shared memory so that they survive it.
 * Afterwards a clean round trip through each device must work and both
 * devices must have given all their memory back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "hmm_dummy_uapi.h"

#include "../kselftest.h"
#include "hmm_dummy_util.h"

#define PAGE			4096UL
#define ARENA_PAGES		96	/* pages the loop maps, remaps and fuzzes */
#define GUARD_PAGES		8	/* PROT_NONE on each side of the arena */
#define WIN_PAGES		(ARENA_PAGES + 2 * GUARD_PAGES)
#define SCRATCH_PAGES		1040	/* room for the ptr buffers */
#define THP_PAGES		(SZ_2M / PAGE)
#define THP_REGION_PAGES	(2 * THP_PAGES)	/* two THPs, then a guard page */
#define RO_PAGES		2	/* read-only pages for hostile buffers */
#define NFILES			4	/* files the loop opens, two per device */
#define ORPHAN			NFILES	/* slot of a file whose opener is gone */
#define CHILD_OWN		(NFILES + 1)	/* slot a forked child opens */
#define NSLOTS			(NFILES + 2)
#define MAX_CHILDREN		2
#define HIST_ERRNO		134
#define MAX_NOTES		40
#define NOTE_LEN		200
#define SIG_LEN			64
#define DEFAULT_CALLS		100000UL
#define WATCHDOG_SECONDS	270
/* Nothing is mapped this low: the default mmap_min_addr. */
#define LOW_END			0x10000ULL
/* The end of the user address space with 4-level page tables. */
#define USER_TOP		0x800000000000ULL
#define KERNEL_ADDR		0xffff888000000000ULL
#define BATCH			64

#define B(e)			(1ULL << (e))

enum kind {
	K_READ, K_WRITE, K_TO_DEV, K_TO_SYS, K_SNAPSHOT, K_RELEASE, K_INFO,
	K_COUNTERS, K_COPY_MODE, K_INJECT, K_UNKNOWN, K_BADSIZE, NR_KINDS
};

/*
 * The errnos Documentation/mm/hmm-dummy.rst gives each command. The
 * paragraph on the struct hmm_dummy_cmd checks is read as covering the
 * five commands that take one (they all go through the same check); the
 * EPERM and ENODEV of the "Mirrors" section cover every command on the
 * opener's address space. EFAULT for an argument the kernel cannot copy
 * is allowed everywhere. ENOMEM is documented for none.
 */
#define CMD_ERRS	(B(EINVAL) | B(E2BIG) | B(EFAULT) | B(EPERM) | B(EBUSY) | \
			 B(EINTR) | B(ENODEV))

static const struct {
	const char *name;
	unsigned long req;
	unsigned long long documented;
	unsigned int weight;	/* per thousand calls */
} kinds[NR_KINDS] = {
	[K_READ] = { "READ", HMM_DUMMY_READ, CMD_ERRS, 130 },
	[K_WRITE] = { "WRITE", HMM_DUMMY_WRITE, CMD_ERRS, 130 },
	[K_TO_DEV] = { "MIGRATE_TO_DEV", HMM_DUMMY_MIGRATE_TO_DEV, CMD_ERRS | B(ENOENT), 120 },
	[K_TO_SYS] = { "MIGRATE_TO_SYS", HMM_DUMMY_MIGRATE_TO_SYS, CMD_ERRS, 110 },
	[K_SNAPSHOT] = { "SNAPSHOT", HMM_DUMMY_SNAPSHOT, CMD_ERRS, 100 },
	[K_RELEASE] = { "RELEASE", HMM_DUMMY_RELEASE, B(EFAULT), 1 },
	[K_INFO] = { "INFO", HMM_DUMMY_INFO, B(EFAULT), 72 },
	[K_COUNTERS] = { "COUNTERS", HMM_DUMMY_COUNTERS, B(EFAULT), 72 },
	[K_COPY_MODE] = { "COPY_MODE", HMM_DUMMY_COPY_MODE, B(EINVAL) | B(EFAULT), 50 },
	[K_INJECT] = { "INJECT", HMM_DUMMY_INJECT, B(EINVAL) | B(EFAULT) | B(EPERM), 65 },
	[K_UNKNOWN] = { "unknown number", 0, B(ENOTTY), 75 },
	[K_BADSIZE] = { "wrong size/dir", 0, B(ENOTTY), 75 },
};

/* Who the caller is to the file's mirror. */
enum role { R_OPENER, R_FOREIGN, R_RELEASED };

/* Where the ioctl argument lives. */
enum argloc { A_STACK, A_ARENA, A_RO, A_STRADDLE, A_NULL, A_KERNEL };

enum pstate { P_HOLE, P_NONE, P_RO, P_RW };

struct page_model {
	unsigned char state;	/* enum pstate */
	bool shared;		/* MAP_SHARED: migrations leave it alone */
	bool may_sigbus;	/* a PFN_ERROR injection covered it */
};

/* A device's injection as the model knows it. */
struct inj_model {
	int slot;		/* the file that set it, -1 for none */
	__u32 kind;
	__u64 start, end;
};

struct slot {
	int fd;
	int dev;
	enum role role;
};

/* The call in flight, for the report of a hang or a death. */
struct last_call {
	int kind;
	int pid;
	unsigned long req;
	__u64 addr, ptr, npages;
};

/* Everything the fuzzing processes report, in shared memory. */
struct shared {
	unsigned long hist[NR_KINDS][HIST_ERRNO];
	unsigned long calls;
	unsigned long child_calls;
	unsigned long forks;
	unsigned long child_failed;
	unsigned long foreign_calls;	/* checked calls of a non-opener */
	unsigned long foreign_eperm;
	unsigned long released_calls;	/* checked calls on an orphan file */
	unsigned long cpu_touches;
	unsigned long sigbus;
	unsigned long mm_ops;
	unsigned long undocumented;
	unsigned long mismatches;
	unsigned long bad_output;
	int notes_lock;
	unsigned long nnotes;
	unsigned long notes_lost;
	unsigned long sig_count[MAX_NOTES];
	char sigs[MAX_NOTES][SIG_LEN];
	char notes[MAX_NOTES][NOTE_LEN];
	struct last_call last;
};

static struct shared *sh;
static __u64 rng;
static bool in_child;
static bool no_inject;		/* --no-inject: INJECT only clears */
static bool no_fork;		/* --no-fork: no children during the loop */

static char *base;		/* the modelled window: guard, arena, guard */
static char *arena;
static char *scratch;		/* SCRATCH_PAGES, then a guard page */
static char *thp_region;	/* THP_REGION_PAGES for THPs, always read-write */
static char *ro;		/* RO_PAGES read-only, then a guard page */
static struct page_model model[WIN_PAGES];
static struct inj_model inj[2];
static struct slot slots[NSLOTS];
static pid_t children[MAX_CHILDREN];

static sigjmp_buf bus_jmp;
static int bus_armed;

static __u64 rnd(void)
{
	__u64 z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __u64 below(__u64 n)
{
	return n ? rnd() % n : 0;
}

static void count(unsigned long *c, unsigned long n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static const char *errname(int e)
{
	static char buf[16];

	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case E2BIG: return "E2BIG";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	}
	snprintf(buf, sizeof(buf), "errno%d", e);
	return buf;
}

/*
 * Keep a finding for the report: the first of each kind @sig, and how
 * many of that kind there were. A lock word in the shared memory keeps
 * the processes that report at once apart.
 */
static void __printf(2, 3) note(const char *sig, const char *fmt, ...)
{
	unsigned long i;
	va_list ap;

	while (__atomic_exchange_n(&sh->notes_lock, 1, __ATOMIC_ACQUIRE))
		;
	for (i = 0; i < sh->nnotes && strcmp(sh->sigs[i], sig); i++)
		;
	if (i < sh->nnotes) {
		sh->sig_count[i]++;
	} else if (i < MAX_NOTES) {
		snprintf(sh->sigs[i], SIG_LEN, "%s", sig);
		sh->sig_count[i] = 1;
		va_start(ap, fmt);
		vsnprintf(sh->notes[i], NOTE_LEN, fmt, ap);
		va_end(ap);
		sh->nnotes++;
	} else {
		sh->notes_lost++;
	}
	__atomic_store_n(&sh->notes_lock, 0, __ATOMIC_RELEASE);
}

static void mask_str(unsigned long long mask, char *buf, size_t len)
{
	size_t off = 0;
	int e;

	buf[0] = '\0';
	for (e = 0; e < 64 && off < len; e++)
		if (mask & B(e))
			off += snprintf(buf + off, len - off, "%s%s", off ? "|" : "",
					errname(e));
}

static void on_sigbus(int sig)
{
	if (__atomic_load_n(&bus_armed, __ATOMIC_RELAXED))
		siglongjmp(bus_jmp, 1);
	/* Not a guarded access: die of it, for the parent to see. */
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * A CPU access to an arena page, which may raise the SIGBUS the ABI
 * documents for a page lost to a PFN_ERROR injection. Returns 1 when it
 * did. The atomics keep the compiler from dropping or moving the access.
 */
static int cpu_touch(char *p, bool write, char val)
{
	__atomic_store_n(&bus_armed, 1, __ATOMIC_SEQ_CST);
	if (sigsetjmp(bus_jmp, 1)) {
		__atomic_store_n(&bus_armed, 0, __ATOMIC_SEQ_CST);
		return 1;
	}
	if (write)
		__atomic_store_n(p, val, __ATOMIC_SEQ_CST);
	else
		(void)__atomic_load_n(p, __ATOMIC_SEQ_CST);
	__atomic_store_n(&bus_armed, 0, __ATOMIC_SEQ_CST);
	return 0;
}

static char *win_page(long i)
{
	return base + i * PAGE;
}

/* Index in the window of the arena page @i. */
static long arena_index(long i)
{
	return GUARD_PAGES + i;
}

/* Whether PFN_ERROR of a device's injection covers window page @w. */
static bool poisoned_now(long w)
{
	__u64 a = (uintptr_t)win_page(w);
	int d;

	for (d = 0; d < 2; d++)
		if (inj[d].slot >= 0 && inj[d].kind == HMM_DUMMY_INJECT_PFN_ERROR &&
		    a >= inj[d].start && a < inj[d].end)
			return true;
	return false;
}

/* ---- the address space the loop works on ---- */

/*
 * Two 2 MiB aligned THPs, advised and faulted in, then a PROT_NONE page:
 * commands aim at them whole, straddling the two, or running into the
 * guard. Only zaps and touches change them, so every page stays
 * read-write and the outcome is always decidable.
 */
static int setup_thp_region(void)
{
	size_t len = THP_REGION_PAGES * PAGE;
	char *raw;

	raw = mmap(NULL, len + SZ_2M + PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return -1;
	thp_region = (char *)(((uintptr_t)raw + SZ_2M - 1) & ~(SZ_2M - 1));
	if (mprotect(thp_region + len, PAGE, PROT_NONE))
		return -1;
	madvise(thp_region, len, MADV_HUGEPAGE);
	memset(thp_region, 0x3c, len);
	return 0;
}

static bool in_thp_region(__u64 addr)
{
	return addr >= (uintptr_t)thp_region &&
	       addr < (uintptr_t)thp_region + THP_REGION_PAGES * PAGE;
}

/* A zap of part or all of a THP, or a CPU write that faults one back. */
static void op_thp_mm(void)
{
	long first = below(THP_REGION_PAGES), n = 1 + below(THP_PAGES);

	if (below(3)) {
		thp_region[first * PAGE + below(PAGE)] = (char)rnd();
		count(&sh->cpu_touches, 1);
		return;
	}
	if (below(2)) {
		first &= ~(THP_PAGES - 1);
		n = THP_PAGES;
	}
	if (first + n > THP_REGION_PAGES)
		n = THP_REGION_PAGES - first;
	madvise(thp_region + first * PAGE, n * PAGE, MADV_DONTNEED);
}

static int setup_memory(void)
{
	long i;

	base = mmap(NULL, WIN_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	scratch = mmap(NULL, (SCRATCH_PAGES + 1) * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, (RO_PAGES + 1) * PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || scratch == MAP_FAILED || ro == MAP_FAILED)
		return -1;
	arena = base + GUARD_PAGES * PAGE;
	if (mmap(arena, ARENA_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -1;
	/* Keep THP out: the loop wants many small VMAs, not one huge page. */
	madvise(arena, ARENA_PAGES * PAGE, MADV_NOHUGEPAGE);
	memset(ro, 0x5a, RO_PAGES * PAGE);
	if (setup_thp_region())
		return -1;
	if (mprotect(scratch + SCRATCH_PAGES * PAGE, PAGE, PROT_NONE) ||
	    mprotect(ro, RO_PAGES * PAGE, PROT_READ) ||
	    mprotect(ro + RO_PAGES * PAGE, PAGE, PROT_NONE))
		return -1;
	for (i = 0; i < WIN_PAGES; i++)
		model[i] = (struct page_model){ .state = P_NONE };
	for (i = 0; i < ARENA_PAGES; i++)
		model[arena_index(i)].state = P_RW;
	return 0;
}

/* Replace arena pages [first, first + n) with new mappings or holes. */
static void op_remap(long first, long n)
{
	long i, run, w;
	int what, prot, flags;

	munmap(arena + first * PAGE, n * PAGE);
	for (i = first; i < first + n; i += run) {
		run = 1 + below(first + n - i);
		what = below(10);
		prot = PROT_READ | PROT_WRITE;
		flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
		if (what == 6)
			prot = PROT_READ;
		else if (what == 7)
			prot = PROT_NONE;
		else if (what == 8)
			flags = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
		if (what != 9 && mmap(arena + i * PAGE, run * PAGE, prot, flags, -1, 0) ==
		    MAP_FAILED)
			what = 9;
		for (w = arena_index(i); w < arena_index(i + run); w++) {
			model[w].state = what == 9 ? P_HOLE : what == 7 ? P_NONE :
					 what == 6 ? P_RO : P_RW;
			model[w].shared = what == 8;
			model[w].may_sigbus = poisoned_now(w);
		}
	}
}

/* mprotect each mapped run of arena pages [first, first + n). */
static void op_mprotect(long first, long n)
{
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE,
				     PROT_READ | PROT_WRITE };
	int prot = prots[below(4)];
	long i, j, w;

	for (i = first; i < first + n; i = j) {
		for (; i < first + n && model[arena_index(i)].state == P_HOLE; i++)
			;
		for (j = i; j < first + n && model[arena_index(j)].state != P_HOLE; j++)
			;
		if (i == j || mprotect(arena + i * PAGE, (j - i) * PAGE, prot))
			continue;
		for (w = arena_index(i); w < arena_index(j); w++)
			model[w].state = prot == PROT_NONE ? P_NONE :
					 prot == PROT_READ ? P_RO : P_RW;
	}
}

static void op_madvise(long first, long n)
{
	static const int advice[] = { MADV_DONTNEED, MADV_FREE, MADV_PAGEOUT,
				      MADV_COLD, MADV_WILLNEED };

	/* Holes make it fail part way; what it did is all the loop wants. */
	madvise(arena + first * PAGE, n * PAGE, advice[below(5)]);
}

static void op_touch(long i)
{
	struct page_model *pm = &model[arena_index(i)];
	char *p = arena + i * PAGE + below(PAGE);

	if (pm->state != P_RW && pm->state != P_RO)
		return;
	count(&sh->cpu_touches, 1);
	if (!cpu_touch(p, pm->state == P_RW && below(2), (char)rnd()))
		return;
	count(&sh->sigbus, 1);
	if (!pm->may_sigbus) {
		count(&sh->mismatches, 1);
		note("SIGBUS", "pid %d: SIGBUS touching arena page %ld, never under PFN_ERROR",
		     getpid(), i);
	}
}

/* ---- files ---- */

static int open_slot(int s, int dev)
{
	slots[s].fd = dummy_open(dev);
	slots[s].dev = dev;
	slots[s].role = R_OPENER;
	return slots[s].fd;
}

static void close_slot(int s)
{
	int d = slots[s].dev;

	if (slots[s].fd < 0)
		return;
	close(slots[s].fd);
	slots[s].fd = -1;
	/* Closing the file that made an injection clears it. */
	if (inj[d].slot == s)
		inj[d].slot = -1;
}

/*
 * A file whose opener has exited: a child opens it, the parent takes a
 * copy with pidfd_getfd() (the test kernel has no sockets), the child
 * exits. Its mirror saw release(), so commands on an address space must
 * fail with ENODEV.
 */
static int make_orphan(int dev)
{
	int up[2], down[2], cfd = -1, fd = -1, pidfd;
	pid_t pid;
	char c = 0;

	if (pipe(up))
		return -1;
	if (pipe(down)) {
		close(up[0]);
		close(up[1]);
		return -1;
	}
	pid = fork();
	if (!pid) {
		cfd = dummy_open(dev);
		if (write(up[1], &cfd, sizeof(cfd)) != sizeof(cfd))
			_exit(1);
		/* Wait until the parent has its copy. */
		_exit(read(down[0], &c, 1) != 1 || cfd < 0);
	}
	if (pid > 0 && read(up[0], &cfd, sizeof(cfd)) == sizeof(cfd) && cfd >= 0) {
		pidfd = syscall(SYS_pidfd_open, pid, 0);
		if (pidfd >= 0) {
			fd = syscall(SYS_pidfd_getfd, pidfd, cfd, 0);
			close(pidfd);
		}
	}
	if (pid > 0 && (write(down[1], &c, 1) != 1 || wait_child(pid)) && fd >= 0) {
		close(fd);
		fd = -1;
	}
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	return fd;
}

/* ---- choosing arguments ---- */

/* A start address for a command: mostly in the window, often hostile. */
static __u64 pick_addr(bool for_write, bool for_inject)
{
	static int anchor;
	unsigned int r = below(100);

	/*
	 * The THPs: whole, from inside the first into the second, or from
	 * inside the second into the guard page after it.
	 */
	if (r < 10 && !for_inject)
		return (uintptr_t)thp_region + (below(2) ? below(2) * THP_PAGES :
						below(THP_REGION_PAGES)) * PAGE;
	/*
	 * Just below and above the window is someone else's memory: only
	 * read there, a write would corrupt the test.
	 */
	if (r < 55 && for_write)
		return (uintptr_t)win_page(below(WIN_PAGES));
	if (r < 55)
		return (uintptr_t)win_page(below(WIN_PAGES + 2) - 1);
	if (r < 62)
		return (uintptr_t)win_page(below(WIN_PAGES)) + 1 + below(PAGE - 1);
	if (r < 67)
		return below(3) * below(LOW_END / PAGE) * PAGE;
	if (r < 73)
		return KERNEL_ADDR + below(1 << 20) * PAGE;
	if (r < 78)
		return USER_TOP - below(9) * PAGE;
	if (r < 82)
		return (~0ULL & ~(PAGE - 1)) - below(8) * PAGE;
	if (r < 85)
		return (below(2) ? 0x8000000000000000ULL : USER_TOP) + below(1 << 30) * PAGE;
	if (r < 89)
		return rnd() & (below(2) ? ~(PAGE - 1) : ~0ULL);
	/* Our own memory: never written, never under an injection. */
	if (for_write || for_inject)
		return (uintptr_t)win_page(below(WIN_PAGES));
	if (r < 93)
		return (uintptr_t)scratch + below(SCRATCH_PAGES) * PAGE;
	if (r < 95)
		return ((uintptr_t)&anchor) & ~(PAGE - 1);
	if (r < 97)
		return ((uintptr_t)&r) & ~(PAGE - 1);
	if (r < 99)
		return ((uintptr_t)pick_addr) & ~(PAGE - 1);
	return ((uintptr_t)sh) & ~(PAGE - 1);
}

/* A length for a command at @addr in the THP region: THP sized, mostly. */
static __u64 pick_thp_npages(__u64 addr)
{
	__u64 left = THP_REGION_PAGES - (addr - (uintptr_t)thp_region) / PAGE;

	switch (below(5)) {
	case 0:
		return THP_PAGES;
	case 1:
		return left;
	case 2:
		return left + 1 + below(4);	/* into the guard page */
	case 3:
		return THP_PAGES - 4 + below(9);
	}
	return 1 + below(left);
}

static __u64 pick_npages(void)
{
	static const __u64 odd[] = {
		0, HMM_DUMMY_MAX_PAGES, HMM_DUMMY_MAX_PAGES + 1, ~0ULL, 1ULL << 52,
		~0ULL / PAGE, 1ULL << 40, HMM_DUMMY_MAX_PAGES - 1,
	};
	unsigned int r = below(1000);

	if (r < 700)
		return 1 + below(4);
	if (r < 890)
		return 5 + below(60);
	if (r < 940)
		return 65 + below(236);
	if (r < 999)
		return odd[below(ARRAY_SIZE(odd))];
	/* A walk of 1 GiB: slow, so rare. */
	return HMM_DUMMY_MAX_PAGES;
}

static bool in_window(__u64 addr)
{
	return addr >= (uintptr_t)base && addr < (uintptr_t)base + WIN_PAGES * PAGE;
}

/*
 * A buffer on the range itself, or a few pages off it. Only inside the
 * window: what the kernel writes there stops at the top guard pages at
 * the latest, while elsewhere it could hit the test's own memory.
 */
static __u64 overlap_ptr(__u64 addr, bool exact)
{
	__u64 p = addr + (below(5) - 2) * PAGE + (below(2) ? below(PAGE) : 0);

	if (!in_window(addr))
		return (uintptr_t)scratch;
	if (exact)
		return addr;
	return in_window(p) ? p : addr;
}

/*
 * The data buffer of a command. *@ok says it is writable scratch memory
 * with room for @bytes, so that it cannot be what makes the call fail.
 */
static __u64 pick_ptr(__u64 addr, __u64 bytes, bool *ok)
{
	unsigned int r = below(100);
	__u64 room;

	*ok = false;
	if (r < 62) {
		if (bytes <= SCRATCH_PAGES * PAGE) {
			*ok = true;
			room = SCRATCH_PAGES * PAGE - bytes;
			return (uintptr_t)scratch + (below(4) ? below(room / PAGE + 1) * PAGE :
						     below(room + 1));
		}
		/* Too big: runs into the guard page after the scratch. */
		return (uintptr_t)scratch + below(SCRATCH_PAGES) * PAGE;
	}
	if (r < 68)
		return 0;
	if (r < 72)
		return KERNEL_ADDR + below(1 << 20) * PAGE;
	if (r < 84)
		return overlap_ptr(addr, r < 80);
	if (r < 88)
		return (uintptr_t)win_page(below(GUARD_PAGES));
	if (r < 92)
		return (uintptr_t)ro + below(RO_PAGES * PAGE);
	if (r < 94)
		return (uintptr_t)scratch + SCRATCH_PAGES * PAGE - below(3) * PAGE - 8;
	return (uintptr_t)win_page(below(WIN_PAGES));
}

/* An arena page the argument can live in: private, writable, intact. */
static long arg_page(void)
{
	long i, tries;

	for (tries = 0; tries < 8; tries++) {
		i = below(ARENA_PAGES);
		if (model[arena_index(i)].state == P_RW && !model[arena_index(i)].shared &&
		    !model[arena_index(i)].may_sigbus)
			return i;
	}
	return -1;
}

static void dev_migrate(int s, void *addr);

/*
 * Put the @len bytes of @arg where @loc says and return the pointer to
 * pass; @stack is room for it on the stack. A read-only copy is written
 * through a temporary mprotect. *@loc may fall back to A_STACK.
 */
static void *place_arg(const void *arg, size_t len, enum argloc *loc, char *stack, int s)
{
	long i;
	char *p;

	switch (*loc) {
	case A_ARENA:
		i = arg_page();
		if (i < 0)
			break;
		p = arena + i * PAGE + below(PAGE - len + 1);
		if (cpu_touch(p, true, 0))
			break;
		memcpy(p, arg, len);
		/* Half the time the argument is in device memory. */
		if (below(2))
			dev_migrate(s, arena + i * PAGE);
		return p;
	case A_RO:
		p = ro + below(RO_PAGES * PAGE - len + 1);
		if (mprotect(ro, RO_PAGES * PAGE, PROT_READ | PROT_WRITE))
			break;
		memcpy(p, arg, len);
		mprotect(ro, RO_PAGES * PAGE, PROT_READ);
		return p;
	case A_STRADDLE:
		/* Half of it in the guard page after the read-only pages. */
		return ro + RO_PAGES * PAGE - len / 2;
	case A_NULL:
		return NULL;
	case A_KERNEL:
		return (void *)(uintptr_t)(KERNEL_ADDR + below(1 << 20) * PAGE);
	default:
		break;
	}
	*loc = A_STACK;
	p = stack + below(8);
	memcpy(p, arg, len);
	return p;
}

static enum argloc pick_argloc(void)
{
	unsigned int r = below(100);

	if (r < 84)
		return A_STACK;
	if (r < 89)
		return A_ARENA;
	if (r < 93)
		return A_RO;
	if (r < 95)
		return A_STRADDLE;
	if (r < 98)
		return A_NULL;
	return A_KERNEL;
}

/* ---- predicting the result ---- */

/* The errno of the driver's struct hmm_dummy_cmd check, 0 if it passes. */
static int cmd_check_errno(const struct hmm_dummy_cmd *c, enum role role)
{
	if (!c->npages || (c->addr & (PAGE - 1)))
		return -EINVAL;
	if (c->npages > HMM_DUMMY_MAX_PAGES)
		return -E2BIG;
	if (c->addr + (c->npages << 12) < c->addr)
		return -EINVAL;
	if (role == R_RELEASED)
		return -ENODEV;
	if (role == R_FOREIGN)
		return -EPERM;
	return 0;
}

/*
 * The first page of [w, w + n) of the window that makes the command
 * fail: EFAULT for no VMA or no access, EPERM to write a read-only one.
 * *@poison tells whether a page may be lost to PFN_ERROR.
 */
static int first_bad(long w, long n, bool write, bool *poison)
{
	int bad = 0;
	long i;

	*poison = false;
	for (i = w; i < w + n; i++) {
		*poison |= model[i].may_sigbus;
		if (bad)
			continue;
		if (model[i].state == P_HOLE || model[i].state == P_NONE)
			bad = -EFAULT;
		else if (write && model[i].state == P_RO)
			bad = -EPERM;
	}
	return bad;
}

/*
 * What a command that passed the check may return, for the opener with
 * a good argument; 0 when the model cannot tell.
 */
static unsigned long long predict_range(int k, const struct hmm_dummy_cmd *c, bool ptr_ok)
{
	__u64 end = c->addr + c->npages * PAGE;
	bool rw = k == K_READ || k == K_WRITE, mig = k == K_TO_DEV || k == K_TO_SYS;
	__u64 lo = (uintptr_t)base, hi = lo + WIN_PAGES * PAGE;
	__u64 thp_end = (uintptr_t)thp_region + THP_REGION_PAGES * PAGE;
	bool poison = false, known = false;
	int bad = 0;

	if (c->addr >= lo && end <= hi) {
		bad = first_bad((c->addr - lo) / PAGE, c->npages, k == K_WRITE, &poison);
		known = true;
	} else if (in_thp_region(c->addr) && end <= thp_end + 8 * PAGE) {
		/* Read-write up to the guard page, which stops any command. */
		bad = end > thp_end ? -EFAULT : 0;
		known = true;
	}
	if (known) {
		if (mig && bad)
			return B(EINVAL);
		if (k == K_TO_SYS)
			return B(0);
		/*
		 * A page lost to PFN_ERROR faults as EFAULT, wherever it is;
		 * WRITE reads its buffer before it faults anything in.
		 */
		if (rw && bad)
			return B(-bad) | (poison || !ptr_ok ? B(EFAULT) : 0);
		if (!ptr_ok)
			return 0;
		if (k == K_SNAPSHOT)
			return B(0);
		if (k == K_TO_DEV)
			return B(0) | B(ENOENT) | B(EBUSY);
		return B(0) | B(EBUSY) | (poison ? B(EFAULT) : 0);
	}
	/* Beyond the task size: the walk refuses it, no VMA is there. */
	if (c->addr >= USER_TOP || (end > USER_TOP && c->npages <= BATCH && !mig))
		return mig ? B(EINVAL) : B(EFAULT);
	if (end <= LOW_END) {
		if (mig)
			return B(EINVAL);
		if (rw)
			return B(EFAULT);
		return ptr_ok ? B(0) : 0;
	}
	return 0;
}

static int inject_errno(const struct hmm_dummy_inject *q, enum role role)
{
	if (q->kind > HMM_DUMMY_INJECT_PFN_ERROR || q->pad || (q->addr & (PAGE - 1)) ||
	    q->npages > HMM_DUMMY_MAX_PAGES || q->addr + (q->npages << 12) < q->addr)
		return -EINVAL;
	return role == R_OPENER ? 0 : -EPERM;
}

/* ---- one call ---- */

union arg {
	struct hmm_dummy_cmd cmd;
	struct hmm_dummy_info info;
	struct hmm_dummy_counters counters;
	struct hmm_dummy_inject inject;
	__u32 mode;
	char raw[512];
};

static int do_ioctl(int fd, int k, unsigned long req, void *argp, const struct hmm_dummy_cmd *c)
{
	struct last_call *l = &sh->last;
	int ret;

	l->kind = k;
	l->pid = getpid();
	l->req = req;
	l->addr = c ? c->addr : 0;
	l->ptr = c ? c->ptr : 0;
	l->npages = c ? c->npages : 0;
	ret = ioctl(fd, req, argp);
	count(&sh->calls, 1);
	if (in_child)
		count(&sh->child_calls, 1);
	return ret < 0 ? errno : 0;
}

/*
 * Move one private, writable arena page to the device for the loop's own
 * use (an argument in device memory), and check that too.
 */
static void dev_migrate(int s, void *addr)
{
	struct hmm_dummy_cmd c = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)scratch,
		.npages = 1,
	};
	int e;

	if (slots[s].role != R_OPENER)
		return;
	e = do_ioctl(slots[s].fd, K_TO_DEV, HMM_DUMMY_MIGRATE_TO_DEV, &c, &c);
	count(&sh->hist[K_TO_DEV][e < HIST_ERRNO ? e : HIST_ERRNO - 1], 1);
	if (e && e != ENOENT && e != EBUSY) {
		count(&sh->mismatches, 1);
		note("own migration", "pid %d: MIGRATE_TO_DEV of a private page %p: %s",
		     getpid(), addr, errname(e));
	}
}

/* Every command the driver answers, the ones this loop never sends too. */
static const unsigned long driver_reqs[] = {
	HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_MIGRATE_TO_DEV, HMM_DUMMY_MIGRATE_TO_SYS,
	HMM_DUMMY_SNAPSHOT, HMM_DUMMY_EXCLUSIVE, HMM_DUMMY_CHECK_EXCLUSIVE, HMM_DUMMY_RELEASE,
	HMM_DUMMY_FLAGS, HMM_DUMMY_READ_UNLOCKED, HMM_DUMMY_INFO, HMM_DUMMY_COUNTERS,
	HMM_DUMMY_COPY_MODE, HMM_DUMMY_INJECT, HMM_DUMMY_PHASE_TIMES,
};

/*
 * A number the driver does not know: 'H' with a free number, or another
 * magic. A draw that hits a real command (EXCLUSIVE, say, which answers
 * EINVAL to a bad address) becomes a number no command uses.
 */
static unsigned long unknown_req(void)
{
	static const unsigned char magics[] = { 'H', 'H', 'H', 'h', 'x', 'Q', 0xab };
	unsigned char m = magics[below(ARRAY_SIZE(magics))];
	unsigned int nr = below(256), size = below(2) ? below(128) : below(1 << 14);
	unsigned long req;
	size_t k;

	if (m == 'H' && (nr <= 4 || nr == 7 || (nr >= 0x40 && nr <= 0x43)))
		nr = 5 + below(2);
	req = _IOC(below(4), m, nr, size);
	for (k = 0; k < ARRAY_SIZE(driver_reqs); k++)
		if (req == driver_reqs[k])
			return _IO(m, 0x3f);
	return req;
}

/* A known number with its size or direction changed. */
static unsigned long badsize_req(void)
{
	unsigned long req = kinds[below(K_UNKNOWN)].req;
	unsigned int size = _IOC_SIZE(req), dir = _IOC_DIR(req);
	int k;

	if (below(3))
		size = below(2) ? size + 8 * (below(4) + 1) :
		       below(2) ? size / 2 : below(1 << 14);
	else
		dir = (dir + 1 + below(3)) & 3;
	req = _IOC(dir, _IOC_TYPE(req), _IOC_NR(req), size);
	for (k = 0; k < K_UNKNOWN; k++)
		if (req == kinds[k].req)
			return _IOC(dir ^ 1, _IOC_TYPE(req), _IOC_NR(req), size);
	return req;
}

/* Mostly the caller's own files; the orphan and a child's own sometimes. */
static int pick_slot(void)
{
	unsigned int r = below(100);
	int s = below(NFILES);

	if (r < 4)
		s = ORPHAN;
	else if (in_child && r < 40)
		s = CHILD_OWN;
	return slots[s].fd < 0 ? 0 : s;
}

static int pick_kind(void)
{
	unsigned int r = below(1000), k, acc = 0;

	for (k = 0; k < NR_KINDS; k++) {
		acc += kinds[k].weight;
		if (r < acc)
			return k;
	}
	return K_READ;
}

/*
 * Keep an injection off the test's own memory: in the user address space
 * it stays below LOW_END or inside the window.
 */
static void clamp_inject(struct hmm_dummy_inject *q)
{
	__u64 lim;

	if (q->addr >= USER_TOP || q->npages > HMM_DUMMY_MAX_PAGES || (q->addr & (PAGE - 1)))
		return;
	if (q->addr >= LOW_END && !in_window(q->addr))
		q->addr = (uintptr_t)arena;
	lim = in_window(q->addr) ? (uintptr_t)base + WIN_PAGES * PAGE : LOW_END;
	if (q->addr + q->npages * PAGE > lim)
		q->npages = (lim - q->addr) / PAGE;
}

/* Fill the argument of command @k, telling whether ptr is good scratch. */
static void fill_arg(int k, union arg *a, bool *ptr_ok)
{
	struct hmm_dummy_cmd *c = &a->cmd;
	__u64 bytes;

	memset(a, 0, sizeof(*a));
	*ptr_ok = false;
	switch (k) {
	case K_READ: case K_WRITE: case K_TO_DEV: case K_TO_SYS: case K_SNAPSHOT:
		c->addr = pick_addr(k == K_WRITE, false);
		c->npages = in_thp_region(c->addr) && below(4) ? pick_thp_npages(c->addr) :
			    pick_npages();
		/* A SNAPSHOT of 1 GiB walks it all: keep that rare, it is slow. */
		if (k == K_SNAPSHOT && c->npages > 4096 && c->npages <= HMM_DUMMY_MAX_PAGES &&
		    below(8))
			c->npages = 1 + below(4);
		/* An address near the top wants a length that crosses it. */
		if (c->addr >= USER_TOP - 8 * PAGE && c->addr <= USER_TOP && below(2))
			c->npages = 1 + below(16);
		bytes = k == K_SNAPSHOT ? c->npages : c->npages * PAGE;
		if (c->npages > HMM_DUMMY_MAX_PAGES)
			bytes = ~0ULL;
		c->ptr = pick_ptr(c->addr, bytes, ptr_ok);
		/* The counts are outputs: garbage in them must not matter. */
		c->cpages = rnd();
		c->faults = rnd();
		break;
	case K_RELEASE:
		c->addr = rnd();
		c->ptr = rnd();
		c->npages = rnd();
		break;
	case K_COPY_MODE:
		a->mode = below(3) ? below(2) : below(3) ? 2 : rnd();
		break;
	case K_INJECT:
		a->inject.kind = below(8) ? below(3) : below(2) ? 3 : rnd();
		if (no_inject && a->inject.kind <= HMM_DUMMY_INJECT_PFN_ERROR)
			a->inject.kind = HMM_DUMMY_INJECT_NONE;
		a->inject.pad = below(16) ? 0 : rnd();
		if (below(3)) {
			a->inject.addr = (uintptr_t)arena + (below(ARENA_PAGES) - 1) * PAGE;
			a->inject.npages = below(8) ? 1 + below(8) : 0;
		} else {
			a->inject.addr = pick_addr(false, true);
			a->inject.npages = pick_npages();
		}
		/*
		 * Never let an injection reach the test's own memory: in the
		 * user address space it stays inside the window.
		 */
		clamp_inject(&a->inject);
		break;
	default:
		memset(a->raw, (int)below(256), sizeof(a->raw));
		break;
	}
}

/* What @k may return; the documented set when it cannot be decided. */
static unsigned long long predict(int k, const union arg *a, enum argloc loc, enum role role,
				  bool ptr_ok)
{
	bool put = k <= K_SNAPSHOT;
	unsigned long long m;
	int e;

	if (k >= K_UNKNOWN)
		return B(ENOTTY);
	if (loc == A_NULL || loc == A_KERNEL || loc == A_STRADDLE)
		return B(EFAULT);
	if (put) {
		e = cmd_check_errno(&a->cmd, role);
		if (e)
			return B(-e);
		if (loc == A_RO)
			return B(EFAULT);
		if (role != R_OPENER)
			return kinds[k].documented | B(0);
		m = predict_range(k, &a->cmd, ptr_ok);
		return m ? m : kinds[k].documented | B(0);
	}
	switch (k) {
	case K_RELEASE: case K_INFO: case K_COUNTERS:
		return loc == A_RO ? B(EFAULT) : B(0);
	case K_COPY_MODE:
		return a->mode > HMM_DUMMY_COPY_CORE ? B(EINVAL) : B(0);
	case K_INJECT:
		return B(-inject_errno(&a->inject, role));
	}
	return kinds[k].documented | B(0);
}

/* Note what a successful call from the opener wrote, where it is checkable. */
static void check_output(int k, const union arg *a, int s, bool ptr_ok)
{
	const struct hmm_dummy_cmd *c = &a->cmd;
	__u64 lo = (uintptr_t)base, i;
	const unsigned char *snap;
	bool mapped, released, error;
	long w;

	switch (k) {
	case K_READ: case K_WRITE: case K_SNAPSHOT: case K_TO_DEV:
		if (c->cpages == c->npages)
			break;
		count(&sh->bad_output, 1);
		note(kinds[k].name, "%s addr %#llx npages %llu: ok with cpages %llu", kinds[k].name,
		     c->addr, c->npages, c->cpages);
		return;
	case K_TO_SYS:
		if (c->cpages <= c->npages)
			break;
		count(&sh->bad_output, 1);
		note("TO_SYS cpages", "MIGRATE_TO_SYS npages %llu: cpages %llu", c->npages,
		     c->cpages);
		return;
	case K_INFO:
		if (a->info.device == (__u32)slots[s].dev &&
		    a->info.pages_used <= a->info.pages_total)
			break;
		count(&sh->bad_output, 1);
		note("INFO", "INFO of dev %d: device %u, used %llu of %llu", slots[s].dev,
		     a->info.device, a->info.pages_used, a->info.pages_total);
		return;
	case K_COUNTERS:
		released = slots[s].role == R_RELEASED;
		if (a->counters.released == released)
			break;
		count(&sh->bad_output, 1);
		note("COUNTERS", "COUNTERS of slot %d (role %d): released %u", s, slots[s].role,
		     a->counters.released);
		return;
	}
	if (k != K_SNAPSHOT || !ptr_ok || c->addr < lo ||
	    c->addr + c->npages * PAGE > lo + WIN_PAGES * PAGE)
		return;
	/* No VMA or no access reads as ERROR, and only that does. */
	snap = (const unsigned char *)(uintptr_t)c->ptr;
	for (i = 0; i < c->npages; i++) {
		w = (c->addr - lo) / PAGE + i;
		mapped = model[w].state == P_RO || model[w].state == P_RW;
		error = snap[i] == HMM_DUMMY_PROT_ERROR;
		if (mapped != error)
			continue;
		count(&sh->bad_output, 1);
		note("SNAPSHOT bytes", "SNAPSHOT window page %ld (state %d): %#x", w,
		     model[w].state, snap[i]);
		return;
	}
}

/* The model learns what a successful INJECT did. */
static void learn_inject(const struct hmm_dummy_inject *q, int s)
{
	struct inj_model *m = &inj[slots[s].dev];
	long w;

	m->slot = -1;
	if (q->kind == HMM_DUMMY_INJECT_NONE || !q->npages)
		return;
	*m = (struct inj_model){ s, q->kind, q->addr, q->addr + q->npages * PAGE };
	for (w = 0; w < WIN_PAGES; w++)
		model[w].may_sigbus |= poisoned_now(w);
}

static void fuzz_call(void)
{
	char stack[sizeof(union arg) + 8];
	char want[96], sig[SIG_LEN + 96];
	int k = pick_kind(), s = pick_slot(), e;
	enum argloc loc = k >= K_UNKNOWN ? (below(2) ? A_STACK : pick_argloc()) :
			  pick_argloc();
	enum role role = slots[s].role;
	unsigned long long m;
	unsigned long req;
	union arg a;
	bool ptr_ok;
	size_t len;
	void *argp;

	fill_arg(k, &a, &ptr_ok);
	req = k == K_UNKNOWN ? unknown_req() : k == K_BADSIZE ? badsize_req() : kinds[k].req;
	len = k >= K_UNKNOWN ? sizeof(a.raw) : _IOC_SIZE(req);
	if (loc == A_ARENA && len > 256)
		loc = A_STACK;
	argp = place_arg(&a, len, &loc, stack, s);
	m = predict(k, &a, loc, role, ptr_ok);
	e = do_ioctl(slots[s].fd, k, req, argp, k <= K_RELEASE ? &a.cmd : NULL);
	count(&sh->hist[k][e < HIST_ERRNO ? e : HIST_ERRNO - 1], 1);

	if (role != R_OPENER && k <= K_SNAPSHOT && (loc == A_STACK || loc == A_ARENA) &&
	    !cmd_check_errno(&a.cmd, R_OPENER)) {
		count(role == R_FOREIGN ? &sh->foreign_calls : &sh->released_calls, 1);
		if (e == EPERM && role == R_FOREIGN)
			count(&sh->foreign_eperm, 1);
	}
	snprintf(sig, sizeof(sig), "%s %s", kinds[k].name, errname(e));
	if (e && (e >= 64 || !(kinds[k].documented & B(e)))) {
		count(&sh->undocumented, 1);
		note(sig, "%d: %s (%#lx) addr %#llx ptr %#llx n %#llx arg %d role %d: undoc. %s",
		     getpid(), kinds[k].name, req, a.cmd.addr, a.cmd.ptr, a.cmd.npages, loc,
		     role, errname(e));
	} else if (e >= 64 || !(m & B(e))) {
		count(&sh->mismatches, 1);
		mask_str(m, want, sizeof(want));
		snprintf(sig + strlen(sig), sizeof(sig) - strlen(sig), " want %s", want);
		note(sig, "%d: %s (%#lx) addr %#llx ptr %#llx n %#llx arg %d role %d: %s, want %s",
		     getpid(), kinds[k].name, req, a.cmd.addr, a.cmd.ptr, a.cmd.npages, loc,
		     role, errname(e), want);
	}
	if (!e && k == K_INJECT && role == R_OPENER)
		learn_inject(&a.inject, s);
	if (e || (loc != A_STACK && loc != A_ARENA))
		return;
	/* Read the result back from where the kernel wrote it. */
	if (loc == A_ARENA && cpu_touch(argp, false, 0))
		return;
	memcpy(&a, argp, len);
	if (role == R_OPENER || k == K_INFO || k == K_COUNTERS)
		check_output(k, &a, s, ptr_ok);
}

/* ---- the loop ---- */

static void reap(bool block)
{
	int i, status;

	for (i = 0; i < MAX_CHILDREN; i++) {
		if (!children[i] ||
		    waitpid(children[i], &status, block ? 0 : WNOHANG) != children[i])
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			count(&sh->child_failed, 1);
			note("child", "forked child %d ended with status %#x", children[i], status);
		}
		children[i] = 0;
	}
}

static void fuzz_steps(unsigned long ncalls, bool may_fork);

/*
 * A child with all the files: the parent's are foreign to it, and it
 * opens one of its own. It runs the same loop, concurrently with the
 * parent, and exits with its files open.
 */
static void fork_child(void)
{
	__u64 seed = rnd();
	int i, status;
	pid_t pid;

	for (i = 0; i < MAX_CHILDREN && children[i]; i++)
		;
	if (i == MAX_CHILDREN)
		return;
	pid = fork();
	if (pid < 0)
		return;
	if (pid) {
		/* A child that dies early is reaped here, its status kept. */
		children[i] = pid;
		count(&sh->forks, 1);
		if (waitpid(pid, &status, WNOHANG) == pid) {
			children[i] = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				count(&sh->child_failed, 1);
				note("child", "forked child %d ended with status %#x", pid, status);
			}
		}
		return;
	}
	in_child = true;
	rng = seed;
	memset(children, 0, sizeof(children));
	for (i = 0; i < NFILES; i++)
		if (slots[i].fd >= 0)
			slots[i].role = R_FOREIGN;
	open_slot(CHILD_OWN, below(2));
	/* The parent's injections are on its mm, not this one. */
	inj[0].slot = -1;
	inj[1].slot = -1;
	fuzz_steps(30 + below(120), false);
	_exit(0);
}

static void fuzz_steps(unsigned long ncalls, bool may_fork)
{
	unsigned long start = __atomic_load_n(&sh->calls, __ATOMIC_RELAXED);
	unsigned long done = 0;
	unsigned int r;
	long first, n;
	int s;

	while (done < ncalls) {
		r = below(1000);
		first = below(ARENA_PAGES);
		n = 1 + below(ARENA_PAGES - first < 8 ? ARENA_PAGES - first : 8);
		if (r < 900) {
			fuzz_call();
		} else if (r < 920) {
			op_touch(first);
		} else if (r < 930) {
			op_thp_mm();
		} else if (r < 945) {
			op_madvise(first, n);
		} else if (r < 960) {
			op_mprotect(first, n);
		} else if (r < 980) {
			op_remap(first, n);
		} else if (r < 986 && !in_child) {
			s = below(NFILES);
			close_slot(s);
			open_slot(s, below(2));
		} else if (r == 986 && may_fork && !no_fork && !below(2)) {
			fork_child();
		} else {
			reap(false);
		}
		if (r >= 900)
			count(&sh->mm_ops, 1);
		/* Count this process's calls only: children add their own. */
		done = in_child ? done + (r < 900) :
		       __atomic_load_n(&sh->calls, __ATOMIC_RELAXED) - start -
		       (__atomic_load_n(&sh->child_calls, __ATOMIC_RELAXED));
	}
}

/* The fuzzing process: set up, loop, and wait for its children. */
static int fuzz_main(__u64 seed, unsigned long ncalls)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct hmm_dummy_counters cnt = { 0 };
	int s;

	rng = seed;
	sigaction(SIGBUS, &sa, NULL);
	if (setup_memory())
		return 2;
	inj[0].slot = -1;
	inj[1].slot = -1;
	for (s = 0; s < NFILES; s++)
		if (open_slot(s, s % 2) < 0)
			return 3;
	slots[CHILD_OWN].fd = -1;
	slots[ORPHAN].dev = below(2);
	slots[ORPHAN].fd = make_orphan(slots[ORPHAN].dev);
	slots[ORPHAN].role = R_RELEASED;
	if (slots[ORPHAN].fd < 0 || get_counters(slots[ORPHAN].fd, &cnt) || !cnt.released) {
		note("orphan", "a file whose opener exited: fd %d, released %u", slots[ORPHAN].fd,
		     cnt.released);
		count(&sh->mismatches, 1);
		return 4;
	}
	fuzz_steps(ncalls, true);
	reap(true);
	return 0;
}

/* ---- after the loop ---- */

static int round_trip(int dev)
{
	const unsigned long n = 48;
	struct hmm_dummy_cmd out;
	unsigned char *snap;
	char *p, *buf;
	int fd, ret = -1;

	fd = dummy_open(dev);
	p = map_anon(n * PAGE, MAP_PRIVATE);
	buf = map_anon(n * PAGE, MAP_PRIVATE);
	snap = malloc(n);
	if (fd < 0 || p == MAP_FAILED || buf == MAP_FAILED || !snap)
		goto out;
	pat_fill(p, n * PAGE, 77 + dev);
	if (dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)p, buf, n, &out) ||
	    out.cpages != n)
		ksft_print_msg("dev%d: MIGRATE_TO_DEV cpages %llu\n", dev, out.cpages);
	else if (pat_diff(buf, n * PAGE, 77 + dev) >= 0)
		ksft_print_msg("dev%d: read back differs\n", dev);
	else if (dev_snap(fd, p, snap, n, NULL) ||
		 prot_diff(snap, n, HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL | HMM_DUMMY_PROT_WRITE) >= 0)
		ksft_print_msg("dev%d: pages not all in device memory\n", dev);
	else if (dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_SYS, (uintptr_t)p, NULL, n, &out) ||
		 out.cpages != n)
		ksft_print_msg("dev%d: MIGRATE_TO_SYS cpages %llu\n", dev, out.cpages);
	else if (pat_diff(p, n * PAGE, 77 + dev) >= 0)
		ksft_print_msg("dev%d: CPU view differs\n", dev);
	else if (dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)p, buf, n, &out) ||
		 pat_diff(p, n * PAGE, 77 + dev) >= 0)
		ksft_print_msg("dev%d: CPU faults brought back other data\n", dev);
	else
		ret = 0;
out:
	free(snap);
	if (buf != MAP_FAILED)
		munmap(buf, n * PAGE);
	if (p != MAP_FAILED)
		munmap(p, n * PAGE);
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * The loop's process was forked from this one: the stack, .data, .bss and
 * heap pages it never wrote are still shared copy-on-write with this
 * process, and a MIGRATE_TO_DEV of such a page (the fuzzer aims at its own
 * stack and .bss too) moved this process's mapping with it. Bring this
 * process's own pages back to RAM before counting what the loop left, and
 * return how many there were.
 */
static unsigned long take_back_own_pages(void)
{
	unsigned long start, end, moved = 0;
	struct hmm_dummy_cmd out;
	char line[512], perms[5];
	int fd[2], d;
	FILE *maps;

	maps = fopen("/proc/self/maps", "r");
	fd[0] = dummy_open(0);
	fd[1] = dummy_open(1);
	while (maps && fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3 ||
		    perms[0] != 'r' || perms[3] != 'p')
			continue;
		for (d = 0; d < 2; d++)
			if (fd[d] >= 0 && !dummy_cmd(fd[d], HMM_DUMMY_MIGRATE_TO_SYS, start, NULL,
						     (end - start) / PAGE, &out))
				moved += out.cpages;
	}
	if (maps)
		fclose(maps);
	for (d = 0; d < 2; d++)
		if (fd[d] >= 0)
			close(fd[d]);
	return moved;
}

static void print_histogram(void)
{
	char line[512];
	size_t off;
	int k, e;

	for (k = 0; k < NR_KINDS; k++) {
		off = snprintf(line, sizeof(line), "%-16s", kinds[k].name);
		for (e = 0; e < HIST_ERRNO; e++)
			if (sh->hist[k][e] && off < sizeof(line))
				off += snprintf(line + off, sizeof(line) - off, " %s=%lu",
						errname(e), sh->hist[k][e]);
		ksft_print_msg("%s\n", line);
	}
}

static void print_notes(void)
{
	unsigned long i;

	for (i = 0; i < sh->nnotes && i < MAX_NOTES; i++)
		ksft_print_msg("finding (%lu times): %s\n", sh->sig_count[i], sh->notes[i]);
	if (sh->notes_lost)
		ksft_print_msg("... and %lu more of other kinds\n", sh->notes_lost);
}

/* Run the loop in a child; return how it ended, as wait_child() does. */
static int run_loop(__u64 seed, unsigned long ncalls, double *secs)
{
	struct timespec t0, t1;
	int status, i;
	pid_t pid;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fflush(stdout);
	pid = fork();
	if (!pid)
		_exit(fuzz_main(seed, ncalls));
	if (pid < 0)
		return -1;
	for (i = 0; i < WATCHDOG_SECONDS * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(100000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*secs = t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (i < WATCHDOG_SECONDS * 10)
		return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	ksft_print_msg("loop stuck after %.0f s, pid %d in %s addr %#llx ptr %#llx n %#llx\n",
		       *secs, sh->last.pid, kinds[sh->last.kind].name, sh->last.addr,
		       sh->last.ptr, sh->last.npages);
	kill(pid, SIGKILL);
	for (i = 0; i < 100 && waitpid(pid, &status, WNOHANG) != pid; i++)
		usleep(100000);
	return 255;
}

static void print_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--seed N] [--calls N] [--no-inject] [--no-fork]\n", prog);
	exit(KSFT_FAIL);
}

int main(int argc, char **argv)
{
	unsigned long ncalls = DEFAULT_CALLS;
	__u64 seed = time(NULL) ^ ((__u64)getpid() << 20);
	double secs = 0;
	long used;
	int i, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
			ncalls = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--no-inject"))
			no_inject = true;
		else if (!strcmp(argv[i], "--no-fork"))
			no_fork = true;
		else
			print_usage(argv[0]);
	}
	ksft_print_header();
	if (access("/dev/hmm_dummy1", F_OK))
		ksft_exit_skip("/dev/hmm_dummy0 and 1 are needed (is hmm_dummy loaded?)\n");
	ksft_set_plan(8);
	ksft_print_msg("seed %llu (replay: --seed %llu --calls %lu)\n",
		       (unsigned long long)seed, (unsigned long long)seed, ncalls);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		ksft_exit_fail_perror("mmap");

	ret = run_loop(seed, ncalls, &secs);
	ksft_print_msg("pages of this process the loop moved to a device: %lu\n",
		       take_back_own_pages());
	/* Before the round trips: what the loop's processes left behind. */
	ksft_print_msg("after the loop: dev0 %ld, dev1 %ld device pages used\n",
		       dummy_settled_pages_used(0), dummy_settled_pages_used(1));
	ksft_print_msg("%lu calls (%lu from %lu forked children) and %lu mm operations in %.1f s\n",
		       sh->calls, sh->child_calls, sh->forks, sh->mm_ops, secs);
	ksft_print_msg("%lu CPU touches, %lu SIGBUS from PFN_ERROR\n", sh->cpu_touches,
		       sh->sigbus);
	print_histogram();
	print_notes();
	ksft_test_result(ret == 0, "fuzz loop ran %lu calls and exited normally (status %d)\n",
			 sh->calls, ret);
	ksft_test_result(!sh->undocumented, "every errno is documented (%lu not)\n",
			 sh->undocumented);
	ksft_test_result(!sh->mismatches, "every decidable result as predicted (%lu not)\n",
			 sh->mismatches);
	ksft_test_result(!sh->bad_output, "outputs of successful calls are consistent (%lu not)\n",
			 sh->bad_output);
	ksft_test_result((sh->foreign_calls || no_fork) &&
			 sh->foreign_eperm == sh->foreign_calls && !sh->child_failed,
			 "non-openers got EPERM (%lu of %lu), %lu children failed, %lu orphan-file calls\n",
			 sh->foreign_eperm, sh->foreign_calls, sh->child_failed,
			 sh->released_calls);
	for (i = 0; i < 2; i++)
		ksft_test_result(!round_trip(i), "dev%d: clean round trip after the fuzzing\n", i);
	used = dummy_settled_pages_used(0);
	ret = dummy_settled_pages_used(1);
	ksft_test_result(!used && !ret, "device memory all free: dev0 %ld, dev1 %d pages used\n",
			 used, ret);
	ksft_finished();
}
