// SPDX-License-Identifier: GPL-2.0
/*
 * hmm_dummy_holder: keep pages in hmm_dummy's device memory with no device
 * file open, so that hmm_dummy_load.sh can unload the module under them.
 *
 * Usage: hmm_dummy_holder NPAGES [exclusive]
 *
 * Fills NPAGES pages with a pattern, moves them to /dev/hmm_dummy0 and
 * closes the device, then prints "ready" and waits for a line on stdin.
 * Unloading the module must bring the pages back to RAM: the program then
 * checks every byte from the CPU and exits 0 only if all are intact.
 * With "exclusive", the device takes the pages for exclusive access
 * instead of moving them: the CPU page table keeps device-exclusive
 * entries after the file is closed and the module is gone, and the first
 * CPU access must still find the data.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "hmm_dummy_util.h"

#define HOLDER_SEED	0x4d1e

static int hold(size_t npages, bool exclusive)
{
	size_t psz = sysconf(_SC_PAGESIZE), len = npages * psz;
	struct hmm_dummy_cmd out;
	char *buf, *mirror, line[16];
	long bad;
	int fd, ret;

	buf = map_anon(len, MAP_PRIVATE);
	mirror = malloc(len);
	if (buf == MAP_FAILED || !mirror) {
		perror("hmm_dummy_holder: memory");
		return 1;
	}
	pat_fill(buf, len, HOLDER_SEED);
	fd = dummy_open(0);
	if (fd < 0) {
		perror("hmm_dummy_holder: /dev/hmm_dummy0");
		return 1;
	}
	ret = dummy_cmd(fd, exclusive ? HMM_DUMMY_EXCLUSIVE : HMM_DUMMY_MIGRATE_TO_DEV,
			(uintptr_t)buf, mirror, npages, &out);
	close(fd);
	if (ret || out.cpages != npages) {
		fprintf(stderr, "hmm_dummy_holder: %s: %d, %llu pages\n",
			exclusive ? "exclusive" : "migrate", ret,
			(unsigned long long)out.cpages);
		return 1;
	}
	bad = pat_diff(mirror, len, HOLDER_SEED);
	if (bad >= 0) {
		fprintf(stderr, "hmm_dummy_holder: byte %ld read back differs\n", bad);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	bad = pat_diff(buf, len, HOLDER_SEED);
	if (bad >= 0) {
		fprintf(stderr, "hmm_dummy_holder: byte %ld differs\n", bad);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool exclusive = argc == 3 && !strcmp(argv[2], "exclusive");

	if (argc < 2 || argc > 3 || (argc == 3 && !exclusive) || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: %s NPAGES [exclusive]\n", argv[0]);
		return 2;
	}
	return hold(atol(argv[1]), exclusive);
}
