/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hmm_dummy: the ioctls of the dummy HMM device driver.
 *
 * A test device's interface is no part of the kernel's user ABI: this
 * header lives beside the driver, and the selftests include it by its
 * path in the tree, as selftests/mm/hmm-tests includes
 * lib/test_hmm_uapi.h. It may change with the tests that use it.
 */
#ifndef _HMM_DUMMY_UAPI_H
#define _HMM_DUMMY_UAPI_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: Commands
 *
 * Each ``/dev/hmm_dummyN`` is a pretend device with its own device-private
 * memory; each open file mirrors the address space of the process that
 * opened it. Numbers ``0x00`` to ``0x3f`` are kept for the commands the
 * driver shares with the base tree's ``lib/test_hmm_uapi.h``: same
 * numbers, same layout, same behaviour, so that
 * ``tools/testing/selftests/mm/hmm-tests`` runs against ``hmm_dummy`` too.
 * The driver's own commands start at ``0x40``.
 *
 * ``HMM_DUMMY_READ`` (``0x00``), ``HMM_DUMMY_WRITE`` (``0x01``)
 *   Copy ``npages`` pages at ``addr`` of the mirrored mm to or from the
 *   buffer at ``ptr``, through the device page table. Missing pages (or,
 *   for a write, pages without write access) are faulted in like a CPU
 *   access would, which breaks copy-on-write; ``faults`` counts the device
 *   faults, ``cpages`` the pages copied, also when the command fails part
 *   way.
 *
 * ``HMM_DUMMY_MIGRATE_TO_DEV`` (``0x02``)
 *   Move the pages of ``npages`` at ``addr`` to the device (empty and
 *   zero-page entries of anonymous memory included), then read them back
 *   from device memory into ``ptr``: ``cpages`` counts the pages read, and
 *   the first page not in this device's memory (shared or file memory,
 *   another device's page, a page that could not move) ends the command
 *   with ``-ENOENT``. A page still shared copy-on-write with another
 *   process (after ``fork()``) moves for every process that maps it. The
 *   range must be covered by VMAs with read access (``-EINVAL`` otherwise,
 *   checked before anything moves).
 *
 * ``HMM_DUMMY_MIGRATE_TO_SYS`` (``0x03``)
 *   Move the range's pages that are in this device's memory back to RAM;
 *   ``cpages`` counts them. Same range rules.
 *
 * ``HMM_DUMMY_SNAPSHOT`` (``0x04``)
 *   Write one ``HMM_DUMMY_PROT_*`` byte per page to ``ptr``, faulting
 *   nothing in: ``NONE`` for a page not present (another device's page
 *   included), ``READ`` or ``WRITE``, ``ZERO`` for the zero page, ``PMD``
 *   or ``PUD`` for a huge mapping, ``DEV_PRIVATE_LOCAL`` for the device's
 *   own memory, and ``ERROR`` where nothing can be mirrored (no mapping,
 *   no access, an I/O mapping).
 *
 *   These three and the two ``MIGRATE_*`` commands take a
 *   ``struct hmm_dummy_cmd`` and check it the same way: ``-EINVAL`` for an
 *   unaligned ``addr``, ``npages == 0`` or a range that wraps; ``-E2BIG``
 *   above ``HMM_DUMMY_MAX_PAGES``; ``-EFAULT`` for a bad ``ptr``, or to
 *   read or write where there is no mapping, no read access or an I/O
 *   mapping; ``-EPERM`` to write a read-only mapping; ``-EBUSY`` when the
 *   CPU page table kept changing under eight walks in a row, or
 *   invalidations of the process kept making the walks stale for a
 *   second; ``-EINTR`` on a fatal signal; ``-ENOMEM`` when the driver's
 *   own bookkeeping cannot be allocated.
 *
 * ``HMM_DUMMY_EXCLUSIVE`` (``0x05``)
 *   Take the range's pages for exclusive (atomic) device access with
 *   ``make_device_exclusive()``, then read them into ``ptr`` through the
 *   device page table; ``cpages`` counts the pages read. The CPU page
 *   table keeps a device-exclusive entry, the device page table a
 *   writable entry marked exclusive. The pages must be private memory the
 *   process may write (a private file page is copied first): ``-EFAULT``
 *   where nothing is mapped or the mapping has no access, ``-EPERM`` for
 *   a read-only mapping, ``-EOPNOTSUPP`` for shared or hugetlbfs
 *   memory, ``-EBUSY`` when invalidations of a page made sixteen tries in
 *   a row stale; the pages taken before the one that failed stay taken,
 *   and ``cpages`` is 0. Any invalidation of a page ends its exclusive
 *   access and clears the mark: the first CPU access, another device's
 *   access, ``fork()``, a change of protection, ``MADV_DONTNEED`` or
 *   ``MADV_FREE``, migration, unmapping.
 *
 * ``HMM_DUMMY_CHECK_EXCLUSIVE`` (``0x06``)
 *   ``-EPERM`` while the device still has any page of the range for
 *   exclusive access, else 0; ``cpages`` counts those pages.
 *
 * ``HMM_DUMMY_RELEASE`` (``0x07``)
 *   Move every page of the device's memory back to RAM, whichever process
 *   uses it; ``cpages`` counts them. The other fields are ignored.
 *
 * ``HMM_DUMMY_FLAGS`` (``0x08``)
 *   Set the file's flags to ``npages`` (the other fields are ignored); an
 *   unknown bit gives ``-EINVAL``. ``HMM_DUMMY_FLAG_FAIL_ALLOC`` makes the
 *   next allocation of a THP destination by the file's migration commands
 *   (``HMM_DUMMY_RELEASE`` included) fail once, in either direction, so
 *   that the THP moves as base pages, every page moved and its data
 *   intact; that allocation clears the flag. A CPU fault or the eviction
 *   on unload belongs to no file and does not see it.
 *
 * ``HMM_DUMMY_READ_UNLOCKED`` (``0x09``)
 *   ``HMM_DUMMY_READ`` whose faults may drop the mmap lock to wait: a
 *   range registered with userfaultfd is read once the handler thread has
 *   provided its pages. A signal while a fault waits ends the command with
 *   ``EINTR`` (it is restarted after a signal with no handler or an
 *   ``SA_RESTART`` one); ``cpages`` counts the pages copied to ``ptr``
 *   before it, which the driver does in whole batches of 64 pages. A
 *   userfaultfd made with ``UFFD_USER_MODE_ONLY`` or
 *   ``UFFD_FEATURE_SIGBUS`` cannot serve a device's fault: ``-EFAULT``.
 *
 * ``HMM_DUMMY_INFO`` (``0x40``)
 *   Fills a ``struct hmm_dummy_info`` for the device the file was opened
 *   on. A bad pointer gives ``-EFAULT``.
 *
 * ``HMM_DUMMY_COUNTERS`` (``0x41``)
 *   Fills a ``struct hmm_dummy_counters`` for the file's mirror.
 *
 * ``HMM_DUMMY_COPY_MODE`` (``0x42``)
 *   Who copies this file's migrations to the device: ``HMM_DUMMY_COPY_DRIVER``
 *   (the default) or ``HMM_DUMMY_COPY_CORE``. In the core mode the device
 *   stands for one that uses system memory: its destinations are system
 *   pages, filled with ``0xa5`` so that a copy the core skipped would
 *   show, and ``migrate_vma()`` copies with ``MIGRATE_VMA_CORE_COPY``.
 *   Any other value gives ``-EINVAL``.
 *
 * ``HMM_DUMMY_INJECT`` (``0x43``)
 *   Make the device's migrations of a range of the caller's address space
 *   fail, with a ``struct hmm_dummy_inject``. One injection per device; it
 *   stays until cleared with ``HMM_DUMMY_INJECT_NONE`` or until the file
 *   that made it is closed. A bad kind, a non-zero ``pad``, an unaligned
 *   address, more than ``HMM_DUMMY_MAX_PAGES`` pages or a range that
 *   wraps gives ``-EINVAL``; a process other than the opener gets
 *   ``-EPERM``, even once the opener is gone.
 *
 * ``HMM_DUMMY_PHASE_TIMES`` (``0x44``)
 *   Fills a ``struct hmm_dummy_phase_times`` with where this file's
 *   ``MIGRATE_TO_DEV`` and ``MIGRATE_TO_SYS`` spent their time since the
 *   previous call, and starts over from zero. The first call turns the
 *   accounting on for the file; until then nothing is counted and a
 *   migration pays nothing for it. A command that runs while the figures
 *   are read may be split between two calls: read them when the file's
 *   commands are done. A bad pointer gives ``-EFAULT`` and keeps the
 *   figures for the next call.
 *
 * Only the opener may use the file for commands on its address space:
 * from any other process (a forked child with the inherited descriptor,
 * say) they fail with ``-EPERM``, and once the opener's mm is gone with
 * ``-ENODEV``. ``RELEASE``, ``FLAGS``, ``INFO``, ``COUNTERS``, ``PHASE_TIMES`` and
 * ``COPY_MODE`` concern the device or the file, not an address space:
 * any process holding the file may use them. Any other command gives
 * ``-ENOTTY``.
 */

#define HMM_DUMMY_IOC_MAGIC	'H'

/**
 * struct hmm_dummy_cmd - a device access to a range of the mirrored mm
 * @addr: (in) start of the range in the mirrored address space, page
 *	aligned
 * @ptr: (in) user buffer of @npages pages the data is copied to or from
 * @npages: (in) number of pages, 1 up to HMM_DUMMY_MAX_PAGES; the flags
 *	for HMM_DUMMY_FLAGS
 * @cpages: (out) number of pages copied or reported
 * @faults: (out) number of device page faults taken to fill the device
 *	page table for this command
 *
 * The same layout as struct hmm_dmirror_cmd of lib/test_hmm_uapi.h.
 */
struct hmm_dummy_cmd {
	__u64 addr;
	__u64 ptr;
	__u64 npages;
	__u64 cpages;
	__u64 faults;
};

/* The largest @npages of one command: 1 GiB of 4 KiB pages. */
#define HMM_DUMMY_MAX_PAGES	_BITUL(18)

#define HMM_DUMMY_READ		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x00, struct hmm_dummy_cmd)
#define HMM_DUMMY_WRITE		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x01, struct hmm_dummy_cmd)
#define HMM_DUMMY_MIGRATE_TO_DEV	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x02, struct hmm_dummy_cmd)
#define HMM_DUMMY_MIGRATE_TO_SYS	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x03, struct hmm_dummy_cmd)
#define HMM_DUMMY_SNAPSHOT	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x04, struct hmm_dummy_cmd)
#define HMM_DUMMY_EXCLUSIVE	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x05, struct hmm_dummy_cmd)
#define HMM_DUMMY_CHECK_EXCLUSIVE	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x06, struct hmm_dummy_cmd)
#define HMM_DUMMY_RELEASE	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x07, struct hmm_dummy_cmd)
#define HMM_DUMMY_FLAGS		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x08, struct hmm_dummy_cmd)
#define HMM_DUMMY_READ_UNLOCKED	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x09, struct hmm_dummy_cmd)

#define HMM_DUMMY_FLAG_FAIL_ALLOC	_BITULL(0)

/*
 * SNAPSHOT values, one byte per page; the same as lib/test_hmm_uapi.h
 * (whose DEV_PRIVATE_REMOTE, 0x30, neither driver reports: a walk sees
 * another device's private page as not present). PMD and PUD are or-ed
 * in when the page is mapped by a huge entry.
 */
enum {
	HMM_DUMMY_PROT_ERROR			= 0xff,
	HMM_DUMMY_PROT_NONE			= 0x00,
	HMM_DUMMY_PROT_READ			= 0x01,
	HMM_DUMMY_PROT_WRITE			= 0x02,
	HMM_DUMMY_PROT_PMD			= 0x04,
	HMM_DUMMY_PROT_PUD			= 0x08,
	HMM_DUMMY_PROT_ZERO			= 0x10,
	HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL	= 0x20,
};

/*
 * Kinds of invalidation a mirror is told about, to index the counters.
 * The array is sized for eight so that the counters keep their layout as
 * kinds are added.
 */
enum {
	HMM_DUMMY_EVENT_UNMAP,		/* munmap, mremap away */
	HMM_DUMMY_EVENT_CLEAR,		/* madvise, COW break, truncation */
	HMM_DUMMY_EVENT_PROTECT,	/* mprotect, fork's write protection */
	HMM_DUMMY_EVENT_MIGRATE,	/* page migration */
	HMM_DUMMY_EVENT_RELEASE,	/* the mm is being torn down */
	HMM_DUMMY_EVENT_OTHER,
	HMM_DUMMY_EVENT_EXCLUSIVE,	/* a device takes exclusive access */
	HMM_DUMMY_NR_EVENTS = 8,
};

/**
 * struct hmm_dummy_counters - what one open file's mirror has seen
 * @invalidations: invalidations received, by HMM_DUMMY_EVENT_*
 * @faults: device page faults served (filling the device page table)
 * @retries: fills thrown away because an invalidation raced with them
 * @mirrored: pages the device page table maps now (one 2 MiB entry counts 512)
 * @released: 1 once the mirror's release() was called, else 0
 * @pad: zero
 */
struct hmm_dummy_counters {
	__u64 invalidations[HMM_DUMMY_NR_EVENTS];
	__u64 faults;
	__u64 retries;
	__u64 mirrored;
	__u32 released;
	__u32 pad;
};

/**
 * struct hmm_dummy_info - what a device reports about itself
 * @device: N in /dev/hmm_dummyN
 * @nr_chunks: how many chunks of device-private memory are registered
 * @chunk_bytes: size of one chunk, in bytes
 * @pages_total: device pages in all registered chunks
 * @pages_free: device pages on the free list, not backing any user data
 * @mirrors: open files of this device whose mirror is still registered
 * @releases: release() calls seen by mirrors of this device since load
 * @pages_used: device pages holding user data, @pages_total - @pages_free
 * @huge_no_block: device THPs refused since load because no free 2 MiB
 *	block was left (the THP then moves as base pages)
 * @huge_no_backing: device THPs refused since load because the driver
 *	found no 2 MiB of system memory to stand for their device memory
 */
struct hmm_dummy_info {
	__u32 device;
	__u32 nr_chunks;
	__u64 chunk_bytes;
	__u64 pages_total;
	__u64 pages_free;
	__u64 mirrors;
	__u64 releases;
	__u64 pages_used;
	__u64 huge_no_block;
	__u64 huge_no_backing;
};

#define HMM_DUMMY_INFO		_IOR(HMM_DUMMY_IOC_MAGIC, 0x40, struct hmm_dummy_info)
#define HMM_DUMMY_COUNTERS	_IOR(HMM_DUMMY_IOC_MAGIC, 0x41, struct hmm_dummy_counters)

/*
 * Who copies the data of this file's migrations: DRIVER, the default,
 * or CORE (MIGRATE_VMA_CORE_COPY, with a device that uses system memory).
 */
enum {
	HMM_DUMMY_COPY_DRIVER	= 0,
	HMM_DUMMY_COPY_CORE	= 1,
};

/* Faults HMM_DUMMY_INJECT can make the driver's migrations meet. */
enum {
	HMM_DUMMY_INJECT_NONE		= 0,	/* clear the injection */
	HMM_DUMMY_INJECT_ALLOC_FAIL	= 1,	/* no destination: page stays */
	HMM_DUMMY_INJECT_PFN_ERROR	= 2,	/* MIGRATE_PFN_ERROR: SIGBUS */
};

/**
 * struct hmm_dummy_inject - make migrations of a range fail
 * @addr: start of the range in the caller's address space, page aligned
 * @npages: pages in the range
 * @kind: HMM_DUMMY_INJECT_*
 * @pad: zero
 *
 * ALLOC_FAIL makes alloc_and_copy() give no destination for the range's
 * pages in MIGRATE_TO_DEV and MIGRATE_TO_SYS: they stay where they are.
 * PFN_ERROR makes it answer MIGRATE_PFN_ERROR for the range's pages when
 * they go back to RAM (MIGRATE_TO_SYS or a CPU fault): the data is lost
 * and a CPU access raises SIGBUS.
 */
struct hmm_dummy_inject {
	__u64 addr;
	__u64 npages;
	__u32 kind;
	__u32 pad;
};

#define HMM_DUMMY_COPY_MODE	_IOW(HMM_DUMMY_IOC_MAGIC, 0x42, __u32)
#define HMM_DUMMY_INJECT	_IOW(HMM_DUMMY_IOC_MAGIC, 0x43, struct hmm_dummy_inject)

/**
 * enum hmm_dummy_phase - where a migration's time goes
 * @HMM_DUMMY_PHASE_COLLECT: migrate_vma()'s collect phase
 * @HMM_DUMMY_PHASE_PREPARE: its prepare phase
 * @HMM_DUMMY_PHASE_UNMAP: its unmap phase
 * @HMM_DUMMY_PHASE_ALLOC_AND_COPY: the driver's alloc_and_copy(): the
 *	destinations allocated and, unless the core copies, the data copied
 * @HMM_DUMMY_PHASE_PAGES: migrate_vma()'s pages phase (where the core
 *	copies, in HMM_DUMMY_COPY_CORE mode)
 * @HMM_DUMMY_PHASE_FINALIZE_AND_MAP: the driver's finalize_and_map()
 * @HMM_DUMMY_PHASE_FINALIZE: migrate_vma()'s finalize phase
 * @HMM_DUMMY_PHASE_COMMAND: the whole command
 * @HMM_DUMMY_NR_PHASES: the number of entries of
 *	&hmm_dummy_phase_times.ns
 *
 * The phases in the order they run, to index struct hmm_dummy_phase_times.
 * A phase migrate_vma() skips, because no page is left to move, adds
 * nothing; its time goes to the next phase that runs.
 */
enum hmm_dummy_phase {
	HMM_DUMMY_PHASE_COLLECT,
	HMM_DUMMY_PHASE_PREPARE,
	HMM_DUMMY_PHASE_UNMAP,
	HMM_DUMMY_PHASE_ALLOC_AND_COPY,
	HMM_DUMMY_PHASE_PAGES,
	HMM_DUMMY_PHASE_FINALIZE_AND_MAP,
	HMM_DUMMY_PHASE_FINALIZE,
	HMM_DUMMY_PHASE_COMMAND,
	HMM_DUMMY_NR_PHASES,
};

/**
 * struct hmm_dummy_phase_times - where a file's migrations spent their time
 * @ns: nanoseconds of CLOCK_MONOTONIC in each &enum hmm_dummy_phase, summed over
 *	the migrate_vma() calls; COMMAND is the whole of each MIGRATE_TO_DEV
 *	or MIGRATE_TO_SYS command, which also holds what the driver does
 *	around the calls (taking the mmap lock, reading the pages back)
 * @calls: migrate_vma() calls that ran their phases, one per batch of up
 *	to 64 pages (a call refused with -EINVAL runs none)
 * @commands: commands counted
 *
 * Under QEMU with -icount the guest's clock counts instructions, so the
 * figures are the work done. A CPU fault's migration is not counted.
 */
struct hmm_dummy_phase_times {
	__u64 ns[HMM_DUMMY_NR_PHASES];
	__u64 calls;
	__u64 commands;
};

#define HMM_DUMMY_PHASE_TIMES	_IOR(HMM_DUMMY_IOC_MAGIC, 0x44, struct hmm_dummy_phase_times)

#endif /* _HMM_DUMMY_UAPI_H */
