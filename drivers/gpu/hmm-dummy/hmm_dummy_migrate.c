// SPDX-License-Identifier: GPL-2.0-only
/*
 * hmm_dummy migration: moving process pages to device memory and back with
 * migrate_vma().
 *
 * Pages go to the device on MIGRATE_TO_DEV only. They come back on
 * MIGRATE_TO_SYS, on a CPU fault (migrate_to_ram), and on RELEASE or
 * module unload, which evict every page of the device by pfn.
 *
 * A migration works on batches of HMM_DUMMY_MIGRATE_BATCH pages inside
 * one VMA, aligned on their size, so that a THP falls in one batch and
 * moves whole: to a device THP, and back to a system THP; where none can
 * be had, as base pages. The mmap lock is held for reading; the batch's
 * context carries the arrays migrate_vma() fills, so nothing large sits
 * on the stack.
 */
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/migrate_vma.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hmm_dummy.h"

/* What the CORE copy mode leaves in a page the core failed to copy to. */
#define HMM_DUMMY_UNCOPIED_BYTE	0xa5

/*
 * A PMD's worth of 4 KiB pages: the most a THP taken whole can have. With
 * larger base pages a PMD holds more, no batch covers one, and THPs move
 * as base pages.
 */
#define HMM_DUMMY_MIGRATE_BATCH	512
#define HMM_DUMMY_MIGRATE_BYTES	(HMM_DUMMY_MIGRATE_BATCH << PAGE_SHIFT)

/**
 * struct hmm_dummy_migration - one batch of a migration
 * @hdev: the device whose memory the pages move to or from
 * @hfile: the file whose command it is (RELEASE too), for its FAIL_ALLOC
 *	flag; NULL for a CPU fault or an eviction on unload
 * @mm: the address space, to match injected faults; NULL when evicting
 * @fault: the CPU fault being served, which cannot leave a page behind;
 *	NULL for any other migration
 * @inject: the device's injected fault, read once for the batch
 * @src: source entries, filled by migrate_vma()
 * @dst: destination entries, filled by alloc_and_copy()
 * @moved: for each entry, the page it moved to, or NULL
 * @wanted: the entries that get a new device base page, in alloc_and_copy()
 * @fresh: their device pages
 * @nr_moved: how many entries moved
 * @nomem: a destination could not be allocated
 * @clock: where to account the batch's phases, NULL when nobody asked
 * @mark: when the phase being timed began, in ktime_get_ns()
 */
struct hmm_dummy_migration {
	struct hmm_dummy_device *hdev;
	struct hmm_dummy_file *hfile;
	struct mm_struct *mm;
	struct vm_fault *fault;
	struct hmm_dummy_injection inject;
	unsigned long src[HMM_DUMMY_MIGRATE_BATCH];
	unsigned long dst[HMM_DUMMY_MIGRATE_BATCH];
	struct page *moved[HMM_DUMMY_MIGRATE_BATCH];
	u16 wanted[HMM_DUMMY_MIGRATE_BATCH];
	struct page *fresh[HMM_DUMMY_MIGRATE_BATCH];
	unsigned long nr_moved;
	bool nomem;
	struct hmm_dummy_phase_clock *clock;
	u64 mark;
};

/* @wanted holds indices of the batch. */
static_assert(HMM_DUMMY_MIGRATE_BATCH - 1 <= U16_MAX);

static unsigned long pages_between(unsigned long start, unsigned long end)
{
	return (end - start) >> PAGE_SHIFT;
}

/* The fault injected for @addr of the migration's mm, if any. */
static u32 injected_kind(struct hmm_dummy_migration *m, unsigned long addr)
{
	struct hmm_dummy_injection *inj = &m->inject;

	if (m->mm && inj->mm == m->mm && addr >= inj->start && addr < inj->end)
		return inj->kind;
	return HMM_DUMMY_INJECT_NONE;
}

/* Whether an injected fault covers part of [start, end) of the migration's mm. */
static bool injected_in(struct hmm_dummy_migration *m, unsigned long start, unsigned long end)
{
	struct hmm_dummy_injection *inj = &m->inject;

	return m->mm && inj->mm == m->mm && inj->kind != HMM_DUMMY_INJECT_NONE &&
	       start < inj->end && inj->start < end;
}

/*
 * Whether the THP at @addr may get a THP destination: not when an
 * injected fault must hit its pages one by one, nor when the file asked
 * (FAIL_ALLOC) that the next huge allocation fail, which consumes the ask.
 */
static bool huge_destination_allowed(struct hmm_dummy_migration *m, unsigned long addr)
{
	if (injected_in(m, addr, addr + HMM_DUMMY_MIGRATE_BYTES))
		return false;
	if (!m->hfile)
		return true;
	return !(atomic64_fetch_andnot(HMM_DUMMY_FLAG_FAIL_ALLOC, &m->hfile->flags) &
		 HMM_DUMMY_FLAG_FAIL_ALLOC);
}

/* A timed batch's clock starts: what runs until the first mark is collect. */
static void phase_clock_start(struct hmm_dummy_migration *m)
{
	if (m->clock)
		m->mark = ktime_get_ns();
}

/* @phase of a timed batch has just ended. */
static void phase_clock_mark(struct hmm_dummy_migration *m, unsigned int phase)
{
	u64 now;

	if (!m->clock)
		return;
	now = ktime_get_ns();
	atomic64_add(now - m->mark, &m->clock->ns[phase]);
	m->mark = now;
}

static const u8 core_phase_index[] = {
	[MIGRATE_VMA_PHASE_COLLECT]	= HMM_DUMMY_PHASE_COLLECT,
	[MIGRATE_VMA_PHASE_PREPARE]	= HMM_DUMMY_PHASE_PREPARE,
	[MIGRATE_VMA_PHASE_UNMAP]	= HMM_DUMMY_PHASE_UNMAP,
	[MIGRATE_VMA_PHASE_PAGES]	= HMM_DUMMY_PHASE_PAGES,
	[MIGRATE_VMA_PHASE_FINALIZE]	= HMM_DUMMY_PHASE_FINALIZE,
};

static_assert(ARRAY_SIZE(core_phase_index) == MIGRATE_VMA_PHASE_FINALIZE + 1);

/*
 * &migrate_vma_ops.phase_done, set only for a timed batch. A call counts
 * once its collect is done: one refused with -EINVAL ran no phase.
 */
static void core_phase_done(enum migrate_vma_phase phase, void *private)
{
	struct hmm_dummy_migration *m = private;

	if (phase == MIGRATE_VMA_PHASE_COLLECT)
		atomic64_inc(&m->clock->calls);
	phase_clock_mark(m, core_phase_index[phase]);
}

static unsigned long locked_dst_entry(struct page *page)
{
	return migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_LOCKED;
}

/*
 * The CORE copy mode stands for a device that uses system memory: the
 * destination is a system page, filled with a marker so that a copy the
 * core skipped would show.
 */
static struct page *alloc_core_copy_dst(struct vm_area_struct *vma, unsigned long addr)
{
	struct page *page;

	page = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma, addr);
	if (!page)
		return NULL;
	memset_page(page, 0, HMM_DUMMY_UNCOPIED_BYTE, PAGE_SIZE);
	lock_page(page);
	return page;
}

/*
 * A system THP taken whole goes to a device THP, copied page by page into
 * its backing storage. Returns the entries it covered, 0 when it must
 * move as base pages.
 */
static unsigned long to_device_huge(struct hmm_dummy_migration *m, struct page *spage,
				    unsigned long *dst, unsigned long addr)
{
	struct page *dpage, *data;
	unsigned long k;

	if (!huge_destination_allowed(m, addr))
		return 0;
	dpage = hmm_dummy_alloc_huge(m->hdev);
	if (!dpage)
		return 0;
	data = hmm_dummy_page_data(dpage);
	for (k = 0; k < HMM_DUMMY_MIGRATE_BATCH; k++)
		copy_highpage(data + k, spage + k);
	*dst = locked_dst_entry(dpage) | MIGRATE_PFN_COMPOUND;
	return HMM_DUMMY_MIGRATE_BATCH;
}

/*
 * Give the @nr entries of @m->wanted their device base pages, allocated
 * at once, and copy their data; an empty entry (never touched) reads as
 * zeroes.
 */
static void to_device_base_pages(struct hmm_dummy_migration *m, const unsigned long *src,
				 unsigned long *dst, unsigned long nr)
{
	struct page *spage, *data;
	unsigned long got, k, i;

	got = hmm_dummy_alloc_pages(m->hdev, m->fresh, nr);
	if (got < nr)
		m->nomem = true;
	for (k = 0; k < got; k++) {
		i = m->wanted[k];
		spage = migrate_pfn_to_page(src[i]);
		data = hmm_dummy_page_data(m->fresh[k]);
		if (spage)
			copy_highpage(data, spage);
		else
			clear_highpage(data);
		dst[i] = locked_dst_entry(m->fresh[k]);
	}
}

static void to_device_alloc_and_copy(struct vm_area_struct *vma, const unsigned long *src,
				     unsigned long *dst, unsigned long start,
				     unsigned long end, void *private, bool core_copy)
{
	struct hmm_dummy_migration *m = private;
	unsigned long i, addr, n, nr_wanted = 0;
	struct page *spage, *dpage;

	for (i = 0; i < pages_between(start, end); i++) {
		if (!(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		spage = migrate_pfn_to_page(src[i]);
		/* Already in this device's memory: nothing to do. */
		if (spage && is_device_private_page(spage))
			continue;
		addr = start + (i << PAGE_SHIFT);
		/* The CORE copy mode's system pages stay base pages. */
		if ((src[i] & MIGRATE_PFN_COMPOUND) && !core_copy) {
			n = to_device_huge(m, spage, &dst[i], addr);
			if (n) {
				i += n - 1;
				continue;
			}
		}
		if (injected_kind(m, addr) == HMM_DUMMY_INJECT_ALLOC_FAIL)
			continue;
		if (!core_copy) {
			m->wanted[nr_wanted++] = i;
			continue;
		}
		dpage = alloc_core_copy_dst(vma, addr);
		if (dpage)
			dst[i] = locked_dst_entry(dpage);
		else
			m->nomem = true;
	}
	if (nr_wanted)
		to_device_base_pages(m, src, dst, nr_wanted);
	phase_clock_mark(m, HMM_DUMMY_PHASE_ALLOC_AND_COPY);
}

static void to_device_driver_copy(struct vm_area_struct *vma, const unsigned long *src,
				  unsigned long *dst, unsigned long start,
				  unsigned long end, void *private)
{
	to_device_alloc_and_copy(vma, src, dst, start, end, private, false);
}

static void to_device_core_copy(struct vm_area_struct *vma, const unsigned long *src,
				unsigned long *dst, unsigned long start,
				unsigned long end, void *private)
{
	to_device_alloc_and_copy(vma, src, dst, start, end, private, true);
}

/* The destination of a device page coming back to RAM, or an error. */
static unsigned long alloc_system_dst(struct hmm_dummy_migration *m, struct vm_area_struct *vma,
				      unsigned long addr, struct page *spage)
{
	struct page *dpage;

	switch (injected_kind(m, addr)) {
	case HMM_DUMMY_INJECT_PFN_ERROR:
		return MIGRATE_PFN_ERROR;
	case HMM_DUMMY_INJECT_ALLOC_FAIL:
		/* A CPU fault would only come back: fail the injection instead. */
		if (!m->fault)
			return 0;
		break;
	}
	if (vma)
		dpage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma, addr);
	else
		dpage = alloc_page(GFP_HIGHUSER_MOVABLE);
	if (!dpage) {
		/* A fault's other pages may stay: only its own must come. */
		if (!m->fault || addr == (m->fault->address & PAGE_MASK))
			m->nomem = true;
		return 0;
	}
	lock_page(dpage);
	copy_highpage(dpage, hmm_dummy_page_data(spage));
	return locked_dst_entry(dpage);
}

/*
 * A device THP taken whole comes back to a system THP. Returns the entries
 * it covered, 0 when it must come back as base pages.
 */
static unsigned long to_system_huge(struct hmm_dummy_migration *m, struct vm_area_struct *vma,
				    unsigned long addr, struct page *spage, unsigned long *dst)
{
	struct folio *folio;
	unsigned long k;

	if (!IS_ENABLED(CONFIG_ARCH_HAS_PMD_SOFTLEAVES) || !huge_destination_allowed(m, addr))
		return 0;
	/* Advised against THPs since it went to the device: base pages. */
	if (vma && (vma->vm_flags & VM_NOHUGEPAGE))
		return 0;
	/* No reclaim for it: base pages are the fallback, evicting too. */
	if (vma)
		folio = vma_alloc_folio(GFP_TRANSHUGE_LIGHT, PMD_ORDER, vma, addr);
	else
		folio = folio_alloc(GFP_TRANSHUGE_LIGHT, PMD_ORDER);
	if (!folio)
		return 0;
	folio_lock(folio);
	for (k = 0; k < HMM_DUMMY_MIGRATE_BATCH; k++)
		copy_highpage(folio_page(folio, k), hmm_dummy_page_data(spage + k));
	*dst = locked_dst_entry(&folio->page) | MIGRATE_PFN_COMPOUND;
	return HMM_DUMMY_MIGRATE_BATCH;
}

static void to_system_alloc_and_copy(struct vm_area_struct *vma, const unsigned long *src,
				     unsigned long *dst, unsigned long start,
				     unsigned long end, void *private)
{
	struct hmm_dummy_migration *m = private;
	unsigned long i, n, addr;
	struct page *spage;

	for (i = 0; i < pages_between(start, end); i++) {
		spage = migrate_pfn_to_page(src[i]);
		/* Only pages of this device move back; system pages stay. */
		if (!(src[i] & MIGRATE_PFN_MIGRATE) || !spage ||
		    !is_device_private_page(spage))
			continue;
		/* Evicting, there is no VMA and start is 0. */
		addr = start + (i << PAGE_SHIFT);
		if (src[i] & MIGRATE_PFN_COMPOUND) {
			n = to_system_huge(m, vma, addr, spage, &dst[i]);
			if (n) {
				i += n - 1;
				continue;
			}
		}
		dst[i] = alloc_system_dst(m, vma, addr, spage);
	}
	phase_clock_mark(m, HMM_DUMMY_PHASE_ALLOC_AND_COPY);
}

/*
 * The device page table is filled afterwards through the mirror: the mmap
 * lock does not keep MADV_DONTNEED away, so an entry made here could
 * outlive the page. Note what moved, for the read back and the counts.
 */
static void record_moved_pages(struct vm_area_struct *vma, const unsigned long *src,
			       const unsigned long *dst, unsigned long start,
		       unsigned long end, void *private)
{
	struct hmm_dummy_migration *m = private;
	unsigned long i, k, nr;
	struct page *page;

	for (i = 0; i < pages_between(start, end); i += nr) {
		nr = 1;
		m->moved[i] = NULL;
		if (!(src[i] & MIGRATE_PFN_MIGRATE) || !(dst[i] & MIGRATE_PFN_VALID))
			continue;
		/* A THP that moved whole: its pages follow its head. */
		page = migrate_pfn_to_page(dst[i]);
		if (dst[i] & MIGRATE_PFN_COMPOUND)
			nr = folio_nr_pages(page_folio(page));
		for (k = 0; k < nr; k++)
			m->moved[i + k] = page + k;
		m->nr_moved += nr;
	}
	phase_clock_mark(m, HMM_DUMMY_PHASE_FINALIZE_AND_MAP);
}

static void migration_init(struct hmm_dummy_migration *m, struct hmm_dummy_device *hdev,
			   struct mm_struct *mm)
{
	m->hdev = hdev;
	m->hfile = NULL;
	m->mm = mm;
	m->fault = NULL;
	spin_lock(&hdev->inject_lock);
	m->inject = hdev->inject;
	spin_unlock(&hdev->inject_lock);
	memset(m->moved, 0, sizeof(m->moved));
	m->nr_moved = 0;
	m->nomem = false;
	m->clock = NULL;
}

/* Move one batch back to RAM: the range, or the pages of @m->src by pfn. */
static int migrate_to_system(struct hmm_dummy_migration *m, struct vm_area_struct *vma,
			     unsigned long start, unsigned long end)
{
	struct migrate_vma_ops ops = {
		.alloc_and_copy = to_system_alloc_and_copy,
		.finalize_and_map = record_moved_pages,
		.phase_done = m->clock ? core_phase_done : NULL,
		.pgmap_owner = m->hdev,
	};

	phase_clock_start(m);
	if (!vma)
		return migrate_vma_evict(&ops, m->src, m->dst, HMM_DUMMY_MIGRATE_BATCH, m);
	ops.flags = MIGRATE_VMA_SKIP_SYSTEM;
	/* The fault holds the faulting page's lock for us. */
	if (m->fault)
		return migrate_vma_fault(&ops, m->fault, start, end, m->src, m->dst, m);
	return migrate_vma(&ops, vma, start, end, m->src, m->dst, m);
}

/**
 * hmm_dummy_migrate_to_ram() - the CPU touched a page in device memory
 * @vmf: the fault, on a device-private entry of this driver
 *
 * A device THP behind one PMD (the fault has no pte) comes back whole,
 * to a system THP if one can be had; a page of any other comes back
 * alone, which splits a THP it is part of.
 *
 * Context: Process context, mmap lock held for reading.
 * Return: 0 to have the CPU fault again (the page is back, or could not
 * move this time), VM_FAULT_OOM or VM_FAULT_SIGBUS.
 */
vm_fault_t hmm_dummy_migrate_to_ram(struct vm_fault *vmf)
{
	struct hmm_dummy_device *hdev = page_pgmap(vmf->page)->owner;
	unsigned long addr = vmf->address & PAGE_MASK, size = PAGE_SIZE;
	struct hmm_dummy_migration *m;
	vm_fault_t ret = 0;

	if (!vmf->pte && folio_test_large(page_folio(vmf->page)) &&
	    PMD_SIZE == HMM_DUMMY_MIGRATE_BYTES) {
		addr = vmf->address & PMD_MASK;
		size = PMD_SIZE;
	}
	m = kmalloc_obj(*m);
	if (!m)
		return VM_FAULT_OOM;
	migration_init(m, hdev, vmf->vma->vm_mm);
	m->fault = vmf;
	if (migrate_to_system(m, vmf->vma, addr, addr + size))
		ret = VM_FAULT_SIGBUS;
	else if (m->nomem)
		ret = VM_FAULT_OOM;
	kfree(m);
	return ret;
}

/**
 * hmm_dummy_evict_range() - move the pages in use of a pfn range to RAM
 * @hdev: the device owning the range
 * @hfile: the file that asked, for its FAIL_ALLOC flag; NULL on unload
 * @pfn: first pfn
 * @npages: number of pfns
 *
 * Context: Process context, may sleep; no mmap lock needed.
 * Return: the number of pages moved.
 */
unsigned long hmm_dummy_evict_range(struct hmm_dummy_device *hdev, struct hmm_dummy_file *hfile,
				    unsigned long pfn, unsigned long npages)
{
	struct hmm_dummy_migration *m;
	unsigned long i, moved = 0;

	/* Unload tries again after a pause; RELEASE reports what moved. */
	m = kmalloc_obj(*m);
	if (!m)
		return 0;
	for (; npages; pfn += HMM_DUMMY_MIGRATE_BATCH) {
		migration_init(m, hdev, NULL);
		m->hfile = hfile;
		for (i = 0; i < HMM_DUMMY_MIGRATE_BATCH; i++)
			m->src[i] = i < npages ? migrate_pfn(pfn + i) : 0;
		npages -= min_t(unsigned long, npages, HMM_DUMMY_MIGRATE_BATCH);
		migrate_to_system(m, NULL, 0, 0);
		moved += m->nr_moved;
		cond_resched();
	}
	kfree(m);
	return moved;
}

/*
 * Both directions need [start, end) covered by VMAs the process can read,
 * as test_hmm does; check it all before moving anything.
 */
static int require_readable_vmas(struct mm_struct *mm, unsigned long start, unsigned long end)
{
	struct vm_area_struct *vma;

	for (; start < end; start = vma->vm_end) {
		vma = vma_lookup(mm, start);
		if (!vma || !(vma->vm_flags & VM_READ))
			return -EINVAL;
	}
	return 0;
}

/*
 * Read a moved batch back from the device, HMM_DUMMY_BATCH pages at a
 * time, up to the first page that is not in device memory.
 */
static int read_back_batch(struct hmm_dummy_file *hfile, struct hmm_dummy_migration *m,
			   unsigned long start, unsigned long npages, void *buf,
			   unsigned long *copied)
{
	unsigned long done = 0, n, got;
	int ret;

	*copied = 0;
	while (done < npages) {
		n = min_t(unsigned long, npages - done, HMM_DUMMY_BATCH);
		got = 0;
		ret = hmm_dummy_read_back(hfile, start + (done << PAGE_SHIFT), n, m->moved + done,
					  buf + (done << PAGE_SHIFT), &got);
		done += got;
		*copied = done;
		if (ret || got < n)
			return ret;
	}
	return 0;
}

/* One batch of MIGRATE_TO_DEV: move it, then read it back from the device. */
static int to_device_batch(struct hmm_dummy_file *hfile, struct hmm_dummy_migration *m,
			   struct vm_area_struct *vma, unsigned long start,
			   unsigned long end, void *buf, unsigned long *copied)
{
	bool core_copy = READ_ONCE(hfile->copy_mode) == HMM_DUMMY_COPY_CORE;
	struct migrate_vma_ops ops = {
		.alloc_and_copy = core_copy ? to_device_core_copy : to_device_driver_copy,
		.finalize_and_map = record_moved_pages,
		.phase_done = m->clock ? core_phase_done : NULL,
		.pgmap_owner = hfile->hdev,
		.flags = MIGRATE_VMA_SKIP_DEVICE | (core_copy ? MIGRATE_VMA_CORE_COPY : 0),
	};
	int ret;

	phase_clock_start(m);
	ret = migrate_vma(&ops, vma, start, end, m->src, m->dst, m);
	if (ret)
		return ret;
	return read_back_batch(hfile, m, start, pages_between(start, end), buf, copied);
}

/*
 * The batch of a command starting at @start: up to HMM_DUMMY_MIGRATE_BATCH
 * pages of [start, end) inside one VMA, which ends at *@next.
 */
static int migrate_batch(struct hmm_dummy_file *hfile, struct hmm_dummy_migration *m,
			 struct hmm_dummy_phase_clock *clock, bool to_device,
			 unsigned long start, unsigned long end, void *buf,
			 unsigned long *next, unsigned long *done)
{
	struct mm_struct *mm = hfile->mirror.mm;
	struct vm_area_struct *vma;
	int ret;

	*next = end;
	migration_init(m, hfile->hdev, mm);
	m->hfile = hfile;
	m->clock = clock;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, start);
	if (!vma || !(vma->vm_flags & VM_READ)) {
		mmap_read_unlock(mm);
		return -EINVAL;		/* the range changed since require_readable_vmas() */
	}
	/* Aligned batches keep each THP in one. */
	*next = min3(end, vma->vm_end, ALIGN_DOWN(start, HMM_DUMMY_MIGRATE_BYTES) +
				       HMM_DUMMY_MIGRATE_BYTES);
	if (to_device)
		ret = to_device_batch(hfile, m, vma, start, *next, buf, done);
	else
		ret = migrate_to_system(m, vma, start, *next);
	mmap_read_unlock(mm);
	if (!to_device)
		*done = m->nr_moved;
	return ret;
}

/*
 * MIGRATE_TO_DEV and MIGRATE_TO_SYS. To the device, each batch is read
 * back into @ptr and @cpages counts the pages read, up to the first not in
 * device memory (-ENOENT); back to RAM, @cpages counts the pages moved.
 */
static int cmd_migrate(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd,
		       bool to_device)
{
	unsigned long start = cmd->addr, end = start + (cmd->npages << PAGE_SHIFT);
	struct mm_struct *mm = hfile->mirror.mm;
	/* Read once: a command is counted whole or not at all. */
	struct hmm_dummy_phase_clock *clock = READ_ONCE(hfile->phase_clock.on) ?
					      &hfile->phase_clock : NULL;
	u64 began = clock ? ktime_get_ns() : 0;
	struct hmm_dummy_migration *m;
	unsigned long next, n, done;
	void *buf;
	int ret;

	mmap_read_lock(mm);
	ret = require_readable_vmas(mm, start, end);
	mmap_read_unlock(mm);
	if (ret)
		return ret;

	m = kmalloc_obj(*m);
	buf = kvmalloc(HMM_DUMMY_MIGRATE_BYTES, GFP_KERNEL);
	if (!m || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (; start < end; start = next) {
		done = 0;
		ret = migrate_batch(hfile, m, clock, to_device, start, end, buf, &next, &done);
		n = pages_between(start, next);
		if (to_device && copy_to_user(u64_to_user_ptr(cmd->ptr) +
					      (cmd->cpages << PAGE_SHIFT),
					      buf, done << PAGE_SHIFT))
			ret = -EFAULT;
		cmd->cpages += done;
		if (!ret && to_device && done < n)
			ret = -ENOENT;
		if (ret)
			break;
	}
out:
	kvfree(buf);
	kfree(m);
	if (clock) {
		atomic64_add(ktime_get_ns() - began, &clock->ns[HMM_DUMMY_PHASE_COMMAND]);
		atomic64_inc(&clock->commands);
	}
	return ret;
}

/* RELEASE: every page of the device's memory goes back to RAM. */
static int cmd_release(struct hmm_dummy_file *hfile, struct hmm_dummy_cmd *cmd)
{
	cmd->cpages = hmm_dummy_evict_all(hfile->hdev, hfile);
	return 0;
}

static long cmd_copy_mode(struct hmm_dummy_file *hfile, void __user *uarg)
{
	u32 mode;

	if (copy_from_user(&mode, uarg, sizeof(mode)))
		return -EFAULT;
	if (mode > HMM_DUMMY_COPY_CORE)
		return -EINVAL;
	WRITE_ONCE(hfile->copy_mode, mode);
	return 0;
}

/*
 * FLAGS: the flags come in @npages, as test_hmm takes them. FAIL_ALLOC
 * fails the next THP destination of the file's commands once, in either
 * direction: that THP moves as base pages.
 */
static long cmd_flags(struct hmm_dummy_file *hfile, void __user *uarg)
{
	struct hmm_dummy_cmd dcmd;

	if (copy_from_user(&dcmd, uarg, sizeof(dcmd)))
		return -EFAULT;
	if (dcmd.npages & ~HMM_DUMMY_FLAG_FAIL_ALLOC)
		return -EINVAL;
	atomic64_set(&hfile->flags, dcmd.npages);
	return 0;
}

/*
 * PHASE_TIMES: hand over what was counted since the last call, and count
 * on. What was handed over is taken off afterwards, so a bad pointer loses
 * nothing and a command finishing meanwhile is kept for the next call.
 */
static long cmd_phase_times(struct hmm_dummy_file *hfile, void __user *uarg)
{
	struct hmm_dummy_phase_clock *clock = &hfile->phase_clock;
	struct hmm_dummy_phase_times times;
	int i;

	WRITE_ONCE(clock->on, true);
	for (i = 0; i < HMM_DUMMY_NR_PHASES; i++)
		times.ns[i] = atomic64_read(&clock->ns[i]);
	times.calls = atomic64_read(&clock->calls);
	times.commands = atomic64_read(&clock->commands);
	if (copy_to_user(uarg, &times, sizeof(times)))
		return -EFAULT;
	for (i = 0; i < HMM_DUMMY_NR_PHASES; i++)
		atomic64_sub(times.ns[i], &clock->ns[i]);
	atomic64_sub(times.calls, &clock->calls);
	atomic64_sub(times.commands, &clock->commands);
	return 0;
}

static long cmd_inject(struct hmm_dummy_file *hfile, void __user *uarg)
{
	struct hmm_dummy_device *hdev = hfile->hdev;
	struct hmm_dummy_inject req;
	struct hmm_dummy_injection inj = { };

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.kind > HMM_DUMMY_INJECT_PFN_ERROR || req.pad ||
	    !PAGE_ALIGNED(req.addr) || req.npages > HMM_DUMMY_MAX_PAGES ||
	    req.addr + (req.npages << PAGE_SHIFT) < req.addr)
		return -EINVAL;
	if (current->mm != hfile->mirror.mm)
		return -EPERM;
	if (req.kind != HMM_DUMMY_INJECT_NONE && req.npages) {
		inj.owner = hfile;
		inj.mm = hfile->mirror.mm;
		inj.start = req.addr;
		inj.end = req.addr + (req.npages << PAGE_SHIFT);
		inj.kind = req.kind;
	}
	spin_lock(&hdev->inject_lock);
	hdev->inject = inj;
	spin_unlock(&hdev->inject_lock);
	return 0;
}

/**
 * hmm_dummy_inject_clear() - drop the injection a closing file made
 * @hfile: the file being closed
 *
 * Context: Any context.
 */
void hmm_dummy_inject_clear(struct hmm_dummy_file *hfile)
{
	struct hmm_dummy_device *hdev = hfile->hdev;

	spin_lock(&hdev->inject_lock);
	if (hdev->inject.owner == hfile)
		memset(&hdev->inject, 0, sizeof(hdev->inject));
	spin_unlock(&hdev->inject_lock);
}

/**
 * hmm_dummy_migrate_ioctl() - the commands that move memory
 * @hfile: the file
 * @cmd: the ioctl number
 * @uarg: its user argument
 *
 * Context: Process context, may sleep.
 * Return: 0, a negative errno, or -ENOTTY for a command not handled here.
 */
long hmm_dummy_migrate_ioctl(struct hmm_dummy_file *hfile, unsigned int cmd,
			     void __user *uarg)
{
	struct hmm_dummy_cmd dcmd;
	int ret;

	switch (cmd) {
	case HMM_DUMMY_COPY_MODE:
		return cmd_copy_mode(hfile, uarg);
	case HMM_DUMMY_INJECT:
		return cmd_inject(hfile, uarg);
	case HMM_DUMMY_FLAGS:
		return cmd_flags(hfile, uarg);
	case HMM_DUMMY_PHASE_TIMES:
		return cmd_phase_times(hfile, uarg);
	case HMM_DUMMY_RELEASE:
		if (copy_from_user(&dcmd, uarg, sizeof(dcmd)))
			return -EFAULT;
		dcmd.cpages = 0;
		dcmd.faults = 0;
		return hmm_dummy_cmd_put(uarg, &dcmd, cmd_release(hfile, &dcmd));
	case HMM_DUMMY_MIGRATE_TO_DEV:
	case HMM_DUMMY_MIGRATE_TO_SYS:
		ret = hmm_dummy_cmd_get(hfile, uarg, &dcmd);
		if (ret)
			return ret;
		ret = cmd_migrate(hfile, &dcmd, cmd == HMM_DUMMY_MIGRATE_TO_DEV);
		return hmm_dummy_cmd_put(uarg, &dcmd, ret);
	default:
		return -ENOTTY;
	}
}
