// SPDX-License-Identifier: GPL-2.0-only
/*
 * hmm_dummy mirror: each open file mirrors the address space of the
 * process that opened it, through a device page table of its own.
 *
 * The device page table (hmm_dummy_pt.c) maps a virtual page number to
 * the struct page the CPU has there, tagged when the device may write it,
 * with one entry for 2 MiB where the CPU maps 2 MiB. It holds no page
 * reference: the mirror's update() callback clears entries before the CPU
 * page table changes, and it takes pt_lock to do so, so a page cannot go
 * away while the device copies from it under pt_lock.
 */
#include <linux/highmem.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hmm_dummy.h"

/* Walks thrown back by a CPU page table that keeps changing, in a row. */
#define HMM_DUMMY_MAX_BUSY	8

/*
 * A device fault gives up once invalidations made HMM_DUMMY_MIN_STALE
 * walks stale and HMM_DUMMY_STALE_TIMEOUT_MS passed since the first. The
 * sequence count covers the whole mm, so a thread that keeps changing an
 * unrelated part of it could otherwise hold a fault off for ever; both
 * bounds keep one slow walk on a slow machine from failing a fault.
 */
#define HMM_DUMMY_MIN_STALE		8
#define HMM_DUMMY_STALE_TIMEOUT_MS	1000

/* How a device fault reaches the CPU page table. */
enum hmm_dummy_walk {
	HMM_DUMMY_WALK_SNAPSHOT,	/* no fault; the caller holds the mmap lock */
	HMM_DUMMY_WALK_FAULT,		/* fault, the mmap lock taken around the walk */
	HMM_DUMMY_WALK_FAULT_UNLOCKED,	/* fault, and faults may drop the mmap lock */
};

static struct hmm_dummy_file *mirror_to_file(struct hmm_mirror *mirror)
{
	return container_of(mirror, struct hmm_dummy_file, mirror);
}

static unsigned int event_counter_index(enum hmm_update_event event)
{
	switch (event) {
	case HMM_UPDATE_UNMAP:
		return HMM_DUMMY_EVENT_UNMAP;
	case HMM_UPDATE_CLEAR:
		return HMM_DUMMY_EVENT_CLEAR;
	case HMM_UPDATE_PROTECT:
		return HMM_DUMMY_EVENT_PROTECT;
	case HMM_UPDATE_MIGRATE:
		return HMM_DUMMY_EVENT_MIGRATE;
	case HMM_UPDATE_RELEASE:
		return HMM_DUMMY_EVENT_RELEASE;
	case HMM_UPDATE_EXCLUSIVE:
		return HMM_DUMMY_EVENT_EXCLUSIVE;
	default:
		return HMM_DUMMY_EVENT_OTHER;
	}
}

static int hmm_dummy_update(struct hmm_mirror *mirror, const struct hmm_update *update)
{
	struct hmm_dummy_file *hfile = mirror_to_file(mirror);

	if (update->blockable)
		mutex_lock(&hfile->pt_lock);
	else if (!mutex_trylock(&hfile->pt_lock))
		return -EAGAIN;
	hfile->counters.invalidations[event_counter_index(update->event)]++;
	hmm_dummy_exclusive_update(hfile, update);
	hmm_dummy_pt_clear(hfile, update->start, update->end);
	mutex_unlock(&hfile->pt_lock);
	return 0;
}

static void hmm_dummy_release(struct hmm_mirror *mirror)
{
	struct hmm_dummy_file *hfile = mirror_to_file(mirror);

	mutex_lock(&hfile->pt_lock);
	hmm_dummy_pt_clear(hfile, 0, ULONG_MAX & PAGE_MASK);
	hfile->counters.released = 1;
	mutex_unlock(&hfile->pt_lock);
	atomic_long_inc(&hfile->hdev->releases);
}

static const struct hmm_mirror_ops hmm_dummy_mirror_ops = {
	.release = hmm_dummy_release,
	.update = hmm_dummy_update,
};

/**
 * hmm_dummy_file_open() - make the mirror of an open file
 * @hdev: the device opened
 *
 * Context: Process context, may sleep; mirrors current->mm.
 * Return: the new file state, or an ERR_PTR().
 */
struct hmm_dummy_file *hmm_dummy_file_open(struct hmm_dummy_device *hdev)
{
	struct hmm_dummy_file *hfile;
	int ret;

	if (!current->mm)
		return ERR_PTR(-EINVAL);
	hfile = kzalloc_obj(*hfile);
	if (!hfile)
		return ERR_PTR(-ENOMEM);
	hfile->hdev = hdev;
	mutex_init(&hfile->pt_lock);
	mutex_init(&hfile->exclusive_lock);
	xa_init(&hfile->pt);
	hfile->mirror.ops = &hmm_dummy_mirror_ops;

	ret = hmm_mirror_register(&hfile->mirror, current->mm);
	if (ret) {
		kfree(hfile);
		return ERR_PTR(ret);
	}
	atomic_long_inc(&hdev->mirrors);
	return hfile;
}

/**
 * hmm_dummy_file_close() - undo hmm_dummy_file_open()
 * @hfile: the file state
 *
 * Context: Process context, may sleep.
 */
void hmm_dummy_file_close(struct hmm_dummy_file *hfile)
{
	hmm_dummy_inject_clear(hfile);
	hmm_mirror_unregister(&hfile->mirror);
	atomic_long_dec(&hfile->hdev->mirrors);
	xa_destroy(&hfile->pt);
	kfree(hfile);
}

/*
 * Write a walk's result into the device page table: where the CPU maps
 * 2 MiB, one entry maps it all, beyond the range too.
 */
static int pt_fill(struct hmm_dummy_file *hfile, struct hmm_mirror_range *range)
{
	unsigned long addr = range->start, i = 0;
	struct page *page;
	long nr;
	u64 pfn;

	while (addr < range->end) {
		pfn = range->pfns[i];
		page = hmm_mirror_pfn_to_page(pfn);
		if (!page)
			return -EFAULT;
		if (hmm_mirror_pfn_order(pfn))
			nr = hmm_dummy_pt_store(hfile, addr, page, hmm_dummy_pt_tag(pfn),
						hmm_mirror_pfn_order(pfn));
		else
			nr = hmm_dummy_pt_store_run(hfile, addr, range->pfns + i,
						    (range->end - addr) >> PAGE_SHIFT);
		if (nr < 0)
			return nr;
		nr = min_t(unsigned long, nr, (range->end - addr) >> PAGE_SHIFT);
		addr += nr << PAGE_SHIFT;
		i += nr;
	}
	return 0;
}

/* One walk of @range, of the kind asked for. */
static int walk_range_once(struct hmm_mirror_range *range, enum hmm_dummy_walk kind, bool write)
{
	struct mm_struct *mm = range->mirror->mm;
	int ret;

	switch (kind) {
	case HMM_DUMMY_WALK_SNAPSHOT:
		return hmm_vma_get_pfns(range);
	case HMM_DUMMY_WALK_FAULT_UNLOCKED:
		return hmm_vma_fault_pfns_unlocked(range, write);
	default:
		mmap_read_lock(mm);
		ret = hmm_vma_fault_pfns(range, write);
		mmap_read_unlock(mm);
		return ret;
	}
}

/*
 * Walk @range (of @kind, faulting pages in for @write) and return 0 with
 * pt_lock held and the walk's result still current: a walk that an
 * invalidation raced with is done again, within the bounds of
 * HMM_DUMMY_MIN_STALE and HMM_DUMMY_STALE_TIMEOUT_MS, then -EBUSY.
 */
static int walk_then_lock(struct hmm_dummy_file *hfile, struct hmm_mirror_range *range,
			  enum hmm_dummy_walk kind, bool write)
{
	unsigned int busy = 0, stale = 0;
	unsigned long deadline = 0;
	unsigned long seq;
	int ret;

	for (;;) {
		if (fatal_signal_pending(current))
			return -EINTR;
		seq = hmm_mirror_read_begin(&hfile->mirror);
		ret = walk_range_once(range, kind, write);
		if (ret == -EBUSY && ++busy < HMM_DUMMY_MAX_BUSY) {
			cond_resched();
			continue;
		}
		if (ret)
			return ret;

		mutex_lock(&hfile->pt_lock);
		if (!hmm_mirror_read_retry(&hfile->mirror, seq))
			return 0;
		hfile->counters.retries++;
		mutex_unlock(&hfile->pt_lock);
		if (!stale++)
			deadline = jiffies + msecs_to_jiffies(HMM_DUMMY_STALE_TIMEOUT_MS);
		else if (stale >= HMM_DUMMY_MIN_STALE && time_after(jiffies, deadline))
			return -EBUSY;
	}
}

/*
 * A device page fault: fault [start, end) in through HMM and fill the
 * device page table.
 */
static int mirror_fault(struct hmm_dummy_file *hfile, unsigned long start,
			unsigned long end, enum hmm_dummy_walk kind, bool write)
{
	u64 pfns[HMM_DUMMY_BATCH];
	struct hmm_mirror_range range = {
		.mirror = &hfile->mirror,
		.start = start,
		.end = end,
		.pfns = pfns,
		.dev_owner = hfile->hdev,
	};
	int ret;

	ret = walk_then_lock(hfile, &range, kind, write);
	if (ret)
		return ret;
	hfile->counters.faults++;
	ret = pt_fill(hfile, &range);
	mutex_unlock(&hfile->pt_lock);
	return ret;
}

/*
 * The CPU page table knows nothing of a device write: dirty the page, or
 * reclaim would take it for clean and drop it (a MADV_FREE'd page) or
 * keep its old copy in swap. No page lock is needed: the page is mapped
 * for as long as its entry is in the device page table, which update()
 * cannot clear while pt_lock is held, so it cannot be truncated or freed
 * meanwhile. A device page comes back to RAM dirty anyway.
 */
static void pt_mark_written(struct page *page)
{
	if (!is_device_private_page(page))
		folio_mark_dirty(page_folio(page));
}

/* Copy one page between the device and @buf. */
static void pt_copy_page(struct page *page, void *buf, bool write)
{
	if (!write) {
		memcpy_from_page(buf, hmm_dummy_page_data(page), 0, PAGE_SIZE);
		return;
	}
	memcpy_to_page(hmm_dummy_page_data(page), 0, buf, PAGE_SIZE);
	pt_mark_written(page);
}

/*
 * Copy pages between the device page table and @buf, from the first
 * page: return how many were copied before one was missing (or not
 * writable for a write). A device page's data is in its backing storage.
 */
static unsigned long pt_copy_locked(struct hmm_dummy_file *hfile, unsigned long start,
				    unsigned long npages, void *buf, bool write)
{
	unsigned long i = 0, tag, nr;
	struct page *page;

	lockdep_assert_held(&hfile->pt_lock);
	while (i < npages) {
		page = hmm_dummy_pt_lookup(hfile, start + (i << PAGE_SHIFT), &tag, &nr);
		if (!page || (write && !(tag & HMM_DUMMY_PT_WRITE)))
			break;
		/* One lookup serves all the pages of a 2 MiB entry. */
		for (nr = min(nr, npages - i); nr; nr--, i++, page++)
			pt_copy_page(page, buf + (i << PAGE_SHIFT), write);
	}
	return i;
}

static unsigned long pt_copy(struct hmm_dummy_file *hfile, unsigned long start,
			     unsigned long npages, void *buf, bool write)
{
	unsigned long copied;

	mutex_lock(&hfile->pt_lock);
	copied = pt_copy_locked(hfile, start, npages, buf, write);
	mutex_unlock(&hfile->pt_lock);
	return copied;
}

/* Is the page of @entry in the device's memory, or did it just move there? */
static bool in_device_memory(u64 entry, struct page *moved)
{
	if (!(entry & HMM_MIRROR_PFN_VALID))
		return false;
	if (entry & HMM_MIRROR_PFN_DEVICE_LOCAL)
		return true;
	return moved && hmm_mirror_pfn_to_page(entry) == moved;
}

/**
 * hmm_dummy_read_back() - read pages from device memory after a migration
 * @hfile: the file
 * @start: first address
 * @npages: number of pages, up to HMM_DUMMY_BATCH
 * @moved: for each page, the page it just moved to, or NULL
 * @buf: where the data goes, @npages pages
 * @copied: set to the number of pages read
 *
 * Maps the pages into the device page table, without faulting anything:
 * reading stops at the first page that is not in the device's memory.
 *
 * Context: Process context, may sleep; the mmap lock held for reading.
 * Return: 0, or a negative errno.
 */
int hmm_dummy_read_back(struct hmm_dummy_file *hfile, unsigned long start,
			unsigned long npages, struct page *const *moved, void *buf,
			unsigned long *copied)
{
	u64 pfns[HMM_DUMMY_BATCH];
	struct hmm_mirror_range range = {
		.mirror = &hfile->mirror,
		.start = start,
		.end = start + (npages << PAGE_SHIFT),
		.pfns = pfns,
		.dev_owner = hfile->hdev,
	};
	unsigned long n;
	int ret;

	if (npages > HMM_DUMMY_BATCH)
		return -EINVAL;
	mmap_assert_locked(hfile->mirror.mm);
	ret = walk_then_lock(hfile, &range, HMM_DUMMY_WALK_SNAPSHOT, false);
	if (ret)
		return ret;
	for (n = 0; n < npages && in_device_memory(pfns[n], moved[n]); n++)
		;
	range.end = start + (n << PAGE_SHIFT);
	ret = pt_fill(hfile, &range);
	if (!ret)
		*copied = pt_copy_locked(hfile, start, n, buf, false);
	mutex_unlock(&hfile->pt_lock);
	return ret;
}

/*
 * A device fault for a command: fill the device page table for all of
 * [start, end), in batches, as one fault. Counting it once, however large
 * the range, is what test_hmm's faults counter does.
 */
static int mirror_fault_range(struct hmm_dummy_file *hfile, unsigned long start,
			      unsigned long end, enum hmm_dummy_walk kind, bool write)
{
	unsigned long addr, next;
	int ret;

	for (addr = start; addr < end; addr = next) {
		/* Near the top of the address space, addr + batch wraps. */
		next = end - addr > (HMM_DUMMY_BATCH << PAGE_SHIFT) ?
		       addr + (HMM_DUMMY_BATCH << PAGE_SHIFT) : end;
		ret = mirror_fault(hfile, addr, next, kind, write);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * One batch of a READ or WRITE of a command ending at @end: copy what the
 * device page table has, take a device fault for the rest, copy again.
 */
static int mirror_access(struct hmm_dummy_file *hfile, unsigned long start,
			 unsigned long npages, unsigned long end, void *buf,
			 enum hmm_dummy_walk kind, bool write, u64 *faults)
{
	unsigned long done = 0;
	int ret;

	for (;;) {
		done += pt_copy(hfile, start + (done << PAGE_SHIFT), npages - done,
				buf + (done << PAGE_SHIFT), write);
		if (done == npages)
			return 0;
		ret = mirror_fault_range(hfile, start + (done << PAGE_SHIFT), end, kind,
					 write);
		if (ret)
			return ret;
		(*faults)++;
	}
}

/* The checks every command on the mirrored mm starts with. */
static int cmd_validate(struct hmm_dummy_file *hfile, const struct hmm_dummy_cmd *cmd)
{
	if (!cmd->npages || !PAGE_ALIGNED(cmd->addr))
		return -EINVAL;
	if (cmd->npages > HMM_DUMMY_MAX_PAGES)
		return -E2BIG;
	if (cmd->addr + (cmd->npages << PAGE_SHIFT) < cmd->addr)
		return -EINVAL;
	if (READ_ONCE(hfile->counters.released))
		return -ENODEV;
	/* The file mirrors its opener's mm, and only the opener may use it. */
	if (current->mm != hfile->mirror.mm)
		return -EPERM;
	return 0;
}

static int cmd_read_write(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd,
			  void *bounce, enum hmm_dummy_walk kind, bool write)
{
	unsigned long end = cmd->addr + (cmd->npages << PAGE_SHIFT);
	void __user *uptr = u64_to_user_ptr(cmd->ptr);
	unsigned long n, start;
	int ret;

	for (; cmd->cpages < cmd->npages; cmd->cpages += n) {
		n = min_t(u64, cmd->npages - cmd->cpages, HMM_DUMMY_BATCH);
		start = cmd->addr + (cmd->cpages << PAGE_SHIFT);
		if (write && copy_from_user(bounce, uptr + (cmd->cpages << PAGE_SHIFT),
					    n << PAGE_SHIFT))
			return -EFAULT;
		ret = mirror_access(hfile, start, n, end, bounce, kind, write,
				    &cmd->faults);
		if (ret)
			return ret;
		if (!write && copy_to_user(uptr + (cmd->cpages << PAGE_SHIFT), bounce,
					   n << PAGE_SHIFT))
			return -EFAULT;
	}
	return 0;
}

/* A READ or WRITE through a bounce buffer of one batch. */
static int cmd_through_bounce(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd,
			      enum hmm_dummy_walk kind, bool write)
{
	void *bounce;
	int ret;

	bounce = kvmalloc(HMM_DUMMY_BATCH << PAGE_SHIFT, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	ret = cmd_read_write(hfile, cmd, bounce, kind, write);
	kvfree(bounce);
	return ret;
}

/*
 * READ_UNLOCKED: a signal that woke a waiting fault ends the command. A
 * read is harmless to do again, so the command is restarted after a
 * signal the process does not handle, or handles with SA_RESTART (job
 * control, the freezer); else user space sees EINTR.
 */
static int cmd_read_unlocked(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd)
{
	int ret = cmd_through_bounce(hfile, cmd, HMM_DUMMY_WALK_FAULT_UNLOCKED, false);

	if (ret == -EINTR && !fatal_signal_pending(current))
		ret = -ERESTARTSYS;
	return ret;
}

/**
 * hmm_dummy_cmd_read() - a device read of a command's range into its buffer
 * @hfile: the file
 * @cmd: the command, checked by hmm_dummy_cmd_get(); @cmd->cpages counts
 *	the pages read
 *
 * Context: Process context, may sleep; takes the mmap lock.
 * Return: 0, or a negative errno.
 */
int hmm_dummy_cmd_read(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd)
{
	return cmd_through_bounce(hfile, cmd, HMM_DUMMY_WALK_FAULT, false);
}

/* What SNAPSHOT reports for one page, in test_hmm's encoding. */
static u8 snapshot_byte(u64 entry)
{
	u8 prot;

	if (entry & HMM_MIRROR_PFN_ERROR)
		return HMM_DUMMY_PROT_ERROR;
	if (!(entry & HMM_MIRROR_PFN_VALID))
		return HMM_DUMMY_PROT_NONE;
	prot = entry & HMM_MIRROR_PFN_WRITE ? HMM_DUMMY_PROT_WRITE : HMM_DUMMY_PROT_READ;
	if (entry & HMM_MIRROR_PFN_ZERO)
		prot |= HMM_DUMMY_PROT_ZERO;
	if (entry & HMM_MIRROR_PFN_DEVICE_LOCAL)
		prot |= HMM_DUMMY_PROT_DEV_PRIVATE_LOCAL;
	if (hmm_mirror_pfn_order(entry) == PMD_ORDER)
		prot |= HMM_DUMMY_PROT_PMD;
	else if (hmm_mirror_pfn_order(entry) == PUD_ORDER)
		prot |= HMM_DUMMY_PROT_PUD;
	return prot;
}

static int cmd_snapshot(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd)
{
	u8 __user *uptr = u64_to_user_ptr(cmd->ptr);
	u64 pfns[HMM_DUMMY_BATCH];
	struct hmm_mirror_range range = {
		.mirror = &hfile->mirror,
		.pfns = pfns,
		.dev_owner = hfile->hdev,
	};
	u8 bytes[HMM_DUMMY_BATCH];
	unsigned long i, n;
	int ret;

	for (; cmd->cpages < cmd->npages; cmd->cpages += n) {
		n = min_t(u64, cmd->npages - cmd->cpages, HMM_DUMMY_BATCH);
		range.start = cmd->addr + (cmd->cpages << PAGE_SHIFT);
		range.end = range.start + (n << PAGE_SHIFT);
		/* A report, not a device page table: no retry needed. */
		mmap_read_lock(hfile->mirror.mm);
		ret = hmm_vma_get_pfns(&range);
		mmap_read_unlock(hfile->mirror.mm);
		if (ret)
			return ret;
		for (i = 0; i < n; i++)
			bytes[i] = snapshot_byte(pfns[i]);
		if (copy_to_user(uptr + cmd->cpages, bytes, n))
			return -EFAULT;
	}
	return 0;
}

static long cmd_counters(struct hmm_dummy_file *hfile, void __user *uarg)
{
	struct hmm_dummy_counters counters;

	mutex_lock(&hfile->pt_lock);
	counters = hfile->counters;
	mutex_unlock(&hfile->pt_lock);
	return copy_to_user(uarg, &counters, sizeof(counters)) ? -EFAULT : 0;
}

/**
 * hmm_dummy_cmd_get() - read and check a struct hmm_dummy_cmd
 * @hfile: the file
 * @uarg: the user argument
 * @cmd: where it goes, with the counts cleared
 *
 * Context: Process context, may sleep.
 * Return: 0, or the errno the command fails with.
 */
int hmm_dummy_cmd_get(struct hmm_dummy_file *hfile, void __user *uarg,
		      struct hmm_dummy_cmd *cmd)
{
	int ret;

	if (copy_from_user(cmd, uarg, sizeof(*cmd)))
		return -EFAULT;
	ret = cmd_validate(hfile, cmd);
	if (ret)
		return ret;
	cmd->cpages = 0;
	cmd->faults = 0;
	return 0;
}

/**
 * hmm_dummy_cmd_put() - give a command's counts back to user space
 * @uarg: the user argument
 * @cmd: the command
 * @ret: how the command ended
 *
 * The counts tell how far a failed command got, so they are written
 * whatever @ret is.
 *
 * Context: Process context, may sleep.
 * Return: @ret, or -EFAULT.
 */
int hmm_dummy_cmd_put(void __user *uarg, const struct hmm_dummy_cmd *cmd, int ret)
{
	if (copy_to_user(uarg, cmd, sizeof(*cmd)))
		return -EFAULT;
	return ret;
}

/**
 * hmm_dummy_mirror_ioctl() - the commands on the mirrored address space
 * @hfile: the file
 * @cmd: the ioctl number
 * @uarg: its user argument
 *
 * Context: Process context, may sleep.
 * Return: 0, a negative errno, or -ENOTTY for a command not handled here.
 */
long hmm_dummy_mirror_ioctl(struct hmm_dummy_file *hfile, unsigned int cmd,
			    void __user *uarg)
{
	struct hmm_dummy_cmd dcmd;
	int ret;

	switch (cmd) {
	case HMM_DUMMY_COUNTERS:
		return cmd_counters(hfile, uarg);
	case HMM_DUMMY_READ:
	case HMM_DUMMY_READ_UNLOCKED:
	case HMM_DUMMY_WRITE:
	case HMM_DUMMY_SNAPSHOT:
		break;
	default:
		return -ENOTTY;
	}

	ret = hmm_dummy_cmd_get(hfile, uarg, &dcmd);
	if (ret)
		return ret;
	if (cmd == HMM_DUMMY_SNAPSHOT)
		ret = cmd_snapshot(hfile, &dcmd);
	else if (cmd == HMM_DUMMY_READ_UNLOCKED)
		ret = cmd_read_unlocked(hfile, &dcmd);
	else
		ret = cmd_through_bounce(hfile, &dcmd, HMM_DUMMY_WALK_FAULT,
					 cmd == HMM_DUMMY_WRITE);
	return hmm_dummy_cmd_put(uarg, &dcmd, ret);
}
