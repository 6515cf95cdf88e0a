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
 */
#define HMM_DUMMY_READ		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x00, struct hmm_dummy_cmd)
#define HMM_DUMMY_WRITE		_IOWR(HMM_DUMMY_IOC_MAGIC, 0x01, struct hmm_dummy_cmd)
#define HMM_DUMMY_SNAPSHOT	_IOWR(HMM_DUMMY_IOC_MAGIC, 0x04, struct hmm_dummy_cmd)

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
	HMM_DUMMY_NR_EVENTS = 8,
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
 */
struct hmm_dummy_info {
	__u32 device;
	__u32 nr_chunks;
	__u64 chunk_bytes;
	__u64 pages_total;
	__u64 pages_free;
	__u64 mirrors;
	__u64 releases;
};

/* Fill a struct hmm_dummy_info for the device the file was opened on. */
#define HMM_DUMMY_INFO		_IOR(HMM_DUMMY_IOC_MAGIC, 0x40, struct hmm_dummy_info)
/* Fill a struct hmm_dummy_counters for this file's mirror. */
#define HMM_DUMMY_COUNTERS	_IOR(HMM_DUMMY_IOC_MAGIC, 0x41, struct hmm_dummy_counters)

#endif /* _UAPI_LINUX_HMM_DUMMY_H */
