// SPDX-License-Identifier: GPL-2.0-only
/*
 * migrate_vma(): move the pages behind a range of one VMA to memory the
 * caller allocates, device-private memory above all, and bring such
 * memory back to RAM.
 *
 * The work is split in five phases, one function each:
 *
 *   collect   walk the CPU page table; take a reference on every page that
 *             may move, and note empty anonymous entries a driver may fill;
 *             a page that locks at once is unmapped right there
 *   prepare   lock the other pages, take them all off the LRU; drop pinned
 *             ones
 *   unmap     replace each remaining mapping by a migration entry, so the
 *             CPU waits instead of touching the page; restore the pages
 *             that turn out pinned after all
 *             -> the driver's alloc_and_copy()
 *   pages     move the struct page metadata to the destination; install
 *             the destination of an empty entry
 *             -> the driver's finalize_and_map()
 *   finalize  map the destination, or the source again where the move
 *             failed; unlock and release everything
 *
 * A PMD-mapped THP (or a device-private one of the caller's) that the
 * range covers whole is taken whole: its head entry carries
 * MIGRATE_PFN_COMPOUND, the next entries its tail pages, and the phases
 * handle the folio once, at the head. A destination of the same order
 * moves it whole; base-page destinations split it once it is unmapped.
 *
 * Entry i of the arrays describes one page. Between the phases the entries
 * say what the core holds: a source entry with MIGRATE_PFN_VALID is a page
 * the core has a reference on (and, from prepare on, the lock of), or a
 * tail page of a THP its head entry holds that way; one
 * with MIGRATE_PFN_MIGRATE is still on its way. A page the core gives up
 * on is released at once and its entry cleared, so it stays where it was.
 */
#include <linux/highmem.h>
#include <linux/huge_mm.h>
#include <linux/leafops.h>
#include <linux/memcontrol.h>
#include <linux/migrate_vma.h>
#include <linux/mm.h>
#include <linux/mm_inline.h>
#include <linux/mmu_notifier.h>
#include <linux/oom.h>
#include <linux/pagewalk.h>
#include <linux/rmap.h>
#include <linux/slab.h>
#include <linux/swapops.h>
#include <linux/userfaultfd_k.h>

#include "internal.h"

/* Moves of a device page that another path's passing reference made fail. */
#define MIGRATE_VMA_REF_TRIES	3

/* The entries of a THP taken whole: only PMD-sized ones are. */
#ifdef CONFIG_ARCH_HAS_PMD_SOFTLEAVES
#define MIGRATE_VMA_HUGE_NR	HPAGE_PMD_NR
#else
#define MIGRATE_VMA_HUGE_NR	1
#endif

/**
 * struct migrate_vma_state - one call of migrate_vma() or migrate_vma_evict()
 * @ops: the caller's callbacks, owner and flags
 * @vma: the VMA of the range, or NULL when evicting pages by pfn
 * @start: address of entry 0 (0 when evicting)
 * @src: source entries, MIGRATE_PFN_* of the source pages
 * @dst: destination entries, filled by alloc_and_copy()
 * @npages: number of entries filled so far by collect, then in all
 * @cpages: entries still marked MIGRATE_PFN_MIGRATE
 * @large: a large folio collect met and must split, with a reference
 * @collect_end: end of the range collect walks
 * @flush_from: first address collect unmapped a present pte at since its
 *	last TLB flush, ULONG_MAX when none
 * @anon_vmas: evicting, the anon_vma of each source, held so that the
 *	reverse map can be walked again after the last mapping went away;
 *	NULL for migrate_vma(), whose mmap lock keeps the anon_vmas alive
 * @fault_folio: from migrate_vma_fault(), the folio the CPU fault locked;
 *	the core uses that lock as its own and leaves it to the fault
 * @fault_page: the page the fault locked @fault_folio through, which
 *	keeps the fault's lock and reference when that folio is split
 * @mapped_elsewhere: the unmap phase found a source still mapped (in a
 *	child after fork, say), so not every migration entry is in @vma
 */
struct migrate_vma_state {
	const struct migrate_vma_ops *ops;
	struct vm_area_struct *vma;
	unsigned long start;
	unsigned long *src;
	unsigned long *dst;
	unsigned long npages;
	unsigned long cpages;
	struct folio *large;
	unsigned long collect_end;
	unsigned long flush_from;
	struct anon_vma **anon_vmas;
	struct folio *fault_folio;
	struct page *fault_page;
	bool mapped_elsewhere;
};

static void migrate_vma_add_entry(struct migrate_vma_state *mv, unsigned long mpfn)
{
	mv->dst[mv->npages] = 0;
	mv->src[mv->npages++] = mpfn;
	if (mpfn & MIGRATE_PFN_MIGRATE)
		mv->cpages++;
}

/*
 * A tail page of a large folio taken whole: its head entry stands for
 * the folio, and the phases skip the tail entries.
 */
static bool migrate_vma_is_tail(unsigned long mpfn)
{
	struct page *page = migrate_pfn_to_page(mpfn);

	return page && PageTail(page);
}

/* How many entries entry i stands for: a whole THP's, or its own. */
static unsigned long migrate_vma_entry_pages(const struct migrate_vma_state *mv, unsigned long i)
{
	return mv->src[i] & MIGRATE_PFN_COMPOUND ? MIGRATE_VMA_HUGE_NR : 1;
}

static bool migrate_vma_core_copies(const struct migrate_vma_state *mv)
{
	return mv->ops->flags & MIGRATE_VMA_CORE_COPY;
}

static bool migrate_vma_skips_system(const struct migrate_vma_state *mv)
{
	return mv->ops->flags & MIGRATE_VMA_SKIP_SYSTEM;
}

/* Lock a source without waiting; the faulting folio is locked already. */
static bool migrate_vma_lock_source(const struct migrate_vma_state *mv, struct folio *folio)
{
	return folio == mv->fault_folio || folio_trylock(folio);
}

static void migrate_vma_unlock_source(const struct migrate_vma_state *mv, struct folio *folio)
{
	if (folio != mv->fault_folio)
		folio_unlock(folio);
}

/* A device-private page the caller may move: its own, unless skipped. */
static bool migrate_vma_owns_device_page(const struct migrate_vma_state *mv, struct page *page)
{
	return !(mv->ops->flags & MIGRATE_VMA_SKIP_DEVICE) && mv->ops->pgmap_owner &&
		page_pgmap(page)->owner == mv->ops->pgmap_owner;
}

/*
 * An address without a page can be given one, but only in anonymous
 * memory: anything else is backed by a file the page would not be part of.
 */
static unsigned long migrate_vma_empty_entry(const struct migrate_vma_state *mv,
					     struct vm_area_struct *vma)
{
	return vma_is_anonymous(vma) && !migrate_vma_skips_system(mv) ? MIGRATE_PFN_MIGRATE : 0;
}

static int migrate_vma_collect_hole(unsigned long start, unsigned long end, int depth,
				    struct mm_walk *walk)
{
	struct migrate_vma_state *mv = walk->private;
	unsigned long addr;

	for (addr = start; addr < end; addr += PAGE_SIZE)
		migrate_vma_add_entry(mv, migrate_vma_empty_entry(mv, walk->vma));
	return 0;
}

static void migrate_vma_skip_range(struct migrate_vma_state *mv, unsigned long start,
				   unsigned long end)
{
	for (; start < end; start += PAGE_SIZE)
		migrate_vma_add_entry(mv, 0);
}

/* A swap pte: only the caller's own device-private pages can move. */
static unsigned long migrate_vma_collect_swap_pte(struct migrate_vma_state *mv, pte_t pte,
						  struct folio **large)
{
	softleaf_t entry = softleaf_from_pte(pte);
	unsigned long mpfn;
	struct page *page;

	if (!softleaf_is_device_private(entry))
		return 0;
	page = softleaf_to_page(entry);
	if (!migrate_vma_owns_device_page(mv, page))
		return 0;
	/* The mapping holds a reference, and the pte lock holds the mapping. */
	folio_get(page_folio(page));
	/* Part of a device THP no longer mapped by one PMD: split it. */
	if (folio_test_large(page_folio(page))) {
		*large = page_folio(page);
		return 0;
	}
	mpfn = migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_MIGRATE;
	if (softleaf_is_device_private_write(entry))
		mpfn |= MIGRATE_PFN_WRITE;
	return mpfn;
}

/*
 * The entry for one pte, called under the pte lock. A large folio is not
 * recorded but handed back in @large, with a reference, to be split.
 */
static unsigned long migrate_vma_collect_pte(struct migrate_vma_state *mv, unsigned long addr,
					     pte_t pte, struct folio **large)
{
	struct vm_area_struct *vma = mv->vma;
	struct folio *folio;
	struct page *page;
	unsigned long mpfn;

	if (pte_none(pte))
		return migrate_vma_empty_entry(mv, vma);
	if (!pte_present(pte))
		return migrate_vma_collect_swap_pte(mv, pte, large);
	if (migrate_vma_skips_system(mv))
		return 0;

	page = vm_normal_page(vma, addr, pte);
	if (!page)	/* the zero page can be replaced like an empty entry */
		return is_zero_pfn(pte_pfn(pte)) ? migrate_vma_empty_entry(mv, vma) : 0;
	folio = page_folio(page);
	/* File pages belong to their file, KSM pages to several places. */
	if (!folio_test_anon(folio) || folio_test_ksm(folio) ||
	    folio_is_zone_device(folio))
		return 0;
	folio_get(folio);
	if (folio_test_large(folio)) {
		*large = folio;
		return 0;
	}
	mpfn = migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_MIGRATE;
	if (pte_write(pte))
		mpfn |= MIGRATE_PFN_WRITE;
	return mpfn;
}

/*
 * Split a large folio met while collecting, so that its pages can move one
 * by one. Consumes the reference migrate_vma_collect_pte() took. Collect may hold the
 * locks of pages already unmapped, so it does not wait for this one.
 */
static bool migrate_vma_split_large_folio(struct migrate_vma_state *mv, struct folio *folio)
{
	bool split = false;

	if (folio == mv->fault_folio) {
		/*
		 * The fault's reference is the one a split allows, and the
		 * fault unlocks and releases its page's folio afterwards:
		 * split at that page, which keeps both.
		 */
		folio_put(folio);
		if (split_huge_page_to_list_to_order(mv->fault_page, NULL, 0))
			return false;
		mv->fault_folio = page_folio(mv->fault_page);
		return true;
	}
	if (folio_trylock(folio)) {
		split = !split_folio(folio);
		folio_unlock(folio);
	}
	folio_put(folio);
	return split;
}

/* The migration entry that stands for @pte, a present or device-private pte. */
static pte_t migrate_vma_migration_pte(pte_t pte, struct page *page, bool exclusive)
{
	unsigned long pfn = page_to_pfn(page);
	swp_entry_t entry;
	pte_t swp_pte;

	if (pte_present(pte)) {
		if (pte_write(pte))
			entry = make_writable_migration_entry(pfn);
		else if (exclusive)
			entry = make_readable_exclusive_migration_entry(pfn);
		else
			entry = make_readable_migration_entry(pfn);
		if (pte_young(pte))
			entry = make_migration_entry_young(entry);
		if (pte_dirty(pte))
			entry = make_migration_entry_dirty(entry);
		swp_pte = swp_entry_to_pte(entry);
		if (pte_soft_dirty(pte))
			swp_pte = pte_swp_mksoft_dirty(swp_pte);
		if (pte_uffd(pte))
			swp_pte = pte_swp_mkuffd(swp_pte);
		return swp_pte;
	}
	if (softleaf_is_device_private_write(softleaf_from_pte(pte)))
		entry = make_writable_migration_entry(pfn);
	else if (exclusive)
		entry = make_readable_exclusive_migration_entry(pfn);
	else
		entry = make_readable_migration_entry(pfn);
	swp_pte = swp_entry_to_pte(entry);
	if (pte_swp_soft_dirty(pte))
		swp_pte = pte_swp_mksoft_dirty(swp_pte);
	if (pte_swp_uffd(pte))
		swp_pte = pte_swp_mkuffd(swp_pte);
	return swp_pte;
}

/*
 * Unmap a page collect just took, under the pte lock, if it locks at
 * once: its pte becomes a migration entry here, inside collect's one mmu
 * notification, instead of in try_to_migrate() with a reverse map walk
 * and a notification per page. The unmap phase still handles the pages
 * mapped elsewhere too (after fork). Returns the entry to record: LOCKED
 * added when the page is unmapped here, 0 when it may be pinned.
 */
static unsigned long migrate_vma_unmap_in_collect(struct migrate_vma_state *mv,
						  struct mm_walk *walk, pte_t *ptep,
						  unsigned long addr, unsigned long mpfn)
{
	struct page *page = migrate_pfn_to_page(mpfn);
	struct folio *folio = page_folio(page);
	bool exclusive;
	pte_t pte;

	if (!migrate_vma_lock_source(mv, folio))
		return mpfn;	/* prepare tries again */
	pte = ptep_get(ptep);
	if (pte_present(pte))
		flush_cache_page(walk->vma, addr, pte_pfn(pte));
	pte = ptep_get_and_clear(walk->mm, addr, ptep);
	exclusive = PageAnonExclusive(page);
	if (exclusive && folio_try_share_anon_rmap_pte(folio, page)) {
		/* Maybe pinned by GUP: the page stays, mapped as it was. */
		set_pte_at(walk->mm, addr, ptep, pte);
		migrate_vma_unlock_source(mv, folio);
		folio_put(folio);
		return 0;
	}
	if (pte_present(pte) && pte_dirty(pte))
		folio_mark_dirty(folio);
	/* Still counted in the rss, as a migration entry is. */
	set_pte_at(walk->mm, addr, ptep, migrate_vma_migration_pte(pte, page, exclusive));
	folio_remove_rmap_pte(folio, page, walk->vma);
	/* Munlock left a reference in this CPU's batch: not a pin. */
	if (walk->vma->vm_flags & VM_LOCKED)
		mlock_drain_local();
	folio_put(folio);	/* the mapping's reference */
	if (pte_present(pte))
		mv->flush_from = min(mv->flush_from, addr);
	return mpfn | MIGRATE_PFN_LOCKED;
}

/*
 * Flush the TLB entries of the ptes unmapped since the last flush, up to
 * @end, before the walker drops the pte lock: code that later changes
 * those ptes under the mmap read lock (MADV_DONTNEED, uffd write-protect)
 * finds no present pte there and would flush nothing itself.
 */
static void migrate_vma_flush_unmapped(struct migrate_vma_state *mv, struct vm_area_struct *vma,
				       unsigned long end)
{
	if (mv->flush_from >= end)
		return;
	flush_tlb_range(vma, mv->flush_from, end);
	mv->flush_from = ULONG_MAX;
}

static int migrate_vma_collect_pte_entry(pte_t *ptep, unsigned long addr, unsigned long next,
					 struct mm_walk *walk)
{
	struct migrate_vma_state *mv = walk->private;
	unsigned long mpfn;

	mpfn = migrate_vma_collect_pte(mv, addr, ptep_get(ptep), &mv->large);
	if (mv->large) {
		migrate_vma_flush_unmapped(mv, walk->vma, addr);
		return 1;	/* stop here: split it, then walk on */
	}
	if (mpfn & MIGRATE_PFN_VALID)
		mpfn = migrate_vma_unmap_in_collect(mv, walk, ptep, addr, mpfn);
	migrate_vma_add_entry(mv, mpfn);
	/* The walker drops the pte lock at the end of each page table. */
	if (next == mv->collect_end || IS_ALIGNED(next, PMD_SIZE))
		migrate_vma_flush_unmapped(mv, walk->vma, next);
	return 0;
}

/*
 * Whether a huge PMD holds nothing this migration takes: system memory (a
 * THP, the huge zero page, a THP under migration elsewhere) when it skips
 * system pages, or another driver's device-private THP, which stays where
 * it is, whole. The caller's own device THP that cannot move whole is
 * split, as a system THP is.
 */
static bool migrate_vma_pmd_has_nothing_to_take(struct migrate_vma_state *mv, pmd_t pmd)
{
	if (pmd_is_device_private_entry(pmd))
		return !migrate_vma_owns_device_page(mv, softleaf_to_page(softleaf_from_pmd(pmd)));
	return migrate_vma_skips_system(mv) && (pmd_trans_huge(pmd) || pmd_is_migration_entry(pmd));
}

#ifdef CONFIG_ARCH_HAS_PMD_SOFTLEAVES
/*
 * The folio behind a huge PMD that can move whole: a THP of anonymous
 * memory, or one of the caller's own device-private THPs, mapped by this
 * PMD alone. A THP mapped elsewhere too (shared after fork) is split and
 * moves page by page; the huge zero page is replaced like empty entries.
 */
static struct folio *migrate_vma_huge_folio(const struct migrate_vma_state *mv, pmd_t pmd,
					    unsigned long *write)
{
	struct folio *folio;
	softleaf_t entry;

	if (pmd_trans_huge(pmd)) {
		if (migrate_vma_skips_system(mv) || is_huge_zero_pmd(pmd))
			return NULL;
		folio = pmd_folio(pmd);
		if (!folio_test_anon(folio))
			return NULL;
		*write = pmd_write(pmd) ? MIGRATE_PFN_WRITE : 0;
	} else if (pmd_is_device_private_entry(pmd)) {
		entry = softleaf_from_pmd(pmd);
		folio = softleaf_to_folio(entry);
		if (!migrate_vma_owns_device_page(mv, &folio->page))
			return NULL;
		*write = softleaf_is_device_private_write(entry) ? MIGRATE_PFN_WRITE : 0;
	} else {
		return NULL;
	}
	if (folio_order(folio) != HPAGE_PMD_ORDER || folio_mapcount(folio) != 1)
		return NULL;
	return folio;
}

/*
 * Take the THP of a huge PMD the range covers whole: lock it and replace
 * the PMD by a migration entry, as collect does for ptes. Returns false
 * when the PMD holds nothing that moves whole, and the walk goes on as
 * for any PMD; true when its entries are recorded: the folio's, or
 * staying ones when it is locked elsewhere or maybe pinned.
 */
static bool migrate_vma_collect_huge(struct migrate_vma_state *mv, struct mm_walk *walk,
				     pmd_t *pmdp, unsigned long addr, unsigned long next)
{
	struct page_vma_mapped_walk pvmw = {
		.address = addr,
		.pmd = pmdp,
		.vma = walk->vma,
	};
	unsigned long write, mpfn, k;
	struct folio *folio;

	if (!IS_ALIGNED(addr, HPAGE_PMD_SIZE) || next - addr != HPAGE_PMD_SIZE)
		return false;
	pvmw.ptl = pmd_lock(walk->mm, pmdp);
	folio = migrate_vma_huge_folio(mv, pmdp_get(pmdp), &write);
	if (!folio) {
		spin_unlock(pvmw.ptl);
		return false;
	}
	folio_get(folio);
	if (!migrate_vma_lock_source(mv, folio)) {
		spin_unlock(pvmw.ptl);
		folio_put(folio);
		migrate_vma_skip_range(mv, addr, next);
		return true;
	}
	if (set_pmd_migration_entry(&pvmw, &folio->page)) {
		/* Maybe pinned by GUP: it stays, mapped as it was. */
		spin_unlock(pvmw.ptl);
		migrate_vma_unlock_source(mv, folio);
		folio_put(folio);
		migrate_vma_skip_range(mv, addr, next);
		return true;
	}
	spin_unlock(pvmw.ptl);
	/* Munlock left a reference in this CPU's batch: not a pin. */
	if (walk->vma->vm_flags & VM_LOCKED)
		mlock_drain_local();
	mpfn = migrate_pfn(folio_pfn(folio)) | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_LOCKED | write;
	migrate_vma_add_entry(mv, mpfn | MIGRATE_PFN_COMPOUND);
	for (k = 1; k < HPAGE_PMD_NR; k++)
		migrate_vma_add_entry(mv, mpfn + (k << MIGRATE_PFN_SHIFT));
	return true;
}
#else
static bool migrate_vma_collect_huge(struct migrate_vma_state *mv, struct mm_walk *walk,
				     pmd_t *pmdp, unsigned long addr, unsigned long next)
{
	return false;
}
#endif

/*
 * A THP the range covers whole moves whole where it can. Otherwise the
 * walker splits a huge PMD mapping into ptes before pte_entry sees it;
 * where the migration has nothing to take, record the pages as staying
 * and keep the mapping whole.
 */
static int migrate_vma_collect_pmd_entry(pmd_t *pmdp, unsigned long addr, unsigned long next,
					 struct mm_walk *walk)
{
	struct migrate_vma_state *mv = walk->private;
	spinlock_t *ptl;	/* the PMD lock, held while reading a huge PMD */
	bool keep;

	if (!pmd_leaf(pmdp_get_lockless(pmdp)) && pmd_present(pmdp_get_lockless(pmdp)))
		return 0;	/* a page table, or nothing: walk on */
	if (migrate_vma_collect_huge(mv, walk, pmdp, addr, next)) {
		walk->action = ACTION_CONTINUE;
		return 0;
	}
	ptl = pmd_lock(walk->mm, pmdp);
	keep = migrate_vma_pmd_has_nothing_to_take(mv, pmdp_get(pmdp));
	spin_unlock(ptl);
	if (!keep)
		return 0;
	migrate_vma_skip_range(mv, addr, next);
	walk->action = ACTION_CONTINUE;
	return 0;
}

static const struct mm_walk_ops migrate_vma_collect_walk_ops = {
	.pmd_entry = migrate_vma_collect_pmd_entry,
	.pte_entry = migrate_vma_collect_pte_entry,
	.pte_hole = migrate_vma_collect_hole,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * Phase 1: record one entry per page of the range, with a reference on
 * each page that may move, under one mmu notification for the range.
 * Pages that lock at once are unmapped on the way; large folios are
 * split.
 */
static void migrate_vma_phase_collect(struct migrate_vma_state *mv, unsigned long end)
{
	unsigned long addr = mv->start, split_at = ULONG_MAX;
	struct mmu_notifier_range range;

	mv->collect_end = end;
	mv->flush_from = ULONG_MAX;
	mmu_notifier_range_init_owner(&range, MMU_NOTIFY_MIGRATE, 0, mv->vma->vm_mm,
				      mv->start, end, mv->ops->pgmap_owner);
	mmu_notifier_invalidate_range_start(&range);
	while (addr < end) {
		mv->large = NULL;
		walk_page_range(mv->vma->vm_mm, addr, end, &migrate_vma_collect_walk_ops, mv);
		addr = mv->start + (mv->npages << PAGE_SHIFT);
		if (!mv->large)
			break;
		/* Split a large folio once; if it will not, leave the page. */
		if (addr != split_at && migrate_vma_split_large_folio(mv, mv->large)) {
			split_at = addr;
			continue;
		}
		if (addr == split_at)
			folio_put(mv->large);
		migrate_vma_add_entry(mv, 0);
		addr += PAGE_SIZE;
	}
	/* The callbacks cover every address; this only guards the arrays. */
	migrate_vma_skip_range(mv, mv->start + (mv->npages << PAGE_SHIFT), end);
	mmu_notifier_invalidate_range_end(&range);
}

/* Release a source page the core holds: unlock it, give it back to the LRU. */
static void migrate_vma_release_source(struct migrate_vma_state *mv, struct folio *folio,
				       bool locked)
{
	if (locked)
		migrate_vma_unlock_source(mv, folio);
	if (folio_is_zone_device(folio))
		folio_put(folio);
	else if (locked)
		folio_putback_lru(folio);
	else
		folio_put(folio);
}

/* Clear entry i, and the tail entries of a THP it stands for. */
static void migrate_vma_give_up(struct migrate_vma_state *mv, unsigned long i)
{
	unsigned long k, end = i + migrate_vma_entry_pages(mv, i);

	for (k = i; k < end; k++) {
		if (mv->src[k] & MIGRATE_PFN_MIGRATE)
			mv->cpages--;
		mv->src[k] = 0;
	}
}

/* Entry i and its tails, if any, stay: they lose MIGRATE_PFN_MIGRATE. */
static void migrate_vma_fail_entry(struct migrate_vma_state *mv, unsigned long i)
{
	unsigned long k, end = i + migrate_vma_entry_pages(mv, i);

	for (k = i; k < end; k++) {
		if (mv->src[k] & MIGRATE_PFN_MIGRATE)
			mv->cpages--;
		mv->src[k] &= ~MIGRATE_PFN_MIGRATE;
	}
}

/*
 * Give up on a source the core has locked: map it again where collect
 * unmapped it (the mmap lock of migrate_vma() keeps its anon_vma alive;
 * eviction unmaps nothing before the unmap phase), release it.
 */
static void migrate_vma_give_up_locked(struct migrate_vma_state *mv, unsigned long i,
				       struct folio *folio, bool isolated)
{
	if (mv->vma)
		remove_migration_ptes(folio, folio, 0);
	migrate_vma_unlock_source(mv, folio);
	if (isolated)
		folio_putback_lru(folio);
	else
		folio_put(folio);
	migrate_vma_give_up(mv, i);
}

/*
 * Evicting: hold the anon_vma of a source, which only a mapped page has.
 * A page that is not mapped (any more) has nothing to evict from: a CPU
 * fault that moved it already may still hold a reference, say.
 */
static bool migrate_vma_hold_anon_vma(struct migrate_vma_state *mv, unsigned long i,
				      struct folio *folio)
{
	mv->anon_vmas[i] = folio_get_anon_vma(folio);
	return mv->anon_vmas[i];
}

/*
 * More references than the mappings, the swap cache and the core's own
 * one explain: someone pinned the page (GUP, DMA) and may still write it.
 * Device-private pages cannot be pinned, and the fault path holds a
 * reference of its own while it migrates one, so they are not checked.
 */
static bool migrate_vma_folio_pinned(struct folio *folio)
{
	if (folio_is_device_private(folio))
		return false;
	return folio_ref_count(folio) > folio_expected_ref_count(folio) + 1;
}

/*
 * Phase 2: lock every collected page collect did not lock already, and
 * isolate it from the LRU. A page locked by someone else is left alone
 * rather than waited for: two migrations of overlapping ranges would
 * otherwise wait on each other.
 */
static void migrate_vma_phase_prepare(struct migrate_vma_state *mv)
{
	bool drained = false;
	struct folio *folio;
	unsigned long i;

	lru_add_drain();
	for (i = 0; i < mv->npages; i++) {
		if (!(mv->src[i] & MIGRATE_PFN_VALID) || migrate_vma_is_tail(mv->src[i]))
			continue;
		folio = page_folio(migrate_pfn_to_page(mv->src[i]));
		if (!(mv->src[i] & MIGRATE_PFN_LOCKED) && !migrate_vma_lock_source(mv, folio)) {
			migrate_vma_release_source(mv, folio, false);
			migrate_vma_give_up(mv, i);
			continue;
		}
		/*
		 * A device page locked only now may have been moved meanwhile,
		 * by the CPU fault that held its lock: it is mapped nowhere.
		 */
		if (!(mv->src[i] & MIGRATE_PFN_LOCKED) && mv->vma &&
		    folio_is_device_private(folio) && !folio_mapped(folio)) {
			migrate_vma_release_source(mv, folio, true);
			migrate_vma_give_up(mv, i);
			continue;
		}
		mv->src[i] |= MIGRATE_PFN_LOCKED;
		if (mv->anon_vmas && !migrate_vma_hold_anon_vma(mv, i, folio)) {
			migrate_vma_give_up_locked(mv, i, folio, false);
			continue;
		}
		if (folio_is_zone_device(folio))
			continue;	/* never on the LRU; collect's reference holds it */

		if (!folio_test_lru(folio) && !drained) {
			/* It may sit in another CPU's LRU batch. */
			lru_add_drain_all();
			drained = true;
		}
		if (!folio_isolate_lru(folio)) {
			migrate_vma_give_up_locked(mv, i, folio, false);
			continue;
		}
		/* The isolation holds a reference of its own. */
		folio_put(folio);
		/*
		 * Another CPU's batch (MADV_FREE's lazyfree, a deactivation)
		 * may hold a reference to a folio on the LRU too: drain once
		 * before taking it for a pin.
		 */
		if (migrate_vma_folio_pinned(folio) && !drained) {
			lru_add_drain_all();
			drained = true;
		}
		if (migrate_vma_folio_pinned(folio))
			migrate_vma_give_up_locked(mv, i, folio, true);
	}
}

/*
 * Phase 3: replace every mapping of the pages by a migration entry, with
 * one TLB flush for all of them. A page that is still mapped afterwards,
 * or pinned meanwhile, gets its mappings back and is given up.
 */
static void migrate_vma_phase_unmap(struct migrate_vma_state *mv)
{
	struct folio *folio;
	unsigned long i;

	for (i = 0; i < mv->npages; i++) {
		if (!(mv->src[i] & MIGRATE_PFN_VALID) || migrate_vma_is_tail(mv->src[i]))
			continue;
		folio = page_folio(migrate_pfn_to_page(mv->src[i]));
		if (folio_mapped(folio)) {
			try_to_migrate(folio, TTU_BATCH_FLUSH);
			mv->mapped_elsewhere = true;
		}
	}
	/* No CPU may still write through a stale TLB entry from here on. */
	try_to_unmap_flush();

	for (i = 0; i < mv->npages; i++) {
		if (!(mv->src[i] & MIGRATE_PFN_VALID) || migrate_vma_is_tail(mv->src[i]))
			continue;
		folio = page_folio(migrate_pfn_to_page(mv->src[i]));
		if (!folio_mapped(folio) && !migrate_vma_folio_pinned(folio))
			continue;
		remove_migration_ptes(folio, folio, 0);
		migrate_vma_release_source(mv, folio, true);
		migrate_vma_give_up(mv, i);
	}
}

/* The swap pte that maps device-private @page, writable or not. */
static pte_t migrate_vma_device_private_pte(struct page *page, bool write)
{
	unsigned long pfn = page_to_pfn(page);

	if (write)
		return swp_entry_to_pte(make_writable_device_private_entry(pfn));
	return swp_entry_to_pte(make_readable_device_private_entry(pfn));
}

/* The pte of a page that fills an empty entry. */
static pte_t migrate_vma_new_page_pte(struct vm_area_struct *vma, struct page *page)
{
	bool write = vma->vm_flags & VM_WRITE;
	pte_t pte;

	if (is_device_private_page(page))
		return migrate_vma_device_private_pte(page, write);
	pte = mk_pte(page, vma->vm_page_prot);
	if (write)
		pte = pte_mkwrite(pte_mkdirty(pte), vma);
	return pte;
}

/* Make the page table of @addr, so that the walker reaches its pte. */
static bool migrate_vma_alloc_page_table(struct mm_struct *mm, unsigned long addr)
{
	p4d_t *p4dp;
	pud_t *pudp;
	pmd_t *pmdp;

	p4dp = p4d_alloc(mm, pgd_offset(mm, addr), addr);
	if (!p4dp)
		return false;
	pudp = pud_alloc(mm, p4dp, addr);
	if (!pudp)
		return false;
	pmdp = pmd_alloc(mm, pudp, addr);
	return pmdp && !pte_alloc(mm, pmdp);
}

/*
 * Empty entries waiting for their pte in migrate_vma_phase_pages() carry
 * MIGRATE_PFN_LOCKED in @src, which an entry without a source page has no
 * other use for: the one walk that installs them clears it on success.
 * Every source page the core holds carries the same bit, so an entry is
 * pending only when it has no source page (no MIGRATE_PFN_VALID).
 */
#define MIGRATE_VMA_PENDING	MIGRATE_PFN_LOCKED

static bool migrate_vma_insert_pending(unsigned long mpfn)
{
	return (mpfn & (MIGRATE_PFN_VALID | MIGRATE_VMA_PENDING)) == MIGRATE_VMA_PENDING;
}

static int migrate_vma_insert_pte_entry(pte_t *ptep, unsigned long addr, unsigned long next,
					struct mm_walk *walk)
{
	struct migrate_vma_state *mv = walk->private;
	unsigned long i = (addr - mv->start) >> PAGE_SHIFT;
	struct vm_area_struct *vma = walk->vma;
	pte_t old = ptep_get(ptep);
	struct folio *folio;

	if (!migrate_vma_insert_pending(mv->src[i]))
		return 0;
	/* Someone faulted a page in since collect, or will handle the fault. */
	if (check_stable_address_space(walk->mm) || userfaultfd_missing(vma) ||
	    !(pte_none(old) || (pte_present(old) && is_zero_pfn(pte_pfn(old)))))
		return 0;
	folio = page_folio(migrate_pfn_to_page(mv->dst[i]));
	inc_mm_counter(walk->mm, MM_ANONPAGES);
	folio_add_new_anon_rmap(folio, vma, addr, RMAP_EXCLUSIVE);
	if (!folio_is_zone_device(folio))
		folio_add_lru_vma(folio, vma);
	folio_get(folio);	/* the mapping's reference */
	if (pte_present(old))
		ptep_clear_flush(vma, addr, ptep);
	set_pte_at(walk->mm, addr, ptep, migrate_vma_new_page_pte(vma, &folio->page));
	update_mmu_cache(vma, addr, ptep);
	mv->src[i] &= ~MIGRATE_VMA_PENDING;
	return 0;
}

/* The walker maps a huge pmd (the huge zero page) with ptes first. */
static const struct mm_walk_ops migrate_vma_insert_walk_ops = {
	.pte_entry = migrate_vma_insert_pte_entry,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * Get the new page of an empty (or zero-page) entry ready to be mapped as
 * an anonymous fault would map it: the page tables, the anon_vma and the
 * memcg charge, all of which may sleep, so not under the pte lock.
 */
static bool migrate_vma_prepare_insert(struct migrate_vma_state *mv, unsigned long addr,
				       struct page *page)
{
	struct vm_area_struct *vma = mv->vma;

	if (migrate_vma_core_copies(mv)) {
		if (is_device_private_page(page))
			return false;
		clear_highpage(page);
	}
	if (!migrate_vma_alloc_page_table(vma->vm_mm, addr) || anon_vma_prepare(vma) ||
	    mem_cgroup_charge(page_folio(page), vma->vm_mm, GFP_KERNEL))
		return false;
	/* The data must be visible before the pte is. */
	__folio_mark_uptodate(page_folio(page));
	return true;
}

/*
 * Map the prepared new pages of [first, last] in one walk, inside one mmu
 * notification (a zero page there may be mirrored). An entry whose pte
 * changed since collect fails.
 */
static void migrate_vma_insert_pages(struct migrate_vma_state *mv, unsigned long first,
				     unsigned long last)
{
	unsigned long start = mv->start + (first << PAGE_SHIFT);
	unsigned long end = mv->start + ((last + 1) << PAGE_SHIFT);
	struct mmu_notifier_range range;
	unsigned long i;

	mmu_notifier_range_init_owner(&range, MMU_NOTIFY_MIGRATE, 0, mv->vma->vm_mm,
				      start, end, mv->ops->pgmap_owner);
	mmu_notifier_invalidate_range_start(&range);
	walk_page_range(mv->vma->vm_mm, start, end, &migrate_vma_insert_walk_ops, mv);
	mmu_notifier_invalidate_range_end(&range);

	for (i = first; i <= last; i++) {
		if (!migrate_vma_insert_pending(mv->src[i]))
			continue;
		mv->src[i] &= ~(MIGRATE_VMA_PENDING | MIGRATE_PFN_MIGRATE);
		mv->cpages--;
	}
}

/*
 * A device page is not on any LRU, but its flags outlive it on the
 * driver's free list: clear what folio_migrate_flags() would add to, so
 * that a page once mlocked cannot come back both active and unevictable.
 */
static void migrate_vma_clear_lru_flags(struct folio *folio)
{
	folio_clear_active(folio);
	folio_clear_unevictable(folio);
	folio_clear_referenced(folio);
	folio_clear_workingset(folio);
}

/* Move the metadata of one unmapped, locked source folio to @dst. */
static bool migrate_vma_move_folio(struct migrate_vma_state *mv, struct folio *src,
				   struct folio *dst)
{
	bool private = folio_is_device_private(src) || folio_is_device_private(dst);
	int extra = 0, tries = MIGRATE_VMA_REF_TRIES;

	/* Only system memory and device-private memory are handled. */
	if (folio_is_zone_device(dst) && !folio_is_device_private(dst))
		return false;
	/* A THP moves to a folio of its size, a base page to a base page. */
	if (folio_nr_pages(dst) != folio_nr_pages(src))
		return false;
	/* Device memory takes no swap cache: drop it or leave the page. */
	if (folio_is_device_private(dst) && folio_mapping(src) &&
	    !folio_free_swap(src))
		return false;
	/*
	 * Writeback of a swap-cache page ends on the page it started on,
	 * which must not be freed meanwhile: leave such a page.
	 */
	if (folio_test_writeback(src))
		return false;
	if (migrate_vma_core_copies(mv) && (private || folio_mc_copy(dst, src)))
		return false;
	if (folio_is_device_private(dst))
		migrate_vma_clear_lru_flags(dst);
	do {
		/*
		 * Whoever else holds a passing reference to a device-private
		 * page (the CPU fault serving migrate_to_ram(), a collect or
		 * an eviction that will give up on it) may drop it meanwhile:
		 * count again and retry.
		 */
		if (folio_is_device_private(src))
			extra = folio_ref_count(src) - folio_expected_ref_count(src) - 1;
		if (!folio_migrate_mapping(folio_mapping(src), dst, src, extra)) {
			folio_migrate_flags(dst, src);
			/*
			 * Only the device knows whether it wrote the page:
			 * data coming back from it is dirty, or reclaim could
			 * drop it (a MADV_FREE'd page) or keep a stale copy
			 * in swap.
			 */
			if (folio_is_device_private(src))
				folio_mark_dirty(dst);
			return true;
		}
	} while (folio_is_device_private(src) && tries--);
	return false;
}

#ifdef CONFIG_ARCH_HAS_PMD_SOFTLEAVES
/*
 * Evicting, the THP's PMD migration entry in one VMA that maps it (after
 * a fork, the parent's and the child's) becomes one per pte. A VMA the
 * reverse map names that cannot hold its PMD is skipped. The entry could
 * have been zapped meanwhile and another THP faulted in at the address:
 * that one is split too, which costs it its PMD and nothing else.
 */
static bool migrate_vma_split_pmd_in(struct folio *folio, struct vm_area_struct *vma,
				     unsigned long addr, void *arg)
{
	if (IS_ALIGNED(addr, PMD_SIZE) && addr >= vma->vm_start &&
	    vma->vm_end - addr >= PMD_SIZE)
		split_huge_pmd_address(vma, addr, false);
	return true;
}

/* The PMD migration entries of entry i's THP, each split into ptes. */
static void migrate_vma_split_migration_pmds(struct migrate_vma_state *mv, unsigned long i,
					     struct folio *folio)
{
	struct rmap_walk_control rwc = { .rmap_one = migrate_vma_split_pmd_in };

	if (mv->vma) {
		split_huge_pmd_address(mv->vma, mv->start + (i << PAGE_SHIFT), false);
		return;
	}
	/* The anon_vma the unmap phase holds keeps the reverse map walkable. */
	rmap_walk(folio, &rwc);
}

/*
 * Split an unmapped THP taken whole, so that its pages move one by one:
 * the PMD migration entries become one per pte, and each page a locked
 * folio of its own holding the reference the core held on the THP.
 */
static bool migrate_vma_split_unmapped(struct migrate_vma_state *mv, unsigned long i)
{
	struct folio *folio = page_folio(migrate_pfn_to_page(mv->src[i]));
	bool fault = folio == mv->fault_folio;
	int ret;

	migrate_vma_split_migration_pmds(mv, i, folio);
	/*
	 * The split allows one reference besides the expected ones. The
	 * fault's stays with the head page, whose folio the fault unlocks.
	 */
	if (fault)
		folio_put(folio);
	ret = folio_split_unmapped(folio, 0);
	if (fault)
		folio_get(folio);
	if (ret)
		return false;
	mv->src[i] &= ~MIGRATE_PFN_COMPOUND;
	return true;
}
#else
static bool migrate_vma_split_unmapped(struct migrate_vma_state *mv, unsigned long i)
{
	return false;
}
#endif

/*
 * Entry i stands for a THP taken whole. A destination of MIGRATE_PFN_COMPOUND
 * takes it whole. Destinations for its pages one by one (or an error entry
 * for one of them) split it, and its entries are then moved as base pages;
 * without any destination it stays, whole. Returns true when the THP was
 * handled whole, moved or not; false when it was split.
 */
static bool migrate_vma_pages_huge(struct migrate_vma_state *mv, unsigned long i)
{
	struct folio *src = page_folio(migrate_pfn_to_page(mv->src[i]));
	struct page *newpage = migrate_pfn_to_page(mv->dst[i]);
	unsigned long k, end = i + MIGRATE_VMA_HUGE_NR;

	if (mv->dst[i] & MIGRATE_PFN_COMPOUND) {
		if (!newpage || !migrate_vma_move_folio(mv, src, page_folio(newpage)))
			migrate_vma_fail_entry(mv, i);
		return true;
	}
	for (k = i; k < end && !mv->dst[k]; k++)
		;
	if (k == end || !migrate_vma_split_unmapped(mv, i)) {
		migrate_vma_fail_entry(mv, i);
		return true;
	}
	return false;
}

/*
 * Phase 4: move each source to its destination, then install the
 * destinations of the empty entries in one walk. An entry that fails
 * loses MIGRATE_PFN_MIGRATE; finalize then restores its source.
 */
static void migrate_vma_phase_pages(struct migrate_vma_state *mv)
{
	unsigned long i, first = ULONG_MAX, last = 0;
	struct page *page, *newpage;
	bool ok;

	for (i = 0; i < mv->npages; i++) {
		if (!(mv->src[i] & MIGRATE_PFN_MIGRATE) || migrate_vma_is_tail(mv->src[i]))
			continue;
		if ((mv->src[i] & MIGRATE_PFN_COMPOUND) && migrate_vma_pages_huge(mv, i))
			continue;
		newpage = migrate_pfn_to_page(mv->dst[i]);
		page = migrate_pfn_to_page(mv->src[i]);
		/* An empty entry is filled with base pages only. */
		if (!newpage || (!page && folio_test_large(page_folio(newpage))))
			ok = false;
		else if (page)
			ok = migrate_vma_move_folio(mv, page_folio(page), page_folio(newpage));
		else
			ok = migrate_vma_prepare_insert(mv, mv->start + (i << PAGE_SHIFT), newpage);
		if (!ok) {
			mv->src[i] &= ~MIGRATE_PFN_MIGRATE;
			mv->cpages--;
		} else if (!page) {
			mv->src[i] |= MIGRATE_VMA_PENDING;
			first = min(first, i);
			last = i;
		}
	}
	if (first != ULONG_MAX)
		migrate_vma_insert_pages(mv, first, last);
}

static int migrate_vma_poison_pte_entry(pte_t *ptep, unsigned long addr, unsigned long next,
					struct mm_walk *walk)
{
	struct folio *folio = walk->private;
	softleaf_t entry = softleaf_from_pte(ptep_get(ptep));

	if (!softleaf_is_migration(entry) || softleaf_to_folio(entry) != folio)
		return 0;
	/* A migration entry counts in the rss; the marker does not. */
	dec_mm_counter(walk->mm, mm_counter(folio));
	set_pte_at(walk->mm, addr, ptep, make_pte_marker(PTE_MARKER_POISONED));
	return 0;
}

static const struct mm_walk_ops migrate_vma_poison_walk_ops = {
	.pte_entry = migrate_vma_poison_pte_entry,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * The driver could not bring this page back: its address in the caller's
 * VMA raises SIGBUS from now on. Replaces the migration entry there with
 * a poison marker; mappings elsewhere get the page back in finalize.
 */
static void migrate_vma_poison_address(struct migrate_vma_state *mv, unsigned long addr,
				       struct folio *folio)
{
	walk_page_range(mv->vma->vm_mm, addr, addr + PAGE_SIZE, &migrate_vma_poison_walk_ops,
			folio);
}

/* Release a destination page that was not used, or the driver's reference. */
static void migrate_vma_release_destination(struct folio *folio)
{
	folio_unlock(folio);
	folio_put(folio);
}

/*
 * Entry i's tails, the THP being handled at i: the folio stands for them,
 * so a destination the driver gave one of them was not used.
 */
static void migrate_vma_release_tail_destinations(struct migrate_vma_state *mv, unsigned long i)
{
	unsigned long k, end = i + migrate_vma_entry_pages(mv, i);
	struct page *newpage;

	for (k = i + 1; k < end; k++) {
		newpage = migrate_pfn_to_page(mv->dst[k]);
		if (newpage)
			migrate_vma_release_destination(page_folio(newpage));
	}
}

/*
 * Whether entry i's new page replaces its migration entry in one walk of
 * the range instead of a reverse map walk: a base page that moved from a
 * VMA where it was mapped only at its own address. The mmap lock keeps
 * fork and mremap from copying or moving that migration entry meanwhile;
 * MADV_DONTNEED may still zap it.
 */
static bool migrate_vma_restores_in_walk(const struct migrate_vma_state *mv, unsigned long i)
{
	unsigned long flags = MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND;
	struct page *dst;

	if (!mv->vma || mv->mapped_elsewhere)
		return false;
	if ((mv->src[i] & flags) != (MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE) ||
	    (mv->dst[i] & (MIGRATE_PFN_VALID | MIGRATE_PFN_COMPOUND)) != MIGRATE_PFN_VALID)
		return false;
	dst = migrate_pfn_to_page(mv->dst[i]);
	/* A THP's tail entry, or a large destination: the reverse map does those. */
	return !PageTail(migrate_pfn_to_page(mv->src[i])) && !folio_test_large(page_folio(dst));
}

/* The pte of @page where @old is the migration entry that stood for it. */
static pte_t migrate_vma_restored_pte(struct vm_area_struct *vma, pte_t old, struct page *page)
{
	softleaf_t entry = softleaf_from_pte(old);
	bool write = softleaf_is_migration_write(entry);
	pte_t pte;

	if (is_device_private_page(page)) {
		/* As on RAM, read-protected by userfaultfd means not writable. */
		if (pte_swp_uffd(old) && userfaultfd_rwp(vma))
			write = false;
		pte = migrate_vma_device_private_pte(page, write);
		if (pte_swp_soft_dirty(old))
			pte = pte_swp_mksoft_dirty(pte);
		if (pte_swp_uffd(old))
			pte = pte_swp_mkuffd(pte);
		return pte;
	}
	pte = mk_pte(page, READ_ONCE(vma->vm_page_prot));
	if (!softleaf_is_migration_young(entry))
		pte = pte_mkold(pte);
	if (softleaf_is_migration_dirty(entry) && folio_test_dirty(page_folio(page)))
		pte = pte_mkdirty(pte);
	if (pte_swp_soft_dirty(old))
		pte = pte_mksoft_dirty(pte);
	else
		pte = pte_clear_soft_dirty(pte);
	if (write)
		pte = pte_mkwrite(pte, vma);
	else if (pte_swp_uffd(old))
		pte = pte_mkuffd(pte);
	/* Read-protected by userfaultfd: no access at all, as do_swap_page() does. */
	if (pte_swp_uffd(old) && userfaultfd_rwp(vma))
		pte = pte_modify(pte, PAGE_NONE);
	return pte;
}

static int migrate_vma_restore_pte_entry(pte_t *ptep, unsigned long addr, unsigned long next,
					 struct mm_walk *walk)
{
	struct migrate_vma_state *mv = walk->private;
	unsigned long i = (addr - mv->start) >> PAGE_SHIFT;
	struct vm_area_struct *vma = walk->vma;
	struct page *page = migrate_pfn_to_page(mv->dst[i]);
	unsigned long src_pfn = mv->src[i] >> MIGRATE_PFN_SHIFT;
	pte_t old = ptep_get(ptep);
	softleaf_t entry;

	/* Zapped since (MADV_DONTNEED): nothing maps the page any more. */
	if (pte_none(old) || pte_present(old))
		return 0;
	entry = softleaf_from_pte(old);
	if (!softleaf_is_migration(entry) || softleaf_to_pfn(entry) != src_pfn)
		return 0;
	folio_get(page_folio(page));	/* the mapping's reference */
	folio_add_anon_rmap_pte(page_folio(page), page, vma, addr,
				softleaf_is_migration_read(entry) ? RMAP_NONE : RMAP_EXCLUSIVE);
	set_pte_at(walk->mm, addr, ptep, migrate_vma_restored_pte(vma, old, page));
	if (vma->vm_flags & VM_LOCKED)
		mlock_drain_local();
	/* It was not present: there is no TLB entry to flush. */
	update_mmu_cache(vma, addr, ptep);
	return 0;
}

/*
 * Migration entries of base pages sit in page tables only: a PMD that
 * maps 2 MiB itself (a THP faulted in after MADV_DONTNEED zapped the
 * run, another driver's device THP) is left whole, not split to be
 * walked.
 */
static int migrate_vma_restore_pmd_entry(pmd_t *pmdp, unsigned long addr, unsigned long next,
					 struct mm_walk *walk)
{
	pmd_t pmd = pmdp_get_lockless(pmdp);

	if (!pmd_present(pmd) || pmd_leaf(pmd))
		walk->action = ACTION_CONTINUE;
	return 0;
}

static const struct mm_walk_ops migrate_vma_restore_walk_ops = {
	.pmd_entry = migrate_vma_restore_pmd_entry,
	.pte_entry = migrate_vma_restore_pte_entry,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * Map the new pages of the entries migrate_vma_restores_in_walk() takes,
 * one walk per run of them: a pte lock per page table instead of an
 * anon_vma lock and a reverse map walk per page. A run holds base pages
 * only, which collect found mapped by ptes, and the mmap lock keeps
 * khugepaged from making a PMD of them since.
 */
static void migrate_vma_restore_runs(struct migrate_vma_state *mv)
{
	unsigned long i = 0, first;

	if (!mv->vma || mv->mapped_elsewhere)
		return;
	while (i < mv->npages) {
		if (!migrate_vma_restores_in_walk(mv, i)) {
			i += migrate_vma_entry_pages(mv, i);
			continue;
		}
		for (first = i; i < mv->npages && migrate_vma_restores_in_walk(mv, i); i++)
			;
		walk_page_range(mv->vma->vm_mm, mv->start + (first << PAGE_SHIFT),
				mv->start + (i << PAGE_SHIFT), &migrate_vma_restore_walk_ops, mv);
	}
}

/*
 * Phase 5: map the destination where the move succeeded and the source
 * again where it failed, then unlock and release every page.
 */
static void migrate_vma_phase_finalize(struct migrate_vma_state *mv)
{
	struct folio *src, *dst;
	struct page *newpage;
	unsigned long i, next;
	bool moved;

	migrate_vma_restore_runs(mv);
	/* A THP may be freed at its head entry: its tails are skipped by index. */
	for (i = 0; i < mv->npages; i = next) {
		next = i + migrate_vma_entry_pages(mv, i);
		if (next > i + 1)
			migrate_vma_release_tail_destinations(mv, i);
		newpage = migrate_pfn_to_page(mv->dst[i]);
		dst = newpage ? page_folio(newpage) : NULL;
		moved = mv->src[i] & MIGRATE_PFN_MIGRATE;
		if (!(mv->src[i] & MIGRATE_PFN_VALID)) {
			/* An empty entry: migrate_vma_insert_pages() mapped dst, if moved. */
			if (dst)
				migrate_vma_release_destination(dst);
			continue;
		}
		src = page_folio(migrate_pfn_to_page(mv->src[i]));
		if (!moved && dst) {
			migrate_vma_release_destination(dst);
			dst = NULL;
		}
		if (!moved && mv->vma && (mv->dst[i] & MIGRATE_PFN_ERROR) &&
		    folio_is_device_private(src) && !folio_test_large(src))
			migrate_vma_poison_address(mv, mv->start + (i << PAGE_SHIFT), src);

		if (dst && !folio_is_zone_device(dst))
			folio_add_lru(dst);
		if (!migrate_vma_restores_in_walk(mv, i))
			remove_migration_ptes(src, dst ?: src, 0);
		if (!moved) {
			migrate_vma_release_source(mv, src, true);
			continue;
		}
		/* Mapped nowhere now: this frees it, or the fault's put does. */
		migrate_vma_unlock_source(mv, src);
		folio_put(src);
		migrate_vma_release_destination(dst);
	}
}

/* Tell a driver that asked that @phase has ended. */
static void migrate_vma_phase_done(const struct migrate_vma_state *mv,
				   enum migrate_vma_phase phase, void *private)
{
	if (mv->ops->phase_done)
		mv->ops->phase_done(phase, private);
}

/* Phases 2 to 5, once collect is done, with the driver's callbacks between them. */
static void migrate_vma_run_phases(struct migrate_vma_state *mv, unsigned long end, void *private)
{
	migrate_vma_phase_done(mv, MIGRATE_VMA_PHASE_COLLECT, private);
	if (mv->cpages) {
		migrate_vma_phase_prepare(mv);
		migrate_vma_phase_done(mv, MIGRATE_VMA_PHASE_PREPARE, private);
	}
	if (mv->cpages) {
		migrate_vma_phase_unmap(mv);
		migrate_vma_phase_done(mv, MIGRATE_VMA_PHASE_UNMAP, private);
	}
	if (mv->cpages) {
		mv->ops->alloc_and_copy(mv->vma, mv->src, mv->dst, mv->start, end,
					private);
		migrate_vma_phase_pages(mv);
		migrate_vma_phase_done(mv, MIGRATE_VMA_PHASE_PAGES, private);
		mv->ops->finalize_and_map(mv->vma, mv->src, mv->dst, mv->start, end,
					  private);
	}
	migrate_vma_phase_finalize(mv);
	migrate_vma_phase_done(mv, MIGRATE_VMA_PHASE_FINALIZE, private);
}

static bool migrate_vma_ops_valid(const struct migrate_vma_ops *ops)
{
	return ops && ops->alloc_and_copy && ops->finalize_and_map &&
		!(ops->flags & ~(MIGRATE_VMA_CORE_COPY | MIGRATE_VMA_SKIP_SYSTEM |
				 MIGRATE_VMA_SKIP_DEVICE));
}

/* Check the arguments of a migration of a range of mv->vma, then run it. */
static int migrate_vma_range(struct migrate_vma_state *mv, unsigned long end,
			     void *private)
{
	struct vm_area_struct *vma = mv->vma;

	if (!migrate_vma_ops_valid(mv->ops) || !vma || !mv->src || !mv->dst)
		return -EINVAL;
	if (!PAGE_ALIGNED(mv->start) || !PAGE_ALIGNED(end) || mv->start >= end ||
	    mv->start < vma->vm_start || end > vma->vm_end)
		return -EINVAL;
	if (is_vm_hugetlb_page(vma) || vma_is_dax(vma) ||
	    (vma->vm_flags & VM_SPECIAL))
		return -EINVAL;
	mmap_assert_locked(vma->vm_mm);

	migrate_vma_phase_collect(mv, end);
	migrate_vma_run_phases(mv, end, private);
	return 0;
}

/**
 * migrate_vma() - migrate the pages of a range of one VMA
 * @ops: the driver's callbacks, pgmap owner and flags
 * @vma: the VMA holding the whole range
 * @start: page-aligned start of the range
 * @end: page-aligned end of the range, after @start
 * @src: array of (@end - @start) / PAGE_SIZE entries, filled with the
 *	source of each page (MIGRATE_PFN_*)
 * @dst: array of as many entries, filled by @ops->alloc_and_copy()
 * @private: passed to the callbacks
 *
 * Moves anonymous system pages (the zero page and empty entries included,
 * which get a new page) and the device-private pages of
 * @ops->pgmap_owner to pages @ops->alloc_and_copy() allocates. Shared,
 * file-backed and KSM pages stay, so do pages that are pinned or locked by
 * someone else. A transparent huge page the range covers whole moves whole
 * when the driver gives it a destination of its size, is split when it
 * gives base pages, and stays whole without any; another driver's
 * device-private THP stays whole where it is.
 * A page that cannot move stays where it was, mapped as before, and its
 * @src entry has no MIGRATE_PFN_MIGRATE once the call returns. See &struct migrate_vma_ops
 * for the callbacks' contract.
 *
 * Context: Process context, may sleep. The caller holds the mmap lock of
 * @vma->vm_mm (read is enough) for the whole call.
 * Return: 0, even when no page moved (check @src); -EINVAL when the
 * arguments are wrong: bad @ops or flags, no arrays, an empty or unaligned
 * range or one not inside @vma, or a VMA of a kind pages cannot be moved
 * out of (hugetlbfs, DAX, PFN or I/O mappings).
 */
int migrate_vma(const struct migrate_vma_ops *ops, struct vm_area_struct *vma,
		unsigned long start, unsigned long end, unsigned long *src,
		unsigned long *dst, void *private)
{
	struct migrate_vma_state mv = {
		.ops = ops,
		.vma = vma,
		.start = start,
		.src = src,
		.dst = dst,
	};

	return migrate_vma_range(&mv, end, private);
}
EXPORT_SYMBOL_GPL(migrate_vma);

/**
 * migrate_vma_fault() - migrate_vma() from a CPU fault on a device page
 * @ops: as for migrate_vma()
 * @vmf: the fault handed to &dev_pagemap_ops.migrate_to_ram()
 * @start: page-aligned start of the range, in @vmf->vma
 * @end: page-aligned end of the range, which holds @vmf->address
 * @src: as for migrate_vma()
 * @dst: as for migrate_vma()
 * @private: passed to the callbacks
 *
 * The fault that calls migrate_to_ram() holds the lock of the faulting
 * page, @vmf->page, and unlocks it after the call. migrate_vma() would
 * find that page locked by someone else and leave it where it is, so the
 * CPU would fault on it forever; this call takes the fault's lock as its
 * own for that page instead, and leaves it locked. Other pages of the
 * range are handled as by migrate_vma().
 *
 * Context: Process context, may sleep, from migrate_to_ram(): the mmap lock
 * of @vmf->vma->vm_mm is held for reading and @vmf->page is locked.
 * Return: as for migrate_vma(); -EINVAL too when @vmf->address is outside
 * the range or @vmf->page is not locked.
 */
int migrate_vma_fault(const struct migrate_vma_ops *ops, struct vm_fault *vmf,
		      unsigned long start, unsigned long end, unsigned long *src,
		      unsigned long *dst, void *private)
{
	struct migrate_vma_state mv = {
		.ops = ops,
		.vma = vmf->vma,
		.start = start,
		.src = src,
		.dst = dst,
	};

	if (vmf->address < start || vmf->address >= end || !vmf->page ||
	    !folio_test_locked(page_folio(vmf->page)))
		return -EINVAL;
	mv.fault_folio = page_folio(vmf->page);
	mv.fault_page = vmf->page;
	return migrate_vma_range(&mv, end, private);
}
EXPORT_SYMBOL_GPL(migrate_vma_fault);

/*
 * Evicting, a device THP is taken whole when it is mapped by PMDs only
 * and its pages are all given, in order, from its head. Returns the
 * entries that stand for @folio, 0 when it is not taken whole.
 */
static unsigned long migrate_vma_evict_pages(const struct migrate_vma_state *mv,
					     unsigned long npages, struct page *page,
					     struct folio *folio)
{
	unsigned long k, nr = folio_nr_pages(folio);

	if (nr == 1)
		return 1;
	if (nr != MIGRATE_VMA_HUGE_NR || page != &folio->page || npages - mv->npages < nr ||
	    folio_mapcount(folio) != folio_entire_mapcount(folio))
		return 0;
	for (k = 1; k < nr; k++)
		if (migrate_pfn_to_page(mv->src[mv->npages + k]) != folio_page(folio, k))
			return 0;
	return nr;
}

/*
 * Take the pages named in @src as the sources; skip the ones not usable.
 * A large folio not taken whole (mapped by ptes after a partial munmap or
 * mprotect, or not given whole) is split once, and its pages are taken
 * one by one.
 */
static void migrate_vma_evict_collect(struct migrate_vma_state *mv, unsigned long npages)
{
	unsigned long k, nr, mpfn, given;
	bool split_tried = false;
	struct folio *folio;
	struct page *page;

	while (mv->npages < npages) {
		given = mv->src[mv->npages];
		page = migrate_pfn_to_page(given);
		mv->dst[mv->npages] = 0;
		mv->src[mv->npages] = 0;
		/* A free page has no reference to take: nothing to move. */
		if (!page || !is_device_private_page(page) ||
		    page_pgmap(page)->owner != mv->ops->pgmap_owner) {
			split_tried = false;
			mv->npages++;
			continue;
		}
		folio = page_folio(page);
		if (!folio_try_get(folio)) {
			split_tried = false;
			mv->npages++;
			continue;
		}
		/* Split meanwhile: the reference is on another folio than the page's. */
		nr = 0;
		if (page_folio(page) == folio)
			nr = migrate_vma_evict_pages(mv, npages, page, folio);
		if (!nr && folio_test_large(folio) && !split_tried) {
			split_tried = true;
			/* Consumes the reference; look at the page again. */
			if (migrate_vma_split_large_folio(mv, folio)) {
				mv->src[mv->npages] = given;
				continue;
			}
			split_tried = false;
			mv->npages++;
			continue;
		}
		split_tried = false;
		if (!nr) {
			folio_put(folio);
			mv->npages++;
			continue;
		}
		mpfn = migrate_pfn(folio_pfn(folio)) | MIGRATE_PFN_MIGRATE;
		migrate_vma_add_entry(mv, mpfn | (nr > 1 ? MIGRATE_PFN_COMPOUND : 0));
		for (k = 1; k < nr; k++)
			migrate_vma_add_entry(mv, mpfn + (k << MIGRATE_PFN_SHIFT));
	}
}

/**
 * migrate_vma_evict() - bring device-private pages back to RAM, by pfn
 * @ops: the driver's callbacks and pgmap owner; no flags
 * @src: array of @npages entries, each migrate_pfn() of a device-private
 *	page of @ops->pgmap_owner; overwritten as in migrate_vma()
 * @dst: array of @npages entries, filled by @ops->alloc_and_copy()
 * @npages: number of entries
 * @private: passed to the callbacks
 *
 * For a driver that must empty its memory without knowing where the pages
 * are mapped, on unload say: the pages are found through the reverse map
 * and every mapping of each is moved. Free pages are skipped. A device THP
 * mapped by PMDs is taken whole when its pages are given in order from
 * its head, and then moves whole (to a destination of its size), or as
 * base pages when @ops->alloc_and_copy() gives destinations for its pages
 * one by one: its PMD is then split in every VMA that maps it. Any other
 * large folio is split first, and its pages move one by one. The
 * callbacks are called with a NULL VMA and a range from 0 to
 * @npages * PAGE_SIZE, so that they find the number of entries as usual.
 *
 * Context: Process context, may sleep. No mmap lock needed.
 * Return: 0, even when no page moved; -EINVAL for bad arguments, -ENOMEM
 * when the call's own bookkeeping could not be allocated.
 */
int migrate_vma_evict(const struct migrate_vma_ops *ops, unsigned long *src,
		      unsigned long *dst, unsigned long npages, void *private)
{
	struct migrate_vma_state mv = {
		.ops = ops,
		.src = src,
		.dst = dst,
	};
	unsigned long i;

	if (!migrate_vma_ops_valid(ops) || ops->flags || !ops->pgmap_owner || !src || !dst)
		return -EINVAL;
	mv.anon_vmas = kcalloc(npages, sizeof(*mv.anon_vmas), GFP_KERNEL);
	if (!mv.anon_vmas)
		return -ENOMEM;
	migrate_vma_evict_collect(&mv, npages);
	migrate_vma_run_phases(&mv, npages << PAGE_SHIFT, private);
	for (i = 0; i < npages; i++)
		if (mv.anon_vmas[i])
			put_anon_vma(mv.anon_vmas[i]);
	kfree(mv.anon_vmas);
	return 0;
}
EXPORT_SYMBOL_GPL(migrate_vma_evict);
