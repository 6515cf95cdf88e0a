// SPDX-License-Identifier: GPL-2.0
/*
 * hmm_bench: how fast pages move to a device and back, through hmm_dummy
 * and through the base tree's lib/test_hmm (same ioctl numbers and
 * layout, so one program drives both), next to a plain memcpy of the same
 * buffer. A program that prints figures, not a test: make bench runs it.
 *
 * Usage: hmm_bench OURS_NODE UPSTREAM_NODE
 *
 * For buffers of 1, 16 and 256 MiB, backed by 4 KiB pages or by THP, each
 * round maps a fresh buffer, fills it, moves it to the device
 * (MIGRATE_TO_DEV, which also reads it back into a second buffer) and back
 * (MIGRATE_TO_SYS), and checks every byte; only the two ioctls are timed.
 * The best round of each is kept. Rates are in GB/s (10^9 bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "hmm_dummy_util.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define MIB		(1024UL * 1024)
#define BENCH_SEED	0xbe9c

struct rates {
	double to_dev;
	double to_sys;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double gbps(size_t len, double seconds)
{
	return seconds > 0 ? len / seconds / 1e9 : 0;
}

static double best(double a, double b)
{
	return a > b ? a : b;
}

/* A fresh buffer of @len bytes, 2 MiB aligned, THP or not; NULL on error. */
static char *map_buffer(size_t len, int thp, char **raw)
{
	char *p;

	*raw = mmap(NULL, len + SZ_2M, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)*raw + SZ_2M - 1) & ~(SZ_2M - 1));
	if (madvise(p, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		return NULL;
	return p;
}

/* One round through the device at @fd; 0, or -1 when something failed. */
static int round_trip(int fd, size_t len, int thp, char *mirror, struct rates *r)
{
	size_t npages = len / sysconf(_SC_PAGESIZE);
	struct hmm_dummy_cmd out;
	char *raw, *buf;
	double t;
	int ret = -1;

	buf = map_buffer(len, thp, &raw);
	if (!buf)
		goto out;
	pat_fill(buf, len, BENCH_SEED);

	t = now();
	if (dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_DEV, (uintptr_t)buf, mirror, npages, &out) ||
	    out.cpages != npages)
		goto out;
	r->to_dev = best(r->to_dev, gbps(len, now() - t));
	if (pat_diff(mirror, len, BENCH_SEED) >= 0)
		goto out;

	t = now();
	if (dummy_cmd(fd, HMM_DUMMY_MIGRATE_TO_SYS, (uintptr_t)buf, mirror, npages, &out) ||
	    out.cpages != npages)
		goto out;
	r->to_sys = best(r->to_sys, gbps(len, now() - t));
	if (pat_diff(buf, len, BENCH_SEED) >= 0)
		goto out;
	ret = 0;
out:
	if (buf)
		munmap(raw, len + SZ_2M);
	return ret;
}

static double memcpy_rate(size_t len, char *dst, int rounds)
{
	char *raw, *src = map_buffer(len, 0, &raw);
	double t, rate = 0;
	int i;

	if (!src)
		return 0;
	pat_fill(src, len, BENCH_SEED);
	memset(dst, 0, len);
	for (i = 0; i < rounds; i++) {
		t = now();
		memcpy(dst, src, len);
		rate = best(rate, gbps(len, now() - t));
	}
	munmap(raw, len + SZ_2M);
	return rate;
}

static int measure(const char *node, size_t len, int thp, char *mirror, int rounds,
		   struct rates *r)
{
	int fd = open(node, O_RDWR);
	int i, ret = 0;

	memset(r, 0, sizeof(*r));
	if (fd < 0) {
		fprintf(stderr, "hmm_bench: %s: %s\n", node, strerror(errno));
		return -1;
	}
	for (i = 0; i < rounds && !ret; i++)
		ret = round_trip(fd, len, thp, mirror, r);
	close(fd);
	if (ret)
		fprintf(stderr, "hmm_bench: %s: %zu MiB round failed\n", node, len / MIB);
	return ret;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

int main(int argc, char **argv)
{
	static const size_t sizes_mib[] = { 1, 16, 256 };
	struct rates ours, upstream;
	int thp, failed = 0;
	unsigned int i;
	char *mirror;
	double copy;

	if (argc != 3) {
		fprintf(stderr, "usage: %s OURS_NODE UPSTREAM_NODE\n", argv[0]);
		return 2;
	}
	mirror = malloc(256 * MIB);
	if (!mirror)
		return 1;
	printf("bench: %-5s %5s | %8s %8s | %8s %8s | %7s | %6s %6s | %6s %6s\n",
	       "pages", "MiB", "ours>dev", "up>dev", "ours>sys", "up>sys", "memcpy",
	       "o/u>d", "o/u>s", "o/m>d", "o/m>s");
	for (thp = 0; thp <= 1; thp++) {
		for (i = 0; i < ARRAY_SIZE(sizes_mib); i++) {
			size_t len = sizes_mib[i] * MIB;
			int rounds = sizes_mib[i] >= 256 ? 2 : 5;

			failed |= measure(argv[1], len, thp, mirror, rounds, &ours);
			failed |= measure(argv[2], len, thp, mirror, rounds, &upstream);
			copy = memcpy_rate(len, mirror, rounds);
			printf("bench: %-5s %5zu | %8.3f %8.3f | %8.3f %8.3f | %7.3f",
			       thp ? "THP" : "4KiB", sizes_mib[i],
			       ours.to_dev, upstream.to_dev, ours.to_sys, upstream.to_sys, copy);
			printf(" | %6.2f %6.2f | %6.3f %6.3f\n",
			       ratio(ours.to_dev, upstream.to_dev),
			       ratio(ours.to_sys, upstream.to_sys),
			       ratio(ours.to_dev, copy), ratio(ours.to_sys, copy));
		}
	}
	free(mirror);
	return failed ? 1 : 0;
}
