// SPDX-License-Identifier: GPL-2.0-only
/*
 * hmm_dummy exclusive access: the device takes process pages for atomic
 * operations, as a GPU does, with make_device_exclusive().
 *
 * The CPU page table then holds a device-exclusive entry for the page,
 * and the device page table the page itself, tagged
 * HMM_DUMMY_PT_EXCLUSIVE. The first CPU access puts the page back in the
 * CPU page table after an invalidation, which clears the device's entry:
 * exclusive access is over, and CHECK_EXCLUSIVE can tell.
 *
 * make_device_exclusive() returns the page locked, and the device's
 * entry must be installed before the page is unlocked and only if no
 * invalidation of the page came in between: unmapping does not wait for
 * the page lock. The mirror's sequence count cannot tell, since the
 * call's own invalidation moves it. Instead the file says which page it
 * is taking, and its update() marks the try stale when an invalidation
 * other than the file's own exclusive-access one covers that page.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/sched/signal.h>

#include "hmm_dummy.h"

/* Tries of one page that invalidations made stale, in a row. */
#define HMM_DUMMY_EXCLUSIVE_TRIES	16

/**
 * hmm_dummy_exclusive_update() - tell a page being taken of an update
 * @hfile: the file
 * @update: the update its mirror heard
 *
 * Context: Called by the mirror's update() with pt_lock held.
 */
void hmm_dummy_exclusive_update(struct hmm_dummy_file *hfile, const struct hmm_update *update)
{
	unsigned long addr = hfile->excl_addr;

	lockdep_assert_held(&hfile->pt_lock);
	if (!hfile->excl_taking || addr < update->start || addr >= update->end)
		return;
	/* Our own make_device_exclusive() must not make itself stale. */
	if (update->event == HMM_UPDATE_EXCLUSIVE && update->owner == hfile)
		return;
	hfile->excl_stale = true;
}

static void excl_track(struct hmm_dummy_file *hfile, unsigned long addr, bool taking)
{
	mutex_lock(&hfile->pt_lock);
	hfile->excl_addr = addr;
	hfile->excl_taking = taking;
	hfile->excl_stale = false;
	mutex_unlock(&hfile->pt_lock);
}

/*
 * Make the page at @addr present, writable and in RAM, as
 * make_device_exclusive() wants it, so that its own lookup has nothing
 * to fault: a fault there invalidates the page (a copy-on-write break, a
 * page of ours coming back, the device-exclusive entry of an earlier try
 * given back to the CPU) and makes the try stale. A PMD-mapped THP is
 * still split by the call, which makes its first try stale.
 */
static int exclusive_prefault(struct hmm_dummy_file *hfile, unsigned long addr)
{
	u64 pfn;
	struct hmm_mirror_range range = {
		.mirror = &hfile->mirror,
		.start = addr,
		.end = addr + PAGE_SIZE,
		.pfns = &pfn,
		/* No owner: a page in our device memory comes back to RAM. */
	};
	int ret;

	if (mmap_read_lock_killable(hfile->mirror.mm))
		return -EINTR;
	ret = hmm_vma_fault_pfns(&range, true);
	mmap_read_unlock(hfile->mirror.mm);
	return ret;
}

/*
 * Install the exclusive entry for @page at @addr unless the try went
 * stale. The mmap lock is still held, as is the page lock: fork() would
 * fail to give back an entry whose page lock it cannot take.
 */
static int exclusive_install(struct hmm_dummy_file *hfile, unsigned long addr,
			     struct page *page)
{
	long ret;

	mutex_lock(&hfile->pt_lock);
	if (hfile->excl_stale)
		ret = -EAGAIN;
	else
		ret = hmm_dummy_pt_store(hfile, addr, page, HMM_DUMMY_PT_EXCLUSIVE, 0);
	hfile->excl_taking = false;
	mutex_unlock(&hfile->pt_lock);
	return ret < 0 ? ret : 0;
}

/*
 * Take the page at @addr for exclusive access: 0 once the device page
 * table holds it, -EAGAIN when an invalidation made the try stale.
 */
static int exclusive_try(struct hmm_dummy_file *hfile, unsigned long addr)
{
	struct mm_struct *mm = hfile->mirror.mm;
	struct folio *folio;
	struct page *page;
	int ret;

	ret = exclusive_prefault(hfile, addr);
	if (ret)
		return ret;
	/* The store under the page lock then needs no allocation. */
	ret = xa_reserve(&hfile->pt, addr >> PAGE_SHIFT, GFP_KERNEL);
	if (ret)
		return ret;
	excl_track(hfile, addr, true);
	/*
	 * An invalidation of the page that started before it was tracked
	 * may still be changing the CPU page table: wait until every one in
	 * progress is over. A later one marks the try stale.
	 */
	hmm_mirror_read_begin(&hfile->mirror);

	if (mmap_read_lock_killable(mm)) {
		ret = -EINTR;
		goto out_untrack;
	}
	page = make_device_exclusive(mm, addr, hfile, &folio);
	if (IS_ERR(page)) {
		ret = PTR_ERR(page);
		mmap_read_unlock(mm);
		goto out_untrack;
	}
	ret = exclusive_install(hfile, addr, page);
	/* From here a CPU access can take the page back. */
	folio_unlock(folio);
	folio_put(folio);
	mmap_read_unlock(mm);
	goto out_release;

out_untrack:
	excl_track(hfile, 0, false);
out_release:
	/* Frees the slot unless an entry was stored in it. */
	xa_release(&hfile->pt, addr >> PAGE_SHIFT);
	return ret;
}

static int exclusive_page(struct hmm_dummy_file *hfile, unsigned long addr)
{
	unsigned int tries = 0;
	int ret;

	do {
		if (fatal_signal_pending(current))
			return -EINTR;
		ret = exclusive_try(hfile, addr);
	} while (ret == -EAGAIN && ++tries < HMM_DUMMY_EXCLUSIVE_TRIES);
	return ret == -EAGAIN ? -EBUSY : ret;
}

/*
 * EXCLUSIVE: take every page, then read them through the device page
 * table. A page the CPU took back meanwhile is read all the same. One
 * command of the file at a time: the file tracks one page being taken.
 */
static int cmd_exclusive(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd)
{
	unsigned long addr, end = cmd->addr + (cmd->npages << PAGE_SHIFT);
	int ret = 0;

	if (mutex_lock_killable(&hfile->exclusive_lock))
		return -EINTR;
	for (addr = cmd->addr; !ret && addr < end; addr += PAGE_SIZE)
		ret = exclusive_page(hfile, addr);
	mutex_unlock(&hfile->exclusive_lock);
	if (ret)
		return ret;
	return hmm_dummy_cmd_read(hfile, cmd);
}

/* CHECK_EXCLUSIVE: count the pages of the range the device still has. */
static int cmd_check_exclusive(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd)
{
	unsigned long first = cmd->addr >> PAGE_SHIFT;
	unsigned long index;
	void *entry;

	mutex_lock(&hfile->pt_lock);
	xa_for_each_range(&hfile->pt, index, entry, first, first + cmd->npages - 1) {
		if (xa_pointer_tag(entry) == HMM_DUMMY_PT_EXCLUSIVE)
			cmd->cpages++;
	}
	mutex_unlock(&hfile->pt_lock);
	return cmd->cpages ? -EPERM : 0;
}

/**
 * hmm_dummy_exclusive_ioctl() - the exclusive-access commands
 * @hfile: the file
 * @cmd: the ioctl number
 * @uarg: its user argument
 *
 * Context: Process context, may sleep.
 * Return: 0, a negative errno, or -ENOTTY for a command not handled here.
 */
long hmm_dummy_exclusive_ioctl(struct hmm_dummy_file *hfile, unsigned int cmd,
			       void __user *uarg)
{
	struct hmm_dummy_cmd dcmd;
	int ret;

	if (cmd != HMM_DUMMY_EXCLUSIVE && cmd != HMM_DUMMY_CHECK_EXCLUSIVE)
		return -ENOTTY;
	ret = hmm_dummy_cmd_get(hfile, uarg, &dcmd);
	if (ret)
		return ret;
	if (cmd == HMM_DUMMY_EXCLUSIVE)
		ret = cmd_exclusive(hfile, &dcmd);
	else
		ret = cmd_check_exclusive(hfile, &dcmd);
	return hmm_dummy_cmd_put(uarg, &dcmd, ret);
}
