/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hmm_dummy: user interface of the dummy HMM device driver.
 *
 * Each /dev/hmm_dummyN is a pretend device with its own device-private
 * memory. The ioctls below let a test drive the device and observe it.
 * Numbers 0x00 to 0x3f are kept for the commands shared with the base
 * tree's lib/test_hmm_uapi.h (same numbers and layouts); the driver's own
 * commands start at 0x40.
 */
#ifndef _UAPI_LINUX_HMM_DUMMY_H
#define _UAPI_LINUX_HMM_DUMMY_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define HMM_DUMMY_IOC_MAGIC	'H'

/**
 * struct hmm_dummy_info - what a device reports about itself
 * @device: N in /dev/hmm_dummyN
 * @nr_chunks: how many chunks of device-private memory are registered
 * @chunk_bytes: size of one chunk, in bytes
 * @pages_total: device pages in all registered chunks
 * @pages_free: device pages on the free list, not backing any user data
 */
struct hmm_dummy_info {
	__u32 device;
	__u32 nr_chunks;
	__u64 chunk_bytes;
	__u64 pages_total;
	__u64 pages_free;
};

/* Fill a struct hmm_dummy_info for the device the file was opened on. */
#define HMM_DUMMY_INFO		_IOR(HMM_DUMMY_IOC_MAGIC, 0x40, struct hmm_dummy_info)

#endif /* _UAPI_LINUX_HMM_DUMMY_H */
