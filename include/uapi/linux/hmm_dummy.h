/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hmm_dummy: user interface of the dummy HMM device driver.
 *
 * Each /dev/hmm_dummyN is a pretend device with its own device-private
 * memory. The ioctls below let a test drive the device and observe it.
 * Numbers 0x00 to 0x3f are kept for the commands shared with the base
 * tree's lib/test_hmm_uapi.h (same numbers and layouts); the driver's own
 * commands start at 0x40.
 */
#ifndef _UAPI_LINUX_HMM_DUMMY_H
#define _UAPI_LINUX_HMM_DUMMY_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define HMM_DUMMY_IOC_MAGIC	'H'

/**
 * struct hmm_dummy_cmd - a device access to a range of the mirrored mm
 * @addr: (in) start of the range in the mirrored address space, page
 *	aligned
 * @ptr: (in) user buffer of @npages pages the data is copied to or from
 * @npages: (in) number of pages, 1 up to HMM_DUMMY_MAX_PAGES
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
#define HMM_DUMMY_MAX_PAGES	(1UL << 18)

/*
 * Device reads and writes through the device page table, faulting pages
 * in as needed; SNAPSHOT reports one byte per page (HMM_DUMMY_PROT_*)
 * in @ptr without faulting anything in.
 *
 * MIGRATE_TO_DEV moves the range's anonymous private pages (empty and
 * zero-page entries included) to the device, then reads the range back
 * into @ptr from device memory: @cpages counts the pages read, and the
 * first page not in this device's memory (shared or file pages, another
 * device's) ends the read with ENOENT. MIGRATE_TO_SYS moves the range's
 * pages in this device's memory back to RAM; @cpages counts them. Both
 * need the range covered by VMAs with read access (else EINVAL).
 * RELEASE moves every page of the device's memory back to RAM, whichever
 * process uses it; @cpages counts them and the other fields are ignored.
 */
#define HMM_DUMMY_READ		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x00, struct hmm_dummy_cmd)
#define HMM_DUMMY_WRITE		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x01, struct hmm_dummy_cmd)
#define HMM_DUMMY_MIGRATE_TO_DEV	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x02, struct hmm_dummy_cmd)
#define HMM_DUMMY_MIGRATE_TO_SYS	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x03, struct hmm_dummy_cmd)
#define HMM_DUMMY_SNAPSHOT	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x04, struct hmm_dummy_cmd)
#define HMM_DUMMY_RELEASE	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x07, struct hmm_dummy_cmd)

/*
 * EXCLUSIVE takes the range's pages for exclusive (atomic) device access
 * with make_device_exclusive(): the CPU page table keeps a
 * device-exclusive entry, the device page table a writable entry marked
 * exclusive, and the first CPU access takes the page back, which clears
 * the mark. The range must be private memory the caller may write (else
 * EPERM; EOPNOTSUPP for shared or hugetlbfs memory); its data is then
 * read into @ptr through the device page table, and @cpages counts the
 * pages read. CHECK_EXCLUSIVE fails with EPERM while any page of the
 * range is still marked exclusive; @cpages counts those pages.
 */
#define HMM_DUMMY_EXCLUSIVE	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x05, struct hmm_dummy_cmd)
#define HMM_DUMMY_CHECK_EXCLUSIVE	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x06, struct hmm_dummy_cmd)

/*
 * FLAGS sets this file's flags to @npages (the other fields are
 * ignored); EINVAL for an unknown bit. FAIL_ALLOC makes the next
 * allocation of a huge destination fail once, in either direction, so
 * that the migration falls back to base pages. hmm_dummy moves every
 * page as a base page today (a THP is split first), so it makes no huge
 * allocation and the flag stays set: a migration then behaves as the
 * fallback would, with every page moved and its data intact.
 */
#define HMM_DUMMY_FLAGS		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x08, struct hmm_dummy_cmd)
#define HMM_DUMMY_FLAG_FAIL_ALLOC	(1ULL << 0)

/*
 * READ_UNLOCKED is READ whose faults may drop the mmap lock to wait:
 * memory registered with userfaultfd is read once a handler thread has
 * provided its pages. A signal while a fault waits ends the command with
 * EINTR (it restarts after a signal without handler, or with an
 * SA_RESTART one); @cpages counts the pages copied to @ptr before it,
 * which the driver does in whole batches of 64 pages.
 */
#define HMM_DUMMY_READ_UNLOCKED	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x09, struct hmm_dummy_cmd)

/*
 * SNAPSHOT values, one byte per page; the same as lib/test_hmm_uapi.h.
 * PMD and PUD are or-ed in when the page is mapped by a huge entry.
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
	HMM_DUMMY_PROT_DEV_PRIVATE_REMOTE	= 0x30,
};

/* Kinds of invalidation a mirror is told about, to index the counters. */
enum {
	HMM_DUMMY_EVENT_UNMAP,		/* munmap, mremap away */
	HMM_DUMMY_EVENT_CLEAR,		/* madvise, COW break, truncation */
	HMM_DUMMY_EVENT_PROTECT,	/* mprotect, fork's write protection */
	HMM_DUMMY_EVENT_MIGRATE,	/* page migration */
	HMM_DUMMY_EVENT_RELEASE,	/* the mm is being torn down */
	HMM_DUMMY_EVENT_OTHER,
	HMM_DUMMY_EVENT_EXCLUSIVE,	/* a device takes exclusive access */
	HMM_DUMMY_NR_EVENTS = 8,	/* room for more, layout unchanged */
};

/**
 * struct hmm_dummy_counters - what one open file's mirror has seen
 * @invalidations: invalidations received, by HMM_DUMMY_EVENT_*
 * @faults: device page faults served (filling the device page table)
 * @retries: fills thrown away because an invalidation raced with them
 * @mirrored: device page table entries now valid
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
};

/* Fill a struct hmm_dummy_info for the device the file was opened on. */
#define HMM_DUMMY_INFO		_IOR(HMM_DUMMY_IOC_MAGIC, 0x40, struct hmm_dummy_info)
/* Fill a struct hmm_dummy_counters for this file's mirror. */
#define HMM_DUMMY_COUNTERS	_IOR(HMM_DUMMY_IOC_MAGIC, 0x41, struct hmm_dummy_counters)

/*
 * Who copies the data of this file's migrations: DRIVER, the default, has
 * the driver copy to and from device memory. CORE has the device use
 * system memory, as one sharing the CPU's memory would, so that the core
 * can copy (MIGRATE_VMA_CORE_COPY); pages then move to other system
 * pages and the device memory stays unused.
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
 * and a CPU access raises SIGBUS. One injection per device, for the
 * caller's mm; it stays until cleared with HMM_DUMMY_INJECT_NONE.
 */
struct hmm_dummy_inject {
	__u64 addr;
	__u64 npages;
	__u32 kind;
	__u32 pad;
};

/* Set this file's copy mode, a HMM_DUMMY_COPY_* value. */
#define HMM_DUMMY_COPY_MODE	_IOW(HMM_DUMMY_IOC_MAGIC, 0x42, __u32)
/* Set the device's injected fault; EINVAL for a bad kind or range. */
#define HMM_DUMMY_INJECT	_IOW(HMM_DUMMY_IOC_MAGIC, 0x43, struct hmm_dummy_inject)

#endif /* _UAPI_LINUX_HMM_DUMMY_H */
