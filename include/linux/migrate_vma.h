/* SPDX-License-Identifier: GPL-2.0 */
/*
 * migrate_vma(): move the memory behind a range of a process address space
 * to memory a driver allocates, typically device-private memory, and back.
 *
 * See Documentation/mm/hmm-mirror.rst for how a driver puts it together
 * with a mirror.
 */
#ifndef _LINUX_MIGRATE_VMA_H
#define _LINUX_MIGRATE_VMA_H

#include <linux/bits.h>
#include <linux/migrate.h>
#include <linux/mm_types.h>

/* The core copies the data instead of alloc_and_copy(); see below. */
#define MIGRATE_VMA_CORE_COPY	BIT(0)
/* Collect no system page and no empty entry: device memory back to RAM. */
#define MIGRATE_VMA_SKIP_SYSTEM	BIT(1)
/* Collect no device-private page: system memory to a device. */
#define MIGRATE_VMA_SKIP_DEVICE	BIT(2)

/**
 * enum migrate_vma_phase - the phases the core runs between the callbacks
 * @MIGRATE_VMA_PHASE_COLLECT: the page table walk (or, evicting, the
 *	lookup of the pages given) and the references taken on the sources
 * @MIGRATE_VMA_PHASE_PREPARE: the sources locked and taken off the LRU
 * @MIGRATE_VMA_PHASE_UNMAP: the sources' mappings replaced by migration
 *	entries
 * @MIGRATE_VMA_PHASE_PAGES: the struct page metadata moved to the
 *	destinations (and the data copied, under MIGRATE_VMA_CORE_COPY);
 *	empty entries mapped to their new pages
 * @MIGRATE_VMA_PHASE_FINALIZE: the destinations mapped where the move
 *	succeeded, the sources again where it failed, every page unlocked
 *	and released
 *
 * Told to &migrate_vma_ops.phase_done as each phase ends; alloc_and_copy()
 * runs between UNMAP and PAGES, finalize_and_map() between PAGES and
 * FINALIZE.
 */
enum migrate_vma_phase {
	MIGRATE_VMA_PHASE_COLLECT,
	MIGRATE_VMA_PHASE_PREPARE,
	MIGRATE_VMA_PHASE_UNMAP,
	MIGRATE_VMA_PHASE_PAGES,
	MIGRATE_VMA_PHASE_FINALIZE,
};

/**
 * struct migrate_vma_ops - what a driver supplies to migrate_vma()
 * @alloc_and_copy: allocate the destination pages and copy the data
 * @finalize_and_map: see which pages moved and update the device's mapping
 * @pgmap_owner: the &dev_pagemap.owner of the caller's device-private
 *	memory. Device-private pages are collected only when their owner is
 *	this value, so a driver moves its own pages and no other device's.
 *	NULL collects no device-private page.
 * @flags: MIGRATE_VMA_* or 0. By default every kind of page that can move
 *	is collected; SKIP_SYSTEM and SKIP_DEVICE leave out the pages a
 *	migration in one direction has nothing to do with, so that they are
 *	not locked, unmapped and mapped again for nothing.
 * @phase_done: optional, NULL for most drivers: called with the
 *	&enum migrate_vma_phase that just ended and the call's private
 *	pointer, in the context of the callbacks, for a driver that accounts
 *	where its migrations spend their time. A phase with nothing to do
 *	(no page left to move) is skipped and not told; in a call that
 *	returns 0, COLLECT and FINALIZE always are.
 *
 * alloc_and_copy() and finalize_and_map() get the arrays of one call: entry i describes the page at
 * @start + i * PAGE_SIZE, and there are (@end - @start) / PAGE_SIZE of
 * them. From migrate_vma_evict(), entry i is the i-th page given, @vma is
 * NULL and the range runs from 0.
 *
 * alloc_and_copy() runs once every source page that can move is locked,
 * unmapped (the CPU would wait on a migration entry) and known not to be
 * pinned. Such an entry of @src has MIGRATE_PFN_MIGRATE set and, unless
 * the address had no page (an empty or zero-page entry in anonymous
 * memory, which the caller may fill), MIGRATE_PFN_VALID with the source
 * pfn; MIGRATE_PFN_WRITE tells that the CPU may write the page. For each
 * entry it wants to move, the callback allocates a page, copies the data
 * (unless MIGRATE_VMA_CORE_COPY is set) and stores migrate_pfn(pfn) |
 * MIGRATE_PFN_LOCKED in @dst, the destination page locked and holding one
 * reference the core will drop. An entry left 0 stays where it is. Moving
 * device-private memory back to RAM is the one case where a driver that
 * cannot move a page may instead store MIGRATE_PFN_ERROR: the page is
 * dropped and a later CPU access to the address raises SIGBUS (not
 * honoured by migrate_vma_evict(), which keeps such a page in place).
 *
 * A transparent huge page mapped by one PMD, in system memory or the
 * caller's own device-private memory, that the range covers whole is
 * taken whole: its head entry has MIGRATE_PFN_COMPOUND, and the next
 * entries are its tail pages, each with its own pfn and the head's other
 * flags. The callback chooses: a destination of the same order in the
 * head entry, with MIGRATE_PFN_COMPOUND too (and the tail entries left
 * 0), moves it whole, behind one PMD again; base pages in the entries
 * split it once it is unmapped, and the pages move one by one (evicting,
 * its PMD is split in every VMA that maps it); no destination at all
 * leaves it whole where it was. A THP that
 * is mapped anywhere else too, or only partly covered by the range, is
 * split during collect and its pages are entries of their own. Either
 * way each entry stands for one base page.
 *
 * With MIGRATE_VMA_CORE_COPY, alloc_and_copy() only allocates and the core
 * copies each page after the struct page metadata moved, or zeroes the
 * destination of an empty entry. The CPU cannot reach device-private
 * memory, so under this flag an entry with a device-private source or
 * destination is not migrated.
 *
 * finalize_and_map() runs after the metadata of each page moved, with
 * source and destination still locked and the mmap lock still held. An
 * entry whose move succeeded still has MIGRATE_PFN_MIGRATE in @src; a
 * failed one lost it and its destination, if any, is freed after the
 * callback. Locked pages cannot be migrated again meanwhile, but the read
 * mmap lock does not keep MADV_DONTNEED from zapping the range: a driver
 * that maps the pages in its own page table here must be able to tell
 * that from its mirror, or map them after the call, through the mirror.
 *
 * Neither callback may change @src; finalize_and_map() may not change
 * @dst either.
 */
struct migrate_vma_ops {
	void (*alloc_and_copy)(struct vm_area_struct *vma, const unsigned long *src,
			       unsigned long *dst, unsigned long start,
			       unsigned long end, void *private);
	void (*finalize_and_map)(struct vm_area_struct *vma, const unsigned long *src,
				 const unsigned long *dst, unsigned long start,
				 unsigned long end, void *private);
	void (*phase_done)(enum migrate_vma_phase phase, void *private);
	void *pgmap_owner;
	unsigned long flags;
};

int migrate_vma(const struct migrate_vma_ops *ops, struct vm_area_struct *vma,
		unsigned long start, unsigned long end, unsigned long *src,
		unsigned long *dst, void *private);
int migrate_vma_fault(const struct migrate_vma_ops *ops, struct vm_fault *vmf,
		      unsigned long start, unsigned long end, unsigned long *src,
		      unsigned long *dst, void *private);
int migrate_vma_evict(const struct migrate_vma_ops *ops, unsigned long *src,
		      unsigned long *dst, unsigned long npages, void *private);

#endif /* _LINUX_MIGRATE_VMA_H */
