// SPDX-License-Identifier: GPL-2.0-only
/*
 * hmm_dummy device memory: chunks of device-private memory registered with
 * memremap_pages() and a free list of their pages.
 *
 * Device-private pages have struct pages but no CPU-addressable memory:
 * the CPU can never map them, and the core calls back into the driver when
 * it needs their contents (migrate_to_ram) or when the last reference to
 * one goes away (page_free).
 */
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "hmm_dummy.h"

static struct hmm_dummy_chunk *page_to_chunk(struct page *page)
{
	return container_of(page->pgmap, struct hmm_dummy_chunk, pagemap);
}

static void push_free_page(struct hmm_dummy_device *hdev, struct page *page)
{
	lockdep_assert_held(&hdev->free_lock);
	page->zone_device_data = hdev->free_pages;
	hdev->free_pages = page;
	hdev->nr_free++;
}

/* The core calls this when the last reference to a device page is gone. */
static void hmm_dummy_page_free(struct page *page)
{
	struct hmm_dummy_device *hdev = page_to_chunk(page)->hdev;
	unsigned long flags;

	spin_lock_irqsave(&hdev->free_lock, flags);
	push_free_page(hdev, page);
	spin_unlock_irqrestore(&hdev->free_lock, flags);
}

/*
 * The driver never gives a device page to a process yet, so no CPU page
 * table can hold an entry that faults here. Should one ever appear, a
 * SIGBUS is the honest answer: there is no data to bring back.
 */
static vm_fault_t hmm_dummy_migrate_to_ram(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static const struct dev_pagemap_ops hmm_dummy_devmem_ops = {
	.page_free = hmm_dummy_page_free,
	.migrate_to_ram = hmm_dummy_migrate_to_ram,
};

static void free_chunk_pages(struct hmm_dummy_chunk *chunk)
{
	struct hmm_dummy_device *hdev = chunk->hdev;
	unsigned long pfn = PHYS_PFN(chunk->pagemap.range.start);
	unsigned long end = PHYS_PFN(chunk->pagemap.range.end + 1);

	spin_lock_irq(&hdev->free_lock);
	for (; pfn < end; pfn++)
		push_free_page(hdev, pfn_to_page(pfn));
	spin_unlock_irq(&hdev->free_lock);
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

	chunk = kzalloc(sizeof(*chunk), GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;

	res = request_free_mem_region(&iomem_resource, hmm_dummy_chunk_bytes,
				      dev_name(&hdev->dev));
	if (IS_ERR(res)) {
		ret = PTR_ERR(res);
		goto err_free_chunk;
	}

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
	/* The region was rounded up to whole memory sections. */
	hdev->pages_total += resource_size(res) >> PAGE_SHIFT;
	mutex_unlock(&hdev->chunks_lock);

	free_chunk_pages(chunk);
	return 0;

err_release_region:
	release_mem_region(res->start, resource_size(res));
err_free_chunk:
	kfree(chunk);
	return ret;
}

/**
 * hmm_dummy_remove_chunks() - unregister all device memory of a device
 * @hdev: the device, no longer reachable from user space
 *
 * memunmap_pages() waits until every page of a chunk is free, so by the
 * time this returns no struct page of @hdev is in use anywhere.
 *
 * Context: Process context, may sleep.
 */
void hmm_dummy_remove_chunks(struct hmm_dummy_device *hdev)
{
	struct hmm_dummy_chunk *chunk, *next;
	struct range *range;

	mutex_lock(&hdev->chunks_lock);
	list_for_each_entry_safe(chunk, next, &hdev->chunks, link) {
		range = &chunk->pagemap.range;
		memunmap_pages(&chunk->pagemap);
		release_mem_region(range->start, range_len(range));
		list_del(&chunk->link);
		kfree(chunk);
	}
	hdev->nr_chunks = 0;
	hdev->pages_total = 0;
	mutex_unlock(&hdev->chunks_lock);

	/* The free list pointed into the chunks just removed. */
	spin_lock_irq(&hdev->free_lock);
	hdev->free_pages = NULL;
	hdev->nr_free = 0;
	spin_unlock_irq(&hdev->free_lock);
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
