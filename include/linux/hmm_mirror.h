/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HMM mirror: let a device keep its own page table of a process address
 * space, in step with the CPU page table.
 *
 * A driver registers a struct hmm_mirror on an mm. All mirrors of one mm
 * share one struct hmm, which hears every invalidation of that mm through
 * mmu_notifier and passes it on to each mirror's update() callback. The
 * driver fills its device page table from hmm_vma_get_pfns() (snapshot)
 * or hmm_vma_fault_pfns() (fault in first), under the protocol:
 *
 *	again:
 *		seq = hmm_mirror_read_begin(mirror);
 *		mmap_read_lock(mm);
 *		ret = hmm_vma_fault_pfns(&range, write);
 *		mmap_read_unlock(mm);
 *		if (ret)
 *			return ret;
 *		mutex_lock(&driver->pt_lock);
 *		if (hmm_mirror_read_retry(mirror, seq)) {
 *			mutex_unlock(&driver->pt_lock);
 *			goto again;
 *		}
 *		... write range.pfns into the device page table ...
 *		mutex_unlock(&driver->pt_lock);
 *
 * and its update() callback takes driver->pt_lock and clears the device
 * page table for the range. An entry the CPU invalidated after the walk
 * can then never be installed: either update() runs after the driver
 * unlocked and clears it, or it started before and the retry catches it.
 *
 * hmm_vma_fault_pfns_unlocked() takes the place of the three locked lines
 * for memory whose faults may have to drop the mmap lock (userfaultfd):
 * it takes and releases the lock itself, and the same retry check follows.
 *
 * A device that takes pages for exclusive (atomic) access with
 * make_device_exclusive() hears its own MMU_NOTIFY_EXCLUSIVE as an
 * update() with @HMM_UPDATE_EXCLUSIVE and its owner, and that update
 * moves the sequence count too: it must not be caught by a retry check
 * spanning the driver's own make_device_exclusive() call.
 *
 * A device write through a WRITE entry is invisible to the CPU page
 * table: the driver dirties the page (folio_mark_dirty()) while the entry
 * is valid, or reclaim may drop what the device wrote.
 */
#ifndef _LINUX_HMM_MIRROR_H
#define _LINUX_HMM_MIRROR_H

#include <linux/bits.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/types.h>

struct hmm;
struct hmm_mirror;
struct mm_struct;

/**
 * enum hmm_update_event - why the CPU page table is changing
 * @HMM_UPDATE_UNMAP: the range is unmapped (munmap, mremap)
 * @HMM_UPDATE_CLEAR: entries are cleared but the mapping stays (madvise,
 *	copy-on-write break, truncation, reclaim)
 * @HMM_UPDATE_PROTECT: permissions are reduced (mprotect, write protection
 *	for fork or soft-dirty tracking)
 * @HMM_UPDATE_MIGRATE: pages are being migrated
 * @HMM_UPDATE_RELEASE: the whole mm is being torn down
 * @HMM_UPDATE_EXCLUSIVE: a device takes exclusive access to pages
 */
enum hmm_update_event {
	HMM_UPDATE_UNMAP,
	HMM_UPDATE_CLEAR,
	HMM_UPDATE_PROTECT,
	HMM_UPDATE_MIGRATE,
	HMM_UPDATE_RELEASE,
	HMM_UPDATE_EXCLUSIVE,
};

/**
 * struct hmm_update - one invalidation, as passed to a mirror
 * @start: first address of the range, page aligned
 * @end: end of the range, exclusive, page aligned (ULONG_MAX for
 *	@HMM_UPDATE_RELEASE)
 * @event: what is happening to the range
 * @blockable: false when the callback must not sleep (the OOM reaper):
 *	it may then return -EAGAIN instead of waiting for a lock
 * @owner: for @HMM_UPDATE_MIGRATE, the pgmap owner that started the
 *	migration; for @HMM_UPDATE_EXCLUSIVE, the owner passed to
 *	make_device_exclusive(). A driver may leave the entries of its own
 *	migrations in place, but still takes the lock
 *	hmm_mirror_read_retry() is called under: the retry protocol relies
 *	on update() taking it after the sequence count moved
 */
struct hmm_update {
	unsigned long start;
	unsigned long end;
	enum hmm_update_event event;
	bool blockable;
	void *owner;
};

/**
 * struct hmm_mirror_ops - a driver's callbacks
 * @release: the mirror is done: the mm is exiting, or the driver called
 *	hmm_mirror_unregister(). Called exactly once per registration, may
 *	sleep, and must not call hmm_mirror_register() or
 *	hmm_mirror_unregister(). After it returns HMM never looks at the
 *	mirror again; the driver must drop every device page table entry
 *	of the mm.
 * @update: invalidate the device page table entries of a range. Called
 *	before the CPU page table changes, under the driver's contract of
 *	the file comment. Returns 0, or -EAGAIN only when
 *	&hmm_update.blockable is false and the driver would have to sleep.
 */
struct hmm_mirror_ops {
	void (*release)(struct hmm_mirror *mirror);
	int (*update)(struct hmm_mirror *mirror, const struct hmm_update *update);
};

/**
 * struct hmm_mirror - one device's mirror of one mm
 * @ops: the driver's callbacks, set before hmm_mirror_register()
 * @hmm: the mm's shared state, set by hmm_mirror_register()
 * @mm: the mirrored mm, set by hmm_mirror_register(); a reference is held
 *	on the struct (not on its address space) until unregistration
 * @link: entry in the mm's mirror list, owned by HMM
 * @released: true once @ops->release has been called, owned by HMM
 */
struct hmm_mirror {
	const struct hmm_mirror_ops *ops;
	struct hmm *hmm;
	struct mm_struct *mm;
	struct list_head link;
	bool released;
};

int hmm_mirror_register(struct hmm_mirror *mirror, struct mm_struct *mm);
void hmm_mirror_unregister(struct hmm_mirror *mirror);
unsigned long hmm_mirror_read_begin(struct hmm_mirror *mirror);
bool hmm_mirror_read_retry(struct hmm_mirror *mirror, unsigned long seq);

/*
 * One entry per page of a range: the pfn in the low bits, flags on top.
 * VALID: the page is present and the CPU may read it.
 * WRITE: the CPU may write it too.
 * ERROR: the page cannot be mirrored (no access, or an I/O mapping).
 * ZERO: the page is the shared zero page (or the huge zero page).
 * DEVICE_PRIVATE: a device-private page, which the CPU cannot access.
 * DEVICE_LOCAL: a device-private page owned by &hmm_mirror_range.dev_owner.
 * The order says the page is mapped by an entry of 2^order pages.
 */
#define HMM_MIRROR_PFN_VALID		BIT_ULL(63)
#define HMM_MIRROR_PFN_WRITE		BIT_ULL(62)
#define HMM_MIRROR_PFN_ERROR		BIT_ULL(61)
#define HMM_MIRROR_PFN_ZERO		BIT_ULL(60)
#define HMM_MIRROR_PFN_DEVICE_PRIVATE	BIT_ULL(59)
#define HMM_MIRROR_PFN_DEVICE_LOCAL	BIT_ULL(58)
#define HMM_MIRROR_PFN_ORDER_SHIFT	52
#define HMM_MIRROR_PFN_ORDER_MASK	0x3fULL
#define HMM_MIRROR_PFN_PFN_MASK		(BIT_ULL(HMM_MIRROR_PFN_ORDER_SHIFT) - 1)

/**
 * struct hmm_mirror_range - a range of a mirrored mm to snapshot or fault
 * @mirror: the mirror asking
 * @start: first address, page aligned
 * @end: end address, exclusive, page aligned
 * @pfns: array of (@end - @start) / PAGE_SIZE entries, filled in
 * @dev_owner: pgmap owner of the device's own device-private pages
 */
struct hmm_mirror_range {
	struct hmm_mirror *mirror;
	unsigned long start;
	unsigned long end;
	u64 *pfns;
	void *dev_owner;
};

int hmm_vma_get_pfns(struct hmm_mirror_range *range);
int hmm_vma_fault_pfns(struct hmm_mirror_range *range, bool write);
int hmm_vma_fault_pfns_unlocked(struct hmm_mirror_range *range, bool write);

/**
 * hmm_mirror_pfn_to_page() - the page of a range entry
 * @entry: an entry filled in by hmm_vma_get_pfns() or hmm_vma_fault_pfns()
 *
 * Context: Any context.
 * Return: the page, or NULL when the entry is not valid.
 */
static inline struct page *hmm_mirror_pfn_to_page(u64 entry)
{
	if (!(entry & HMM_MIRROR_PFN_VALID))
		return NULL;
	return pfn_to_page(entry & HMM_MIRROR_PFN_PFN_MASK);
}

/**
 * hmm_mirror_pfn_order() - the order of the CPU mapping of a range entry
 * @entry: an entry filled in by hmm_vma_get_pfns() or hmm_vma_fault_pfns()
 *
 * Context: Any context.
 * Return: 0 for a page table entry, PMD_ORDER for a huge PMD, and so on.
 */
static inline unsigned int hmm_mirror_pfn_order(u64 entry)
{
	return (entry >> HMM_MIRROR_PFN_ORDER_SHIFT) & HMM_MIRROR_PFN_ORDER_MASK;
}

#endif /* _LINUX_HMM_MIRROR_H */
