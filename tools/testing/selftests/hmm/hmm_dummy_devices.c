// SPDX-License-Identifier: GPL-2.0
/*
 * The character devices of hmm_dummy: every /dev/hmm_dummyN opens, reports
 * its own index and its device memory, and refuses what it does not know.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "hmm_dummy_uapi.h"

#include "../kselftest_harness.h"

#define DEVICE_GLOB "/dev/hmm_dummy[0-9]*"

/* How many /dev/hmm_dummyN nodes exist; the test needs the module loaded. */
static int count_devices(void)
{
	glob_t g;
	int n;

	if (glob(DEVICE_GLOB, 0, NULL, &g))
		return 0;
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

static int open_device(int index)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/hmm_dummy%d", index);
	return open(path, O_RDWR | O_CLOEXEC);
}

FIXTURE(devices)
{
	int nr;
};

FIXTURE_SETUP(devices)
{
	self->nr = count_devices();
	if (!self->nr)
		SKIP(return, "no /dev/hmm_dummyN: is the hmm_dummy module loaded?");
}

FIXTURE_TEARDOWN(devices)
{
}

/* Nodes are numbered 0..N-1 with no gap, and each opens and closes. */
TEST_F(devices, open_close_every_device)
{
	int i, fd;

	for (i = 0; i < self->nr; i++) {
		fd = open_device(i);
		ASSERT_GE(fd, 0) TH_LOG("open /dev/hmm_dummy%d: %s", i, strerror(errno));
		ASSERT_EQ(close(fd), 0);
	}
}

/* Each device knows its own index and has all of its memory free. */
TEST_F(devices, info_reports_index_and_free_memory)
{
	struct hmm_dummy_info info;
	long page_size = sysconf(_SC_PAGESIZE);
	int i, fd;

	for (i = 0; i < self->nr; i++) {
		fd = open_device(i);
		ASSERT_GE(fd, 0);
		memset(&info, 0xa5, sizeof(info));
		ASSERT_EQ(ioctl(fd, HMM_DUMMY_INFO, &info), 0);
		EXPECT_EQ(info.device, i);
		EXPECT_GE(info.nr_chunks, 1);
		EXPECT_EQ(info.chunk_bytes % (2UL << 20), 0);
		EXPECT_GT(info.chunk_bytes, 0);
		EXPECT_EQ(info.pages_total, info.nr_chunks * info.chunk_bytes / page_size);
		EXPECT_EQ(info.pages_free, info.pages_total);
		close(fd);
	}
}

/* Two files on one device, and files on every device, open at once. */
TEST_F(devices, many_files_open_at_once)
{
	struct hmm_dummy_info info;
	int fds[16], n = 0, i;

	for (i = 0; i < self->nr && n < 14; i++) {
		fds[n++] = open_device(i);
		fds[n++] = open_device(i);
		ASSERT_GE(fds[n - 2], 0);
		ASSERT_GE(fds[n - 1], 0);
	}
	for (i = 0; i < n; i++) {
		ASSERT_EQ(ioctl(fds[i], HMM_DUMMY_INFO, &info), 0);
		EXPECT_EQ(info.device, i / 2);
	}
	for (i = 0; i < n; i++)
		ASSERT_EQ(close(fds[i]), 0);
}

/* A bad user pointer is -EFAULT, never a crash. */
TEST_F(devices, info_bad_pointer)
{
	int fd = open_device(0);

	ASSERT_GE(fd, 0);
	EXPECT_EQ(ioctl(fd, HMM_DUMMY_INFO, NULL), -1);
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(ioctl(fd, HMM_DUMMY_INFO, (void *)-4096L), -1);
	EXPECT_EQ(errno, EFAULT);
	close(fd);
}

/* Commands the driver does not know are -ENOTTY. */
TEST_F(devices, unknown_ioctl)
{
	struct hmm_dummy_info info;
	int fd = open_device(0);

	ASSERT_GE(fd, 0);
	EXPECT_EQ(ioctl(fd, _IOR(HMM_DUMMY_IOC_MAGIC, 0x7f, struct hmm_dummy_info), &info), -1);
	EXPECT_EQ(errno, ENOTTY);
	EXPECT_EQ(ioctl(fd, _IOR('x', 0x40, struct hmm_dummy_info), &info), -1);
	EXPECT_EQ(errno, ENOTTY);
	close(fd);
}

/* One past the last node does not exist. */
TEST_F(devices, no_device_past_the_last)
{
	int fd = open_device(self->nr);

	EXPECT_EQ(fd, -1);
	EXPECT_EQ(errno, ENOENT);
}

TEST_HARNESS_MAIN
