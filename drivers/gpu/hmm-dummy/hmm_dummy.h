/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hmm_dummy: definitions shared by the files of the dummy HMM driver.
 */
#ifndef _HMM_DUMMY_H
#define _HMM_DUMMY_H

#include <linux/atomic.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include "hmm_dummy_uapi.h"
#include <linux/hmm_mirror.h>
#include <linux/list.h>
#include <linux/memremap.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/xarray.h>

/*
 * Pages a mirror command handles per round, in pfn arrays and bounce
 * buffers on the stack or in one allocation; a migrated batch (larger,
 * so that a THP fits) is read back from the device in rounds of it.
 */
#define HMM_DUMMY_BATCH		64

/*
 * Tags of a device page table entry (see struct hmm_dummy_file): WRITE
 * when the device may write the page, EXCLUSIVE (which includes WRITE)
 * when it has the page for exclusive access. XArray keeps tag 2 for
 * itself.
 */
#define HMM_DUMMY_PT_WRITE	1
#define HMM_DUMMY_PT_EXCLUSIVE	3

/* The tag of the entry for a page a mirror walk found, as @pfn gives it. */
static inline unsigned long hmm_dummy_pt_tag(u64 pfn)
{
	return pfn & HMM_MIRROR_PFN_WRITE ? HMM_DUMMY_PT_WRITE : 0;
}

struct hmm_dummy_device;
struct hmm_dummy_file;

/**
 * struct hmm_dummy_phase_clock - where one file's migrations spent their time
 * @on: accounting was asked for (HMM_DUMMY_PHASE_TIMES); set once, never
 *	cleared
 * @ns: nanoseconds per HMM_DUMMY_PHASE_*
 * @calls: migrate_vma() calls counted
 * @commands: commands counted
 *
 * Atomics: commands of one file may run in several threads at once.
 */
struct hmm_dummy_phase_clock {
	bool on;
	atomic64_t ns[HMM_DUMMY_NR_PHASES];
	atomic64_t calls;
	atomic64_t commands;
};

/**
 * struct hmm_dummy_injection - a fault to make migrations meet
 * @owner: the file that asked, NULL when none; cleared when it closes
 * @mm: the address space the range belongs to; compared, never followed
 * @start: start of the range
 * @end: end of the range
 * @kind: HMM_DUMMY_INJECT_*
 */
struct hmm_dummy_injection {
	struct hmm_dummy_file *owner;
	struct mm_struct *mm;
	unsigned long start;
	unsigned long end;
	u32 kind;
};

/**
 * struct hmm_dummy_chunk - one range of device-private memory
 * @pagemap: the ZONE_DEVICE registration; its range is the chunk's
 *	physical addresses, taken from the free part of iomem
 * @hdev: the device owning the chunk
 * @link: entry in &hmm_dummy_device.chunks
 * @first_block_pfn: the first pfn of the chunk that starts a 2 MiB block
 * @nr_blocks: how many whole blocks the chunk has from there
 * @block_free: for each block, how many of its pages are on the free list
 *	of base pages, under &hmm_dummy_device.free_lock
 */
struct hmm_dummy_chunk {
	struct dev_pagemap pagemap;
	struct hmm_dummy_device *hdev;
	struct list_head link;
	unsigned long first_block_pfn;
	unsigned long nr_blocks;
	u16 *block_free;
};

/**
 * struct hmm_dummy_device - one /dev/hmm_dummyN
 * @dev: the device behind the character device node
 * @cdev: the character device
 * @index: N in /dev/hmm_dummyN
 * @chunks_lock: serialises adding and removing chunks
 * @chunks: the registered chunks, under @chunks_lock
 * @nr_chunks: length of @chunks, under @chunks_lock
 * @free_lock: protects the free lists, their counts and @pages_total; taken from
 *	folio_free(), which may run in any context, so it is a spinlock
 * @free_pages: free device base pages, linked through page->zone_device_data
 * @free_blocks: free blocks of 2 MiB (PMD_ORDER), for device THPs, linked
 *	through their head page's zone_device_data
 * @nr_free_blocks: length of @free_blocks
 * @nr_free: free device pages, on both lists
 * @nr_mergeable: blocks whose pages are all on @free_pages, which a device
 *	THP that finds @free_blocks empty makes a free block again
 * @pages_total: device pages in all of @chunks, written under both locks
 * @mirrors: open files whose mirror is registered
 * @releases: release() calls seen by this device's mirrors
 * @huge_no_block: device THPs refused as no free block was left
 * @huge_no_backing: device THPs refused as no order PMD_ORDER system page
 *	could be had for their backing storage
 * @inject_lock: protects @inject
 * @inject: the fault HMM_DUMMY_INJECT asked for, if any
 */
struct hmm_dummy_device {
	struct device dev;
	struct cdev cdev;
	unsigned int index;

	/* Sleeps: memunmap_pages() waits under it. */
	struct mutex chunks_lock;
	struct list_head chunks;
	unsigned int nr_chunks;

	/* folio_free() may be called in atomic context. */
	spinlock_t free_lock;
	struct page *free_pages;
	struct page *free_blocks;
	unsigned long nr_free_blocks;
	unsigned long nr_free;
	unsigned long nr_mergeable;
	unsigned long pages_total;

	atomic_long_t mirrors;
	atomic_long_t releases;
	atomic_long_t huge_no_block;
	atomic_long_t huge_no_backing;

	/* Read by every migration, set by HMM_DUMMY_INJECT. */
	spinlock_t inject_lock;
	struct hmm_dummy_injection inject;
};

/**
 * struct hmm_dummy_file - one open file: a mirror of its opener's mm
 * @hdev: the device the file was opened on
 * @mirror: registered on the opener's mm at open, unregistered at close
 * @pt_lock: protects @pt, @counters and the excl_ fields; the mirror's
 *	update() takes it
 * @pt: the device page table (hmm_dummy_pt.c): virtual page number to
 *	struct page, the pointer tagged with HMM_DUMMY_PT_*, one entry for
 *	2 MiB where the CPU maps 2 MiB
 * @exclusive_lock: one EXCLUSIVE command of the file at a time
 * @excl_addr: the page an EXCLUSIVE command is taking, under @pt_lock
 * @excl_taking: @excl_addr is valid, under @pt_lock
 * @excl_stale: an invalidation covered @excl_addr since it was set, under
 *	@pt_lock: the exclusive entry must not be installed
 * @counters: what the mirror has seen, reported by HMM_DUMMY_COUNTERS
 * @copy_mode: HMM_DUMMY_COPY_*, who copies this file's migrations
 * @flags: HMM_DUMMY_FLAG_*, set by HMM_DUMMY_FLAGS; FAIL_ALLOC is cleared
 *	by the allocation it fails
 * @phase_clock: where the file's migrations spent their time
 */
struct hmm_dummy_file {
	struct hmm_dummy_device *hdev;
	struct hmm_mirror mirror;
	/* Sleeps: device faults copy pages under it. */
	struct mutex pt_lock;
	struct xarray pt;
	/* Sleeps: held across make_device_exclusive(). */
	struct mutex exclusive_lock;
	unsigned long excl_addr;
	bool excl_taking;
	bool excl_stale;
	struct hmm_dummy_counters counters;
	u32 copy_mode;
	atomic64_t flags;
	struct hmm_dummy_phase_clock phase_clock;
};

extern unsigned long hmm_dummy_chunk_bytes;

/* hmm_dummy_devmem.c: device memory */
int hmm_dummy_add_chunk(struct hmm_dummy_device *hdev);
void hmm_dummy_remove_chunks(struct hmm_dummy_device *hdev);
unsigned long hmm_dummy_pages_free(struct hmm_dummy_device *hdev);
unsigned long hmm_dummy_pages_used(struct hmm_dummy_device *hdev);
unsigned long hmm_dummy_alloc_pages(struct hmm_dummy_device *hdev, struct page **pages,
				    unsigned long nr);
struct page *hmm_dummy_alloc_huge(struct hmm_dummy_device *hdev);
struct page *hmm_dummy_page_data(struct page *page);
unsigned long hmm_dummy_evict_all(struct hmm_dummy_device *hdev, struct hmm_dummy_file *hfile);

/* hmm_dummy_mirror.c: the mirror and its device page table */
struct hmm_dummy_file *hmm_dummy_file_open(struct hmm_dummy_device *hdev);
void hmm_dummy_file_close(struct hmm_dummy_file *hfile);
int hmm_dummy_cmd_get(struct hmm_dummy_file *hfile, void __user *uarg,
		      struct hmm_dummy_cmd *cmd);
int hmm_dummy_cmd_put(void __user *uarg, const struct hmm_dummy_cmd *cmd, int ret);
int hmm_dummy_cmd_read(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd);
int hmm_dummy_read_back(struct hmm_dummy_file *hfile, unsigned long start,
			unsigned long npages, struct page *const *moved, void *buf,
			unsigned long *copied);
long hmm_dummy_mirror_ioctl(struct hmm_dummy_file *hfile, unsigned int cmd,
			    void __user *uarg);

/* hmm_dummy_pt.c: the device page table */
void hmm_dummy_pt_clear(struct hmm_dummy_file *hfile, unsigned long start, unsigned long end);
long hmm_dummy_pt_store_run(struct hmm_dummy_file *hfile, unsigned long addr, const u64 *pfns,
			    unsigned long npages);
long hmm_dummy_pt_store(struct hmm_dummy_file *hfile, unsigned long addr,
			struct page *page, unsigned long tag, unsigned int cpu_order);
struct page *hmm_dummy_pt_lookup(struct hmm_dummy_file *hfile, unsigned long addr,
				 unsigned long *tag, unsigned long *nr);

/* hmm_dummy_exclusive.c: exclusive (atomic) device access */
void hmm_dummy_exclusive_update(struct hmm_dummy_file *hfile, const struct hmm_update *update);
long hmm_dummy_exclusive_ioctl(struct hmm_dummy_file *hfile, unsigned int cmd,
			       void __user *uarg);

/* hmm_dummy_migrate.c: moving pages to and from device memory */
vm_fault_t hmm_dummy_migrate_to_ram(struct vm_fault *vmf);
unsigned long hmm_dummy_evict_range(struct hmm_dummy_device *hdev, struct hmm_dummy_file *hfile,
				    unsigned long pfn, unsigned long npages);
void hmm_dummy_inject_clear(struct hmm_dummy_file *hfile);
long hmm_dummy_migrate_ioctl(struct hmm_dummy_file *hfile, unsigned int cmd,
			     void __user *uarg);

#endif /* _HMM_DUMMY_H */
