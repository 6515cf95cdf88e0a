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
 * invalidation came in between: unmapping does not wait for the page
 * lock. The mirror's sequence count cannot tell, since the call's own
 * invalidation moves it; the file's pt_gen, which update() moves for all
 * but the file's own exclusive-access invalidations, can.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/sched/signal.h>

#include "hmm_dummy.h"

/* Tries of one page that invalidations made stale, in a row. */
#define HMM_DUMMY_EXCLUSIVE_TRIES	16

static unsigned long pt_gen_read(struct hmm_dummy_file *hfile)
{
	unsigned long gen;

	mutex_lock(&hfile->pt_lock);
	gen = hfile->pt_gen;
	mutex_unlock(&hfile->pt_lock);
	return gen;
}

/*
 * Make the page at @addr present, writable and in RAM, as
 * make_device_exclusive() wants it: then its own lookup has nothing to
 * fault, and every invalidation it meets is its own or a racing one.
 * Faulting there would invalidate too (a copy-on-write break, a page of
 * ours coming back, the device-exclusive entry of an earlier try given
 * back to the CPU), and the try would always be stale.
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
 * Take the page at @addr for exclusive access: 0 once the device page
 * table holds it, -EAGAIN when an invalidation made the try stale.
 */
static int exclusive_try(struct hmm_dummy_file *hfile, unsigned long addr)
{
	struct mm_struct *mm = hfile->mirror.mm;
	struct folio *folio;
	struct page *page;
	unsigned long gen;
	int ret;

	ret = exclusive_prefault(hfile, addr);
	if (ret)
		return ret;
	gen = pt_gen_read(hfile);
	/*
	 * An invalidation that moved pt_gen before it was read may still be
	 * changing the CPU page table: wait until every one in progress is
	 * over. A later one moves pt_gen again.
	 */
	hmm_mirror_read_begin(&hfile->mirror);

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	page = make_device_exclusive(mm, addr, hfile, &folio);
	mmap_read_unlock(mm);
	if (IS_ERR(page))
		return PTR_ERR(page);

	mutex_lock(&hfile->pt_lock);
	if (hfile->pt_gen == gen)
		ret = hmm_dummy_pt_store(hfile, addr, page, HMM_DUMMY_PT_EXCLUSIVE);
	else
		ret = -EAGAIN;
	mutex_unlock(&hfile->pt_lock);
	/* From here a CPU access can take the page back. */
	folio_unlock(folio);
	folio_put(folio);
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
 * table. A page the CPU took back meanwhile is read all the same.
 */
static int cmd_exclusive(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd)
{
	unsigned long addr, end = cmd->addr + (cmd->npages << PAGE_SHIFT);
	int ret;

	for (addr = cmd->addr; addr < end; addr += PAGE_SIZE) {
		ret = exclusive_page(hfile, addr);
		if (ret)
			return ret;
	}
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
