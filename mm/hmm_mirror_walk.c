// SPDX-License-Identifier: GPL-2.0
/*
 * HMM mirror range walk: read the CPU page table of a mirrored mm and
 * report one entry per page, faulting pages in first when asked.
 *
 * The walk itself never sleeps on a page: when a page must be faulted in
 * it goes on to the end of the run of ptes that need a fault, in the same
 * page table, then stops, faults the run in with handle_mm_fault(), one
 * page after the other, and walks again from its start: one walk per
 * run, not per page. What the walk reports may be stale the moment the
 * page table lock is dropped; the mirror's sequence count is what tells
 * the driver, see include/linux/hmm_mirror.h.
 *
 * Page tables are walked by the generic walker, which may split a huge
 * PMD that appears between our look at the PMD and its own (a file THP
 * mapped by a racing fault): a rare split, harmless to the result.
 */
#include <linux/hmm_mirror.h>
#include <linux/hugetlb.h>
#include <linux/leafops.h>
#include <linux/memremap.h>
#include <linux/oom.h>
#include <linux/pagewalk.h>
#include <linux/sched/signal.h>

#include "internal.h"

/* Consecutive faults at one address before giving up on a racing mm. */
#define HMM_WALK_MAX_REFAULTS	16

/**
 * struct hmm_walk - the state of one walk
 * @range: the range being filled
 * @fault: fault in pages that are missing, rather than report them
 * @write: with @fault, also fault in write access
 * @fault_addr: the first page of the run that must be faulted in
 * @fault_end: the end of that run; 0 while there is none
 */
struct hmm_walk {
	struct hmm_mirror_range *range;
	bool fault;
	bool write;
	unsigned long fault_addr;
	unsigned long fault_end;
};

static u64 *hmm_walk_entry(struct hmm_walk *hw, unsigned long addr)
{
	return &hw->range->pfns[(addr - hw->range->start) >> PAGE_SHIFT];
}

static void hmm_walk_fill(struct hmm_walk *hw, unsigned long addr,
			  unsigned long end, u64 value)
{
	for (; addr < end; addr += PAGE_SIZE)
		*hmm_walk_entry(hw, addr) = value;
}

/*
 * Stop the walk so that the page at @addr gets faulted in: at a huge
 * entry or a missing page table, the first fault maps more than a page.
 * A run already pending is faulted in first.
 */
static int hmm_walk_need_fault(struct hmm_walk *hw, unsigned long addr)
{
	if (!hw->fault_end) {
		hw->fault_addr = addr;
		hw->fault_end = addr + PAGE_SIZE;
	}
	return -EBUSY;
}

/*
 * The pte at @addr needs a fault: start a run, or make the run one page
 * longer when @addr follows it in the same page table, and walk on.
 */
static int hmm_walk_need_fault_pte(struct hmm_walk *hw, unsigned long addr)
{
	if (!hw->fault_end) {
		hw->fault_addr = addr;
		hw->fault_end = addr + PAGE_SIZE;
		return 0;
	}
	if (addr != hw->fault_end || !(addr & ~PMD_MASK))
		return -EBUSY;
	hw->fault_end += PAGE_SIZE;
	return 0;
}

/* A run of faults ends with its page table: stop before the next one. */
static bool hmm_walk_run_pending(struct hmm_walk *hw)
{
	return hw->fault_end;
}

/*
 * A page that can never be faulted in ends the faulting walk with -EFAULT,
 * but a run pending before it is faulted in first, as the CPU would have
 * touched those pages: the walk then stops here again.
 */
static int hmm_walk_cannot_fault(struct hmm_walk *hw)
{
	return hmm_walk_run_pending(hw) ? -EBUSY : -EFAULT;
}

/*
 * No page at [addr, end): with a VMA it is a hole that a fault fills, or
 * reports as not present; without one, nothing can ever be there.
 */
static int hmm_walk_hole(unsigned long addr, unsigned long end, int depth,
			 struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;

	if (!walk->vma) {
		if (hw->fault)
			return hmm_walk_cannot_fault(hw);
		hmm_walk_fill(hw, addr, end, HMM_MIRROR_PFN_ERROR);
		return 0;
	}
	if (hw->fault)
		return hmm_walk_need_fault(hw, addr);
	hmm_walk_fill(hw, addr, end, 0);
	return 0;
}

/* Mappings that cannot be mirrored, or not with the access asked for. */
static int hmm_walk_test(unsigned long start, unsigned long end, struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	struct vm_area_struct *vma = walk->vma;

	if (hmm_walk_run_pending(hw))
		return -EBUSY;
	if (!(vma->vm_flags & (VM_IO | VM_PFNMAP)) && (vma->vm_flags & VM_READ)) {
		if (hw->fault && hw->write && !(vma->vm_flags & VM_WRITE))
			return -EPERM;
		return 0;
	}
	if (hw->fault)
		return -EFAULT;
	hmm_walk_fill(hw, start, end, HMM_MIRROR_PFN_ERROR);
	return 1;	/* skip this VMA */
}

static u64 hmm_walk_present(unsigned long pfn, bool writable, unsigned int order)
{
	u64 entry = pfn | HMM_MIRROR_PFN_VALID |
		    ((u64)order << HMM_MIRROR_PFN_ORDER_SHIFT);

	if (is_zero_pfn(pfn))
		return entry | HMM_MIRROR_PFN_ZERO;
	return writable ? entry | HMM_MIRROR_PFN_WRITE : entry;
}

/* Report the pages of a huge mapping of @pfn, from @addr to @end. */
static void hmm_walk_fill_huge(struct hmm_walk *hw, unsigned long addr, unsigned long end,
			       unsigned long pfn, bool writable, unsigned int order, bool zero)
{
	u64 flags = zero ? HMM_MIRROR_PFN_ZERO : 0;

	for (; addr < end; addr += PAGE_SIZE, pfn++)
		*hmm_walk_entry(hw, addr) = hmm_walk_present(pfn, writable, order) | flags;
}

/* A huge PMD: report its pages in one go, under the PMD lock. */
static int hmm_walk_huge_pmd(struct hmm_walk *hw, pmd_t *pmdp, unsigned long addr,
			     unsigned long end, struct mm_walk *walk)
{
	unsigned long pfn;
	spinlock_t *ptl;	/* the PMD lock, held while reading it */
	pmd_t pmd;
	int ret = 0;

	/* Check again under the lock: the PMD may have been split. */
	ptl = pmd_lock(walk->mm, pmdp);
	pmd = pmdp_get(pmdp);
	if (!pmd_trans_huge(pmd)) {
		spin_unlock(ptl);
		walk->action = ACTION_AGAIN;
		return 0;
	}
	/* Waits for a fault, as a PROT_NONE pte does (hmm_walk_pte()). */
	if (pmd_protnone(pmd)) {
		spin_unlock(ptl);
		walk->action = ACTION_CONTINUE;
		return hmm_walk_hole(addr, end, 0, walk);
	}
	if (hw->fault && hw->write && !pmd_write(pmd)) {
		ret = hmm_walk_need_fault(hw, addr);
	} else {
		pfn = pmd_pfn(pmd) + ((addr & ~PMD_MASK) >> PAGE_SHIFT);
		hmm_walk_fill_huge(hw, addr, end, pfn, pmd_write(pmd), PMD_ORDER,
				   is_huge_zero_pmd(pmd));
	}
	spin_unlock(ptl);
	walk->action = ACTION_CONTINUE;
	return ret;
}

/*
 * A huge PUD (device DAX): report it as it is. Left to the generic walk
 * it would be split, which for DAX means unmapped.
 */
static int hmm_walk_pud(pud_t *pudp, unsigned long addr, unsigned long end,
			struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	unsigned long pfn;
	spinlock_t *ptl;	/* the PUD lock, held while reading it */
	pud_t pud;
	int ret = 0;

	if (hmm_walk_run_pending(hw))
		return -EBUSY;
	if (!pud_leaf(pudp_get(pudp)))
		return 0;	/* a PMD table, or nothing: walk on */

	ptl = pud_lock(walk->mm, pudp);
	pud = pudp_get(pudp);
	if (!pud_leaf(pud) || !pud_present(pud)) {
		spin_unlock(ptl);
		walk->action = ACTION_AGAIN;
		return 0;
	}
	if (hw->fault && hw->write && !pud_write(pud)) {
		ret = hmm_walk_need_fault(hw, addr);
	} else {
		pfn = pud_pfn(pud) + ((addr & ~PUD_MASK) >> PAGE_SHIFT);
		hmm_walk_fill_huge(hw, addr, end, pfn, pud_write(pud), PUD_ORDER, false);
	}
	spin_unlock(ptl);
	walk->action = ACTION_CONTINUE;
	return ret;
}

/*
 * A device-private page mapped at [addr, end), by a pte (order 0) or by a
 * PMD (a device-private THP). A device's own pages need no fault unless
 * written while read-only; another device's pages are reported as they
 * are, or faulted back to RAM when the walk faults.
 */
static int hmm_walk_device_private(struct hmm_walk *hw, unsigned long addr,
				   unsigned long end, softleaf_t entry, unsigned int order)
{
	struct page *page = softleaf_to_page(entry);
	unsigned long pfn;
	u64 value = 0;

	if (softleaf_is_device_private_write(entry))
		value |= HMM_MIRROR_PFN_WRITE;
	if (page_pgmap(page)->owner == hw->range->dev_owner &&
	    !(hw->fault && hw->write && !(value & HMM_MIRROR_PFN_WRITE)))
		value |= HMM_MIRROR_PFN_VALID | HMM_MIRROR_PFN_DEVICE_LOCAL;
	else if (hw->fault)
		/*
		 * Another device's page, or a read-only one of ours to write
		 * (shared after fork): the fault brings it back to RAM, where
		 * the write breaks COW.
		 */
		return order ? hmm_walk_need_fault(hw, addr) : hmm_walk_need_fault_pte(hw, addr);
	value |= HMM_MIRROR_PFN_DEVICE_PRIVATE;
	if (order)
		value |= (u64)order << HMM_MIRROR_PFN_ORDER_SHIFT;
	/* @entry maps the page of @addr's PMD-aligned start, if huge. */
	pfn = page_to_pfn(page) + ((addr & ((PAGE_SIZE << order) - 1)) >> PAGE_SHIFT);
	for (; addr < end; addr += PAGE_SIZE, pfn++)
		*hmm_walk_entry(hw, addr) = value | pfn;
	return 0;
}

/* A device-private THP: read its PMD again under the lock. */
static int hmm_walk_device_private_pmd(struct hmm_walk *hw, pmd_t *pmdp, unsigned long addr,
				       unsigned long end, struct mm_walk *walk)
{
	spinlock_t *ptl;	/* the PMD lock, held while reading it */
	pmd_t pmd;
	int ret;

	ptl = pmd_lock(walk->mm, pmdp);
	pmd = pmdp_get(pmdp);
	if (!pmd_is_device_private_entry(pmd)) {
		spin_unlock(ptl);
		walk->action = ACTION_AGAIN;
		return 0;
	}
	ret = hmm_walk_device_private(hw, addr, end, softleaf_from_pmd(pmd), PMD_ORDER);
	spin_unlock(ptl);
	walk->action = ACTION_CONTINUE;
	return ret;
}

static int hmm_walk_pmd(pmd_t *pmdp, unsigned long addr, unsigned long end,
			struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	pmd_t pmd = pmdp_get_lockless(pmdp);

	if (hmm_walk_run_pending(hw))
		return -EBUSY;
	if (pmd_trans_huge(pmd))
		return hmm_walk_huge_pmd(hw, pmdp, addr, end, walk);
	if (pmd_is_device_private_entry(pmd))
		return hmm_walk_device_private_pmd(hw, pmdp, addr, end, walk);
	if (!pmd_present(pmd)) {
		/* A THP under migration: a fault waits for it to finish. */
		walk->action = ACTION_CONTINUE;
		return hmm_walk_hole(addr, end, 0, walk);
	}
	return 0;	/* a page table: walk its entries */
}

/* A swap entry: only device-private pages are reported as they are. */
static int hmm_walk_swap(struct hmm_walk *hw, pte_t pte, unsigned long addr)
{
	softleaf_t entry = softleaf_from_pte(pte);

	if (softleaf_is_device_private(entry))
		return hmm_walk_device_private(hw, addr, addr + PAGE_SIZE, entry, 0);
	if (hw->fault)
		return hmm_walk_need_fault_pte(hw, addr);
	*hmm_walk_entry(hw, addr) = 0;
	return 0;
}

static int hmm_walk_one_pte(struct hmm_walk *hw, pte_t pte, unsigned long addr)
{
	/*
	 * A PROT_NONE pte in an accessible VMA waits for a fault: NUMA
	 * hinting, or userfaultfd's read-write protection. A device access
	 * is an access: report the page missing, or fault it in.
	 */
	if (pte_none(pte) || pte_protnone(pte)) {
		if (hw->fault)
			return hmm_walk_need_fault_pte(hw, addr);
		*hmm_walk_entry(hw, addr) = 0;
		return 0;
	}
	if (!pte_present(pte))
		return hmm_walk_swap(hw, pte, addr);
	if (hw->fault && hw->write && !pte_write(pte))
		return hmm_walk_need_fault_pte(hw, addr);
	/* A special pte with no struct page behind it cannot be mirrored. */
	if (pte_special(pte) && !is_zero_pfn(pte_pfn(pte))) {
		if (hw->fault)
			return hmm_walk_cannot_fault(hw);
		*hmm_walk_entry(hw, addr) = HMM_MIRROR_PFN_ERROR;
		return 0;
	}
	*hmm_walk_entry(hw, addr) = hmm_walk_present(pte_pfn(pte), pte_write(pte), 0);
	return 0;
}

static int hmm_walk_pte(pte_t *ptep, unsigned long addr, unsigned long next,
			struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	int ret = hmm_walk_one_pte(hw, ptep_get(ptep), addr);

	/* A run of faults ends at the first page that needs none. */
	if (!ret && hmm_walk_run_pending(hw) && hw->fault_end <= addr)
		return -EBUSY;
	return ret;
}

#ifdef CONFIG_HUGETLB_PAGE
static int hmm_walk_hugetlb(pte_t *ptep, unsigned long hmask, unsigned long addr,
			    unsigned long end, struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	struct hstate *h = hstate_vma(walk->vma);
	unsigned long pfn;
	spinlock_t *ptl;	/* the huge page table lock */
	pte_t pte;

	ptl = huge_pte_lock(h, walk->mm, ptep);
	pte = huge_ptep_get(walk->mm, addr, ptep);
	if (!pte_present(pte) || (hw->fault && hw->write && !huge_pte_write(pte))) {
		spin_unlock(ptl);
		return hmm_walk_hole(addr, end, 0, walk);
	}
	pfn = pte_pfn(pte) + ((addr & ~hmask) >> PAGE_SHIFT);
	hmm_walk_fill_huge(hw, addr, end, pfn, huge_pte_write(pte), huge_page_order(h), false);
	spin_unlock(ptl);
	return 0;
}
#else /* CONFIG_HUGETLB_PAGE */
/* Without hugetlb no VMA is hugetlb, and the walker never asks. */
#define hmm_walk_hugetlb NULL
#endif /* CONFIG_HUGETLB_PAGE */

static const struct mm_walk_ops hmm_walk_ops = {
	.test_walk = hmm_walk_test,
	.pte_hole = hmm_walk_hole,
	.pud_entry = hmm_walk_pud,
	.pmd_entry = hmm_walk_pmd,
	.pte_entry = hmm_walk_pte,
	.hugetlb_entry = hmm_walk_hugetlb,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * Fault in one page the way a CPU access of that kind would, with the
 * caller's @extra fault flags. With FAULT_FLAG_ALLOW_RETRY the fault may
 * drop the mmap lock to wait (for a userfaultfd handler, a page lock,
 * I/O): -EAGAIN then says the lock is gone.
 */
static int hmm_walk_fault(struct mm_struct *mm, unsigned long addr, bool write,
			  unsigned int extra)
{
	unsigned int flags = FAULT_FLAG_REMOTE | (write ? FAULT_FLAG_WRITE : 0) | extra;
	struct vm_area_struct *vma = vma_lookup(mm, addr);
	vm_fault_t ret;

	if (!vma)
		return -EFAULT;
	ret = handle_mm_fault(vma, addr, flags, NULL);
	if (ret & (VM_FAULT_RETRY | VM_FAULT_COMPLETED))
		return -EAGAIN;
	if (ret & VM_FAULT_OOM)
		return -ENOMEM;
	if (ret & VM_FAULT_ERROR)
		return -EFAULT;
	return 0;
}

/**
 * struct hmm_walk_cursor - where a walk stands, kept across faults that
 *	drop the mmap lock
 * @addr: where the walk goes on
 * @last: the address of the last fault
 * @refaults: faults in a row at @last
 * @fault_flags: added to each fault; FAULT_FLAG_TRIED only to the next
 */
struct hmm_walk_cursor {
	unsigned long addr;
	unsigned long last;
	unsigned int refaults;
	unsigned int fault_flags;
};

/* Fault in the run of pages the walk stopped at; @cur goes on at its start. */
static int hmm_walk_fault_run(struct mm_struct *mm, const struct hmm_walk *hw,
			      struct hmm_walk_cursor *cur)
{
	unsigned long addr;
	int ret;

	cur->addr = hw->fault_addr;
	for (addr = hw->fault_addr; addr < hw->fault_end; addr += PAGE_SIZE) {
		if (fatal_signal_pending(current))
			return -EINTR;
		ret = hmm_walk_fault(mm, addr, hw->write, cur->fault_flags);
		if (ret)
			return ret;
		cur->fault_flags &= ~FAULT_FLAG_TRIED;
	}
	return 0;
}

/*
 * Walk [cur->addr, range->end), faulting where asked. Returns -EAGAIN
 * with the mmap lock dropped, and @cur telling where to go on, when a
 * fault allowed to retry gave the lock up.
 */
static int hmm_walk_range(struct hmm_mirror_range *range, struct hmm_walk_cursor *cur,
			  bool fault, bool write)
{
	struct hmm_mirror *mirror = range->mirror;
	struct hmm_walk hw = {
		.range = range,
		.fault = fault,
		.write = write,
	};
	int ret;

	mmap_assert_locked(mirror->mm);
	for (;;) {
		hw.fault_end = 0;
		ret = walk_page_range(mirror->mm, cur->addr, range->end, &hmm_walk_ops, &hw);
		/* A run of faults may reach the end of the range. */
		if (!ret && hmm_walk_run_pending(&hw))
			ret = -EBUSY;
		if (ret != -EBUSY)
			return ret;
		/* The walk stopped after a run from hw.fault_addr: fault it in, walk on. */
		cur->refaults = hw.fault_addr == cur->last ? cur->refaults + 1 : 0;
		if (cur->refaults > HMM_WALK_MAX_REFAULTS)
			return -EBUSY;
		cur->last = hw.fault_addr;
		ret = hmm_walk_fault_run(mirror->mm, &hw, cur);
		if (ret)
			return ret;
	}
}

static int hmm_range_check(struct hmm_mirror_range *range)
{
	struct hmm_mirror *mirror = range->mirror;

	if (!mirror || !mirror->mm)
		return -EINVAL;
	if (!PAGE_ALIGNED(range->start) || !PAGE_ALIGNED(range->end) ||
	    range->start >= range->end)
		return -EINVAL;
	/* Nothing of the process lives above its task size. */
	if (range->end > mirror->mm->task_size)
		return -EFAULT;
	return 0;
}

static int hmm_walk_locked(struct hmm_mirror_range *range, bool fault, bool write)
{
	struct hmm_walk_cursor cur = { .addr = range->start };
	int ret;

	ret = hmm_range_check(range);
	if (ret)
		return ret;
	return hmm_walk_range(range, &cur, fault, write);
}

/**
 * hmm_vma_get_pfns() - snapshot a range of a mirrored mm
 * @range: the range, with @range->pfns to fill
 *
 * Reports each page as the CPU page table has it, faulting nothing in: 0
 * for a page that is not present, HMM_MIRROR_PFN_ERROR where nothing can
 * be mirrored (no VMA, no read access, I/O mappings).
 *
 * Context: Process context. The caller holds the mmap_lock of the
 * mirrored mm (for read) and a sequence count from
 * hmm_mirror_read_begin().
 * Return: 0; -EINVAL for a badly aligned or empty range; -EFAULT for a
 * range beyond the mm's task size.
 */
int hmm_vma_get_pfns(struct hmm_mirror_range *range)
{
	return hmm_walk_locked(range, false, false);
}
EXPORT_SYMBOL_GPL(hmm_vma_get_pfns);

/**
 * hmm_vma_fault_pfns() - fault in a range of a mirrored mm and report it
 * @range: the range, with @range->pfns to fill
 * @write: fault in write access too, breaking copy-on-write
 *
 * Faults in every page of the range the way a CPU access would, and
 * reports them all valid. Device-private pages of another owner are
 * brought back to RAM; those of @range->dev_owner are reported as they
 * are.
 *
 * Context: Process context, may sleep. The caller holds the mmap_lock of
 * the mirrored mm (for read) and a sequence count from
 * hmm_mirror_read_begin().
 * Return: 0; -EFAULT when part of the range has no VMA, no read access,
 * or is an I/O mapping, or the fault failed; -EPERM for write access to a
 * read-only mapping; -ENOMEM; -EINTR on a fatal signal; -EBUSY when the
 * page table kept changing under the walk; -EINVAL for a bad range.
 */
int hmm_vma_fault_pfns(struct hmm_mirror_range *range, bool write)
{
	return hmm_walk_locked(range, true, write);
}
EXPORT_SYMBOL_GPL(hmm_vma_fault_pfns);

/**
 * hmm_vma_fault_pfns_unlocked() - fault in a range, letting faults drop
 *	the mmap lock
 * @range: the range, with @range->pfns to fill
 * @write: fault in write access too, breaking copy-on-write
 *
 * Does what hmm_vma_fault_pfns() does, but takes the mmap lock itself
 * and lets a fault give it up to wait: for a userfaultfd handler thread
 * to provide the page, for a page lock, for I/O. The walk then takes the
 * lock again and goes on from the start of the run of faults it stopped
 * in. Entries filled before the lock was dropped may be stale by the
 * end: the sequence count from
 * hmm_mirror_read_begin() covers the whole call, so the driver's
 * hmm_mirror_read_retry() check catches them, and the driver retries the
 * whole range as it does after any invalidation. A memory range whose
 * faults must wait in user space (userfaultfd) can only be mirrored this
 * way: hmm_vma_fault_pfns() faults without retry, and the fault fails.
 *
 * Context: Process context, may sleep. The caller must not hold the
 * mmap_lock of the mirrored mm, keeps the mm's address space alive
 * (current->mm, or mmget()), and holds a sequence count from
 * hmm_mirror_read_begin(). Returns with the mmap_lock not held.
 * Return: what hmm_vma_fault_pfns() returns; -EFAULT also when the mm
 * is being torn down (the OOM reaper emptied it); -EINTR when a signal
 * arrived while a fault waited: the range is then only partly filled,
 * and the caller returns to user space to let the signal be handled
 * (with -ERESTARTSYS if a restart is harmless), as it does when the mmap
 * lock could not be taken for a fatal signal.
 */
int hmm_vma_fault_pfns_unlocked(struct hmm_mirror_range *range, bool write)
{
	struct hmm_walk_cursor cur = {
		.addr = range->start,
		.fault_flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE |
			       FAULT_FLAG_INTERRUPTIBLE,
	};
	struct mm_struct *mm;
	int ret;

	ret = hmm_range_check(range);
	if (ret)
		return ret;
	mm = range->mirror->mm;
	for (;;) {
		if (mmap_read_lock_killable(mm))
			return -EINTR;
		/* The OOM reaper may have emptied the mm while it was unlocked. */
		if (check_stable_address_space(mm)) {
			ret = -EFAULT;
			break;
		}
		ret = hmm_walk_range(range, &cur, true, write);
		if (ret != -EAGAIN)
			break;
		/*
		 * The fault is tried again, as the CPU's would be: it then
		 * waits for a page lock rather than drop the mmap lock again.
		 */
		cur.fault_flags |= FAULT_FLAG_TRIED;
		/* The fault dropped the lock: a signal may be why it woke up. */
		if (signal_pending(current))
			return -EINTR;
	}
	mmap_read_unlock(mm);
	return ret;
}
EXPORT_SYMBOL_GPL(hmm_vma_fault_pfns_unlocked);
