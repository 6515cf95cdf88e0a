/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hmm_dummy: definitions shared by the files of the dummy HMM driver.
 */
#ifndef _HMM_DUMMY_H
#define _HMM_DUMMY_H

#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/list.h>
#include <linux/memremap.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>

struct hmm_dummy_device;

/**
 * struct hmm_dummy_chunk - one range of device-private memory
 * @pagemap: the ZONE_DEVICE registration; its range is the chunk's
 *	physical addresses, taken from the free part of iomem
 * @hdev: the device owning the chunk
 * @link: entry in &hmm_dummy_device.chunks
 */
struct hmm_dummy_chunk {
	struct dev_pagemap pagemap;
	struct hmm_dummy_device *hdev;
	struct list_head link;
};

/**
 * struct hmm_dummy_device - one /dev/hmm_dummyN
 * @dev: the device behind the character device node
 * @cdev: the character device
 * @index: N in /dev/hmm_dummyN
 * @chunks_lock: serialises adding and removing chunks
 * @chunks: the registered chunks, under @chunks_lock
 * @nr_chunks: length of @chunks, under @chunks_lock
 * @free_lock: protects @free_pages and @nr_free; taken from page_free(),
 *	which may run in any context, so it is a spinlock
 * @free_pages: free device pages, linked through page->zone_device_data
 * @nr_free: length of @free_pages
 */
struct hmm_dummy_device {
	struct device dev;
	struct cdev cdev;
	unsigned int index;

	/* Sleeps: memunmap_pages() waits under it. */
	struct mutex chunks_lock;
	struct list_head chunks;
	unsigned int nr_chunks;

	/* page_free() may be called in atomic context. */
	spinlock_t free_lock;
	struct page *free_pages;
	unsigned long nr_free;
};

extern unsigned long hmm_dummy_chunk_bytes;

int hmm_dummy_add_chunk(struct hmm_dummy_device *hdev);
void hmm_dummy_remove_chunks(struct hmm_dummy_device *hdev);
unsigned long hmm_dummy_pages_free(struct hmm_dummy_device *hdev);

#endif /* _HMM_DUMMY_H */
