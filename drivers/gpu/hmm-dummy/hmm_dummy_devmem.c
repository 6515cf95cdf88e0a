// SPDX-License-Identifier: GPL-2.0-only
/*
 * hmm_dummy device memory: chunks of device-private memory registered with
 * memremap_pages() and a free list of their pages.
 *
 * Device-private pages have struct pages but no CPU-addressable memory:
 * the CPU can never map them, and the core calls back into the driver when
 * it needs their contents (migrate_to_ram) or when the last reference to
 * one goes away (folio_free).
 *
 * The pretend device keeps the data of a page in use in a system page of
 * its own, its backing storage, found through the zone_device_data of its
 * folio's head page: a device THP has 512 contiguous backing pages, one
 * allocation of order PMD_ORDER that is freed in one call, or split into
 * pages of their own when the THP is split (BACKING_WHOLE says which). A
 * free page uses that field to link a free list instead.
 *
 * Two free lists: whole free blocks of 2 MiB (PMD_ORDER), which device
 * THPs are made of, and base pages. A base page is taken from a block
 * only when no free base page is left. Each block counts its pages on the
 * base list; once all 512 are there again, the next device THP that finds
 * no free block makes them one, so that base pages coming and going do
 * not use up the blocks for good.
 */
#include <linux/delay.h>
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "hmm_dummy.h"

/* Eviction rounds before the driver says that pages will not come back. */
#define HMM_DUMMY_EVICT_WARN_TRIES	50

static struct hmm_dummy_chunk *page_to_chunk(struct page *page)
{
	return container_of(page_pgmap(page), struct hmm_dummy_chunk, pagemap);
}

#define HMM_DUMMY_BLOCK_PAGES	BIT(PMD_ORDER)

/* In a device THP's zone_device_data: its backing is not split yet. */
#define BACKING_WHOLE	1UL

static struct page *folio_backing(struct folio *folio)
{
	return (struct page *)((unsigned long)folio->page.zone_device_data & ~BACKING_WHOLE);
}

static bool folio_backing_whole(struct folio *folio)
{
	return (unsigned long)folio->page.zone_device_data & BACKING_WHOLE;
}

/* Marks a block being made whole again; the low bits count what is left. */
#define BLOCK_MERGING	0x8000

/* The free count of the block @page is in, NULL for a page outside blocks. */
static u16 *block_free_count(struct page *page)
{
	struct hmm_dummy_chunk *chunk = page_to_chunk(page);
	unsigned long pfn = page_to_pfn(page), block;

	if (pfn < chunk->first_block_pfn)
		return NULL;
	block = (pfn - chunk->first_block_pfn) / HMM_DUMMY_BLOCK_PAGES;
	return block < chunk->nr_blocks ? &chunk->block_free[block] : NULL;
}

static void push_free_page(struct hmm_dummy_device *hdev, struct page *page)
{
	u16 *count = block_free_count(page);

	lockdep_assert_held(&hdev->free_lock);
	page->zone_device_data = hdev->free_pages;
	hdev->free_pages = page;
	hdev->nr_free++;
	if (count && ++*count == HMM_DUMMY_BLOCK_PAGES)
		hdev->nr_mergeable++;
}

/* Take the first free base page off its list, NULL when there is none. */
static struct page *pop_free_page(struct hmm_dummy_device *hdev)
{
	struct page *page = hdev->free_pages;
	u16 *count;

	lockdep_assert_held(&hdev->free_lock);
	if (!page)
		return NULL;
	hdev->free_pages = page->zone_device_data;
	hdev->nr_free--;
	count = block_free_count(page);
	if (count && (*count)-- == HMM_DUMMY_BLOCK_PAGES)
		hdev->nr_mergeable--;
	return page;
}

static void push_free_block(struct hmm_dummy_device *hdev, struct page *head)
{
	lockdep_assert_held(&hdev->free_lock);
	head->zone_device_data = hdev->free_blocks;
	hdev->free_blocks = head;
	hdev->nr_free_blocks++;
	hdev->nr_free += HMM_DUMMY_BLOCK_PAGES;
}

static struct page *pop_free_block(struct hmm_dummy_device *hdev)
{
	struct page *head = hdev->free_blocks;

	lockdep_assert_held(&hdev->free_lock);
	if (head) {
		hdev->free_blocks = head->zone_device_data;
		hdev->nr_free_blocks--;
		hdev->nr_free -= HMM_DUMMY_BLOCK_PAGES;
	}
	return head;
}

/* Base pages run out: make one free block base pages. */
static void break_free_block(struct hmm_dummy_device *hdev)
{
	struct page *head = pop_free_block(hdev);
	unsigned long i;

	for (i = 0; head && i < HMM_DUMMY_BLOCK_PAGES; i++)
		push_free_page(hdev, head + i);
}

/*
 * Every block whose 512 pages are all free base pages leaves the base
 * list and becomes a free block again: one walk of the list, under the
 * lock, done only when a device THP finds no free block and there is
 * such a block to make.
 */
static void merge_free_blocks(struct hmm_dummy_device *hdev)
{
	struct page **link = &hdev->free_pages, *page;
	u16 *count;

	lockdep_assert_held(&hdev->free_lock);
	if (!hdev->nr_mergeable)
		return;
	while ((page = *link)) {
		count = block_free_count(page);
		if (!count || !(*count == HMM_DUMMY_BLOCK_PAGES || (*count & BLOCK_MERGING))) {
			link = (struct page **)&page->zone_device_data;
			continue;
		}
		if (*count == HMM_DUMMY_BLOCK_PAGES)
			*count = BLOCK_MERGING | HMM_DUMMY_BLOCK_PAGES;
		*link = page->zone_device_data;
		hdev->nr_free--;
		if (--*count != BLOCK_MERGING)
			continue;
		/* The block's last page has left the list: a block again. */
		*count = 0;
		hdev->nr_mergeable--;
		push_free_block(hdev, pfn_to_page(ALIGN_DOWN(page_to_pfn(page),
							     HMM_DUMMY_BLOCK_PAGES)));
	}
}

/*
 * The core calls this when the last reference to a device folio is gone:
 * drop its backing storage and put its pages back on a free list.
 */
static void hmm_dummy_folio_free(struct folio *folio)
{
	struct hmm_dummy_device *hdev = page_to_chunk(&folio->page)->hdev;
	struct page *backing = folio_backing(folio);
	unsigned long flags, i, nr = folio_nr_pages(folio);

	if (folio_backing_whole(folio))
		__free_pages(backing, PMD_ORDER);
	else
		for (i = 0; i < nr; i++)
			__free_page(backing + i);
	spin_lock_irqsave(&hdev->free_lock, flags);
	if (nr == HMM_DUMMY_BLOCK_PAGES)
		push_free_block(hdev, &folio->page);
	else
		push_free_page(hdev, &folio->page);
	spin_unlock_irqrestore(&hdev->free_lock, flags);
}

/*
 * The core split a device THP (a CPU fault on part of it, or a migration):
 * each new folio keeps the backing pages of its own pages, which the first
 * call makes pages of their own. It runs once per new folio, then once with
 * no @tail.
 */
static void hmm_dummy_folio_split(struct folio *head, struct folio *tail)
{
	struct page *backing = folio_backing(head);

	if (folio_backing_whole(head)) {
		split_page(backing, PMD_ORDER);
		head->page.zone_device_data = backing;
	}
	if (!tail)
		return;
	tail->pgmap = head->pgmap;
	tail->page.mapping = head->page.mapping;
	tail->page.zone_device_data = backing + (folio_pfn(tail) - folio_pfn(head));
}

static const struct dev_pagemap_ops hmm_dummy_devmem_ops = {
	.folio_free = hmm_dummy_folio_free,
	.folio_split = hmm_dummy_folio_split,
	.migrate_to_ram = hmm_dummy_migrate_to_ram,
};

static void free_chunk_pages(struct hmm_dummy_chunk *chunk)
{
	struct hmm_dummy_device *hdev = chunk->hdev;
	unsigned long pfn = PHYS_PFN(chunk->pagemap.range.start);
	unsigned long end = PHYS_PFN(chunk->pagemap.range.end + 1);

	spin_lock_irq(&hdev->free_lock);
	while (pfn < end) {
		if (IS_ALIGNED(pfn, HMM_DUMMY_BLOCK_PAGES) && end - pfn >= HMM_DUMMY_BLOCK_PAGES) {
			push_free_block(hdev, pfn_to_page(pfn));
			pfn += HMM_DUMMY_BLOCK_PAGES;
		} else {
			push_free_page(hdev, pfn_to_page(pfn++));
		}
	}
	/* The region was rounded up to whole memory sections. */
	hdev->pages_total += end - PHYS_PFN(chunk->pagemap.range.start);
	spin_unlock_irq(&hdev->free_lock);
}

/* The whole 2 MiB blocks of the chunk at @res, and their free counts. */
static int chunk_init_blocks(struct hmm_dummy_chunk *chunk, const struct resource *res)
{
	unsigned long end = PHYS_PFN(res->end + 1);

	chunk->first_block_pfn = ALIGN(PHYS_PFN(res->start), HMM_DUMMY_BLOCK_PAGES);
	if (end > chunk->first_block_pfn)
		chunk->nr_blocks = (end - chunk->first_block_pfn) / HMM_DUMMY_BLOCK_PAGES;
	chunk->block_free = kcalloc(chunk->nr_blocks, sizeof(*chunk->block_free), GFP_KERNEL);
	return chunk->block_free ? 0 : -ENOMEM;
}

/**
 * hmm_dummy_add_chunk() - register one more chunk of device memory
 * @hdev: the device to grow
 *
 * Takes a free range of physical addresses, registers it as device-private
 * memory owned by @hdev and puts all its pages on the free list.
 *
 * Context: Process context, may sleep.
 * Return: 0, or a negative errno when no range or no memory for its
 * struct pages could be had.
 */
int hmm_dummy_add_chunk(struct hmm_dummy_device *hdev)
{
	struct hmm_dummy_chunk *chunk;
	struct resource *res;
	void *addr;
	int ret;

	chunk = kzalloc_obj(*chunk);
	if (!chunk)
		return -ENOMEM;

	res = request_free_mem_region(&iomem_resource, hmm_dummy_chunk_bytes,
				      dev_name(&hdev->dev));
	if (IS_ERR(res)) {
		ret = PTR_ERR(res);
		goto err_free_chunk;
	}

	ret = chunk_init_blocks(chunk, res);
	if (ret)
		goto err_release_region;
	chunk->hdev = hdev;
	chunk->pagemap.type = MEMORY_DEVICE_PRIVATE;
	chunk->pagemap.range.start = res->start;
	chunk->pagemap.range.end = res->end;
	chunk->pagemap.nr_range = 1;
	chunk->pagemap.ops = &hmm_dummy_devmem_ops;
	/* Lets the core tell this device's pages from any other's. */
	chunk->pagemap.owner = hdev;

	addr = memremap_pages(&chunk->pagemap, numa_node_id());
	if (IS_ERR(addr)) {
		ret = PTR_ERR(addr);
		goto err_release_region;
	}

	mutex_lock(&hdev->chunks_lock);
	list_add_tail(&chunk->link, &hdev->chunks);
	hdev->nr_chunks++;
	free_chunk_pages(chunk);
	mutex_unlock(&hdev->chunks_lock);
	return 0;

err_release_region:
	kfree(chunk->block_free);
	release_mem_region(res->start, resource_size(res));
err_free_chunk:
	kfree(chunk);
	return ret;
}

/**
 * hmm_dummy_evict_all() - bring every device page in use back to RAM
 * @hdev: the device
 * @hfile: the file that asked (RELEASE), whose FAIL_ALLOC flag counts;
 *	NULL on unload
 *
 * Context: Process context, may sleep.
 * Return: the number of pages moved.
 */
unsigned long hmm_dummy_evict_all(struct hmm_dummy_device *hdev, struct hmm_dummy_file *hfile)
{
	struct hmm_dummy_chunk *chunk;
	unsigned long moved = 0;

	mutex_lock(&hdev->chunks_lock);
	list_for_each_entry(chunk, &hdev->chunks, link)
		moved += hmm_dummy_evict_range(hdev, hfile, PHYS_PFN(chunk->pagemap.range.start),
					       range_len(&chunk->pagemap.range) >> PAGE_SHIFT);
	mutex_unlock(&hdev->chunks_lock);
	return moved;
}

/*
 * Pages of processes that are still alive keep the chunks in use, and
 * memunmap_pages() would wait for them forever: move them back to RAM. A
 * page held for a moment (a racing CPU fault migrating it) is retried.
 */
static void evict_before_removal(struct hmm_dummy_device *hdev)
{
	unsigned int tries = 0;

	while (hmm_dummy_pages_used(hdev)) {
		hmm_dummy_evict_all(hdev, NULL);
		if (!hmm_dummy_pages_used(hdev))
			break;
		if (++tries == HMM_DUMMY_EVICT_WARN_TRIES)
			dev_warn(&hdev->dev, "%lu device pages still in use\n",
				 hmm_dummy_pages_used(hdev));
		msleep(20);
	}
}

/**
 * hmm_dummy_remove_chunks() - unregister all device memory of a device
 * @hdev: the device, no longer reachable from user space
 *
 * Pages still used by processes are moved back to RAM first;
 * memunmap_pages() then waits until every page of a chunk is free, so by
 * the time this returns no struct page of @hdev is in use anywhere.
 *
 * Context: Process context, may sleep.
 */
void hmm_dummy_remove_chunks(struct hmm_dummy_device *hdev)
{
	struct hmm_dummy_chunk *chunk, *next;
	struct range *range;

	evict_before_removal(hdev);
	mutex_lock(&hdev->chunks_lock);
	list_for_each_entry_safe(chunk, next, &hdev->chunks, link) {
		range = &chunk->pagemap.range;
		memunmap_pages(&chunk->pagemap);
		release_mem_region(range->start, range_len(range));
		list_del(&chunk->link);
		kfree(chunk->block_free);
		kfree(chunk);
	}
	hdev->nr_chunks = 0;
	/* The free list pointed into the chunks just removed. */
	spin_lock_irq(&hdev->free_lock);
	hdev->free_pages = NULL;
	hdev->free_blocks = NULL;
	hdev->nr_free_blocks = 0;
	hdev->nr_free = 0;
	hdev->nr_mergeable = 0;
	hdev->pages_total = 0;
	spin_unlock_irq(&hdev->free_lock);
	mutex_unlock(&hdev->chunks_lock);
}

/* Fill @pages[0..@nr) with system pages: as many as can be had. */
static unsigned long alloc_backing(struct page **pages, unsigned long nr)
{
	unsigned long got = 0, before;

	memset(pages, 0, nr * sizeof(*pages));
	do {
		before = got;
		got = alloc_pages_bulk(GFP_HIGHUSER, nr, pages);
	} while (got < nr && got > before);
	return got;
}

/*
 * Swap each of the @nr backing pages @pages holds for a device base page
 * off the free lists that keeps it, in one round of the lock; stop when
 * the device memory is full.
 */
static unsigned long take_free_pages(struct hmm_dummy_device *hdev, struct page **pages,
				     unsigned long nr)
{
	struct page *page;
	unsigned long got;

	spin_lock_irq(&hdev->free_lock);
	for (got = 0; got < nr; got++) {
		if (!hdev->free_pages)
			break_free_block(hdev);
		page = pop_free_page(hdev);
		if (!page)
			break;
		page->zone_device_data = pages[got];
		pages[got] = page;
	}
	spin_unlock_irq(&hdev->free_lock);
	return got;
}

/**
 * hmm_dummy_alloc_pages() - take device base pages off the free list
 * @hdev: the device
 * @pages: where the pages go, room for @nr
 * @nr: how many pages are wanted
 *
 * A migration of base pages asks for all of its batch at once: their
 * backing storage comes from one bulk allocation and the device pages
 * from one round of the free list's lock.
 *
 * Context: Process context, may sleep.
 * Return: how many pages @pages starts with, each locked, with one
 * reference and backing storage that the caller fills (it is not
 * zeroed); fewer than @nr when the device memory is full or no more
 * backing storage could be had.
 */
unsigned long hmm_dummy_alloc_pages(struct hmm_dummy_device *hdev, struct page **pages,
				    unsigned long nr)
{
	unsigned long nr_backing, got, k;

	/*
	 * No backing for more pages than are free: a full device would cost
	 * a batch's worth of system memory for nothing. The backing stands
	 * for device memory, which no mempolicy of the task places.
	 */
	nr = min(nr, hmm_dummy_pages_free(hdev));
	nr_backing = alloc_backing(pages, nr);
	got = take_free_pages(hdev, pages, nr_backing);
	for (k = got; k < nr_backing; k++)
		__free_page(pages[k]);
	for (k = 0; k < got; k++)
		zone_device_page_init(pages[k], page_pgmap(pages[k]), 0);
	return got;
}

/**
 * hmm_dummy_alloc_huge() - take a device THP off the free blocks
 * @hdev: the device
 *
 * Context: Process context, may sleep.
 * Return: the head page of an order PMD_ORDER device folio, locked, with
 * one reference and backing storage that the caller fills (it is not
 * zeroed); NULL when no free block or no backing storage is left, or THPs
 * cannot move whole on this kernel.
 */
struct page *hmm_dummy_alloc_huge(struct hmm_dummy_device *hdev)
{
	struct page *backing, *page;

	if (!IS_ENABLED(CONFIG_ARCH_HAS_PMD_SOFTLEAVES))
		return NULL;
	/* Not compound: split_page() can split it if the THP is split. */
	backing = alloc_pages(GFP_HIGHUSER | __GFP_NORETRY | __GFP_NOWARN, PMD_ORDER);
	if (!backing) {
		atomic_long_inc(&hdev->huge_no_backing);
		return NULL;
	}

	spin_lock_irq(&hdev->free_lock);
	if (!hdev->free_blocks)
		merge_free_blocks(hdev);
	page = pop_free_block(hdev);
	spin_unlock_irq(&hdev->free_lock);
	if (!page) {
		atomic_long_inc(&hdev->huge_no_block);
		__free_pages(backing, PMD_ORDER);
		return NULL;
	}
	zone_device_folio_init(page_folio(page), page_pgmap(page), PMD_ORDER);
	page->zone_device_data = (void *)((unsigned long)backing | BACKING_WHOLE);
	return page;
}

/**
 * hmm_dummy_page_data() - the page holding the data of a device page
 * @page: a device page in use (of any folio size), or a system page
 *
 * Context: Any context; @page must not be freed meanwhile.
 * Return: the backing storage of a device page of this driver, or @page
 * itself for a system page.
 */
struct page *hmm_dummy_page_data(struct page *page)
{
	struct folio *folio;

	if (!is_device_private_page(page) || page_pgmap(page)->ops != &hmm_dummy_devmem_ops)
		return page;
	folio = page_folio(page);
	return folio_backing(folio) + folio_page_idx(folio, page);
}

/**
 * hmm_dummy_pages_free() - count the free device pages of a device
 * @hdev: the device
 *
 * Context: Any context.
 * Return: the number of pages on the free list.
 */
unsigned long hmm_dummy_pages_free(struct hmm_dummy_device *hdev)
{
	unsigned long flags, nr;

	spin_lock_irqsave(&hdev->free_lock, flags);
	nr = hdev->nr_free;
	spin_unlock_irqrestore(&hdev->free_lock, flags);
	return nr;
}

/**
 * hmm_dummy_pages_used() - count the device pages holding user data
 * @hdev: the device
 *
 * Context: Any context.
 * Return: the pages of all chunks that are not on the free list.
 */
unsigned long hmm_dummy_pages_used(struct hmm_dummy_device *hdev)
{
	unsigned long flags, nr;

	spin_lock_irqsave(&hdev->free_lock, flags);
	nr = hdev->pages_total - hdev->nr_free;
	spin_unlock_irqrestore(&hdev->free_lock, flags);
	return nr;
}
