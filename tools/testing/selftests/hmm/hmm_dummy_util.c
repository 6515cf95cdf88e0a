// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the hmm_dummy selftests; see hmm_dummy_util.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "hmm_dummy_util.h"

int dummy_open(int dev)
{
	char path[32];

	snprintf(path, sizeof(path), "/dev/hmm_dummy%d", dev);
	return open(path, O_RDWR | O_CLOEXEC);
}

int dummy_fixture_open(int dev, char *why, size_t len)
{
	int fd;

	why[0] = '\0';
	if (access("/dev/hmm_dummy0", F_OK)) {
		snprintf(why, len, "/dev/hmm_dummy0 is missing (hmm_dummy not loaded?)");
		return -1;
	}
	fd = dummy_open(dev);
	if (fd < 0 && errno == ENOENT)
		snprintf(why, len, "/dev/hmm_dummy%d is missing", dev);
	return fd;
}

int dummy_cmd(int fd, unsigned long req, __u64 addr, void *buf,
	      __u64 npages, struct hmm_dummy_cmd *out)
{
	struct hmm_dummy_cmd cmd = {
		.addr = addr,
		.ptr = (uintptr_t)buf,
		.npages = npages,
	};
	int ret;

	do {
		ret = ioctl(fd, req, &cmd);
	} while (ret < 0 && errno == EINTR);
	if (out)
		*out = cmd;
	return ret < 0 ? -errno : 0;
}

int dev_read(int fd, void *addr, void *buf, __u64 npages,
	     struct hmm_dummy_cmd *out)
{
	return dummy_cmd(fd, HMM_DUMMY_READ, (uintptr_t)addr, buf, npages, out);
}

int dev_write(int fd, void *addr, void *buf, __u64 npages,
	      struct hmm_dummy_cmd *out)
{
	return dummy_cmd(fd, HMM_DUMMY_WRITE, (uintptr_t)addr, buf, npages, out);
}

int dev_snap(int fd, void *addr, void *buf, __u64 npages,
	     struct hmm_dummy_cmd *out)
{
	return dummy_cmd(fd, HMM_DUMMY_SNAPSHOT, (uintptr_t)addr, buf, npages, out);
}

int get_counters(int fd, struct hmm_dummy_counters *c)
{
	memset(c, 0, sizeof(*c));
	return ioctl(fd, HMM_DUMMY_COUNTERS, c) < 0 ? -errno : 0;
}

long dummy_settled_pages_used(int dev)
{
	struct hmm_dummy_info info;
	int fd = dummy_open(dev), i;
	long used = -1;

	for (i = 0; fd >= 0 && i < 20; i++) {
		used = get_info(fd, &info) ? -1 : (long)info.pages_used;
		if (!used)
			break;
		usleep(100000);
	}
	if (fd >= 0)
		close(fd);
	return used;
}

int get_info(int fd, struct hmm_dummy_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, HMM_DUMMY_INFO, info) < 0 ? -errno : 0;
}

/* A cheap hash of the seed, the offset and the page of the offset. */
unsigned char pat_byte(unsigned int seed, size_t off)
{
	uint32_t x = seed * 0x9e3779b1u + (uint32_t)off * 0x85ebca6bu +
		     (uint32_t)(off >> 12) * 0x27d4eb2fu;

	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 12;
	return x >> 24;
}

void pat_fill_at(void *p, size_t from, size_t len, unsigned int seed)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = pat_byte(seed, from + i);
}

void pat_fill(void *p, size_t len, unsigned int seed)
{
	pat_fill_at(p, 0, len, seed);
}

long pat_diff_at(const void *p, size_t from, size_t len, unsigned int seed)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != pat_byte(seed, from + i))
			return i;
	return -1;
}

long pat_diff(const void *p, size_t len, unsigned int seed)
{
	return pat_diff_at(p, 0, len, seed);
}

long zero_diff(const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return i;
	return -1;
}

long prot_diff(const unsigned char *snap, size_t n, unsigned char want)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (snap[i] != want)
			return i;
	return -1;
}

/* What map_anon() advises; a THP-on fixture variant changes it. */
static int anon_thp_advice = MADV_NOHUGEPAGE;

void map_anon_allow_thp(bool allow)
{
	anon_thp_advice = allow ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;
}

void *map_anon(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		madvise(p, len, anon_thp_advice);
	return p;
}

void *map_thp_area(void **raw)
{
	void *p;

	*raw = mmap(NULL, 2 * SZ_2M, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*raw == MAP_FAILED)
		return MAP_FAILED;
	p = (void *)(((uintptr_t)*raw + SZ_2M - 1) & ~(SZ_2M - 1));
	return madvise(p, SZ_2M, MADV_HUGEPAGE) ? NULL : p;
}

int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
