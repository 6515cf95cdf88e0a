// SPDX-License-Identifier: GPL-2.0-only
/*
 * hmm_dummy device page table: an XArray from virtual page number to the
 * struct page the CPU has there, the pointer tagged with HMM_DUMMY_PT_*.
 *
 * Where the CPU maps 2 MiB with one PMD, the device maps the 2 MiB with
 * one entry too, the way a GPU's page table holds a 2 MiB page: a
 * multi-index entry ties the 512 indices to the head page, and it is
 * stored, found and dropped as one. An entry of one page stored inside a
 * 2 MiB one drops the 2 MiB first: the device faults the rest back in.
 * Without CONFIG_XARRAY_MULTI every entry is one page.
 *
 * Every change is made under the file's pt_lock, through one pass of an
 * xa_state under the XArray's own lock; only the exclusive-access code's
 * xa_reserve() and xa_release() of an empty slot run without pt_lock, so
 * a lookup takes the RCU read lock as xa_load() does. counters.mirrored
 * counts the pages mapped, not the entries.
 */
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/xarray.h>

#include "hmm_dummy.h"

/* The order of the device's entry for a CPU mapping of @cpu_order. */
static unsigned int pt_order(unsigned int cpu_order)
{
	if (IS_ENABLED(CONFIG_XARRAY_MULTI) && cpu_order >= PMD_ORDER)
		return PMD_ORDER;
	return 0;
}

/* Drop the entry @xas is at, whatever its order. */
static void pt_erase_locked(struct hmm_dummy_file *hfile, struct xa_state *xas)
{
	hfile->counters.mirrored -= 1UL << xas_get_order(xas);
	xas_store(xas, NULL);
}

/**
 * hmm_dummy_pt_clear() - drop the device page table entries of a range
 * @hfile: the file
 * @start: first address
 * @end: end of the range, past its last page
 *
 * A 2 MiB entry that the range covers only in part is dropped whole.
 *
 * Context: Process context, with pt_lock held.
 */
void hmm_dummy_pt_clear(struct hmm_dummy_file *hfile, unsigned long start, unsigned long end)
{
	XA_STATE(xas, &hfile->pt, start >> PAGE_SHIFT);
	void *entry;

	lockdep_assert_held(&hfile->pt_lock);
	xas_lock(&xas);
	/* The first entry found may be a 2 MiB one that starts before @start. */
	xas_for_each(&xas, entry, (end - 1) >> PAGE_SHIFT) {
		if (xas_retry(&xas, entry))
			continue;
		pt_erase_locked(hfile, &xas);
	}
	xas_unlock(&xas);
}

/* Does the device map @index with @entry already, at @order? */
static bool pt_has(struct hmm_dummy_file *hfile, unsigned long index, void *entry,
		   unsigned int order)
{
	XA_STATE(xas, &hfile->pt, index);
	bool same;

	rcu_read_lock();
	same = xas_load(&xas) == entry && xas_get_order(&xas) == order;
	rcu_read_unlock();
	return same;
}

/*
 * A 2 MiB store replaces whatever its range holds: clear that first, so
 * that counters.mirrored stays right. A read back of a device THP finds
 * the entry there already, 8 times per 2 MiB.
 */
static int pt_store_huge(struct hmm_dummy_file *hfile, unsigned long index, void *entry,
			 unsigned int order)
{
	XA_STATE_ORDER(xas, &hfile->pt, index, order);

	if (pt_has(hfile, index, entry, order))
		return 0;
	hmm_dummy_pt_clear(hfile, index << PAGE_SHIFT, (index + (1UL << order)) << PAGE_SHIFT);
	do {
		xas_lock(&xas);
		xas_store(&xas, entry);
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_ATOMIC));
	if (xas_error(&xas))
		return xas_error(&xas);
	hfile->counters.mirrored += 1UL << order;
	return 0;
}

/*
 * Store a one-page entry at @index, under the XArray's lock: one inside a
 * 2 MiB entry drops the 2 MiB entry first. False when a node could not be
 * allocated (@xas then says so).
 */
static bool pt_store_page_locked(struct hmm_dummy_file *hfile, struct xa_state *xas,
				 unsigned long index, void *entry)
{
	void *old;

	xas_set(xas, index);
	old = xas_load(xas);
	if (xa_is_zero(old))
		old = NULL;
	if (old && xas_get_order(xas)) {
		pt_erase_locked(hfile, xas);
		xas_set(xas, index);
		old = NULL;
	}
	xas_store(xas, entry);
	if (xas_error(xas))
		return false;
	if (!old)
		hfile->counters.mirrored++;
	return true;
}

static int pt_store_page(struct hmm_dummy_file *hfile, unsigned long index, void *entry)
{
	XA_STATE(xas, &hfile->pt, index);

	do {
		xas_lock(&xas);
		pt_store_page_locked(hfile, &xas, index, entry);
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_ATOMIC));
	return xas_error(&xas);
}

/**
 * hmm_dummy_pt_store() - map pages in the device page table
 * @hfile: the file
 * @addr: the virtual address of @page
 * @page: the page the CPU has at @addr
 * @tag: 0 or HMM_DUMMY_PT_*
 * @cpu_order: the order of the CPU's mapping of @page (a PMD: PMD_ORDER)
 *
 * For a CPU mapping of 2 MiB or more, maps the whole aligned 2 MiB around
 * @addr with one entry, else the one page.
 *
 * Context: Process context, with pt_lock held and the CPU mapping known
 * to be current (see hmm_mirror_read_retry()).
 * Return: the number of pages from @addr on that the store mapped, or
 * -ENOMEM.
 */
long hmm_dummy_pt_store(struct hmm_dummy_file *hfile, unsigned long addr,
			struct page *page, unsigned long tag, unsigned int cpu_order)
{
	unsigned int order = pt_order(cpu_order);
	unsigned long nr = 1UL << order;
	unsigned long index = addr >> PAGE_SHIFT;
	unsigned long offset = index & (nr - 1);
	void *entry = xa_tag_pointer(page - offset, tag);
	int ret;

	lockdep_assert_held(&hfile->pt_lock);
	/* Reclaim may invalidate, which takes pt_lock: the stores use GFP_ATOMIC. */
	if (order)
		ret = pt_store_huge(hfile, index - offset, entry, order);
	else
		ret = pt_store_page(hfile, index, entry);
	return ret ? ret : nr - offset;
}

/**
 * hmm_dummy_pt_store_run() - map the pages a mirror walk found mapped one by one
 * @hfile: the file
 * @addr: the virtual address of the first page
 * @pfns: the walk's entries from @addr on
 * @npages: the number of entries
 *
 * One pass under the XArray's lock stores one-page entries up to the
 * first entry with no page or one of a CPU mapping of more than a page,
 * which hmm_dummy_pt_store() is for.
 *
 * Context: Process context, with pt_lock held and the walk known to be
 * current (see hmm_mirror_read_retry()).
 * Return: the number of pages mapped, or -ENOMEM.
 */
long hmm_dummy_pt_store_run(struct hmm_dummy_file *hfile, unsigned long addr, const u64 *pfns,
			    unsigned long npages)
{
	unsigned long index = addr >> PAGE_SHIFT, done = 0;
	XA_STATE(xas, &hfile->pt, index);
	struct page *page;
	void *entry;

	lockdep_assert_held(&hfile->pt_lock);
	do {
		xas_lock(&xas);
		for (; done < npages; done++) {
			page = hmm_mirror_pfn_to_page(pfns[done]);
			if (!page || hmm_mirror_pfn_order(pfns[done]))
				break;
			entry = xa_tag_pointer(page, hmm_dummy_pt_tag(pfns[done]));
			if (!pt_store_page_locked(hfile, &xas, index + done, entry))
				break;
		}
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_ATOMIC));
	return xas_error(&xas) ?: done;
}

/**
 * hmm_dummy_pt_lookup() - the page the device page table maps at an address
 * @hfile: the file
 * @addr: the virtual address
 * @tag: set to the entry's HMM_DUMMY_PT_* tag
 * @nr: set to the number of pages the entry maps from @addr on: the
 *	pages that follow the one returned are the entry's next ones
 *
 * Context: Process context, with pt_lock held: the pages stay mapped as
 * long as it is.
 * Return: the page, or NULL when the device does not map @addr.
 */
struct page *hmm_dummy_pt_lookup(struct hmm_dummy_file *hfile, unsigned long addr,
				 unsigned long *tag, unsigned long *nr)
{
	unsigned long offset;
	unsigned long index = addr >> PAGE_SHIFT;
	XA_STATE(xas, &hfile->pt, index);
	struct page *page = NULL;
	void *entry;

	lockdep_assert_held(&hfile->pt_lock);
	rcu_read_lock();
	do {
		entry = xas_load(&xas);
		if (xa_is_zero(entry))
			entry = NULL;
	} while (xas_retry(&xas, entry));
	if (entry) {
		*tag = xa_pointer_tag(entry);
		*nr = 1UL << xas_get_order(&xas);
		offset = index & (*nr - 1);
		*nr -= offset;
		page = (struct page *)xa_untag_pointer(entry) + offset;
	}
	rcu_read_unlock();
	return page;
}
