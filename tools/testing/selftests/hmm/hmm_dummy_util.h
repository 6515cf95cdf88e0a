/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the hmm_dummy selftests: opening a device, issuing its
 * commands, and the data patterns the tests check byte for byte.
 */
#ifndef HMM_DUMMY_UTIL_H
#define HMM_DUMMY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "hmm_dummy_uapi.h"

#define SZ_2M			(2UL << 20)

/* Open /dev/hmm_dummy@dev for reading and writing. */
int dummy_open(int dev);

/*
 * Open /dev/hmm_dummy@dev for a test fixture. Returns the file, or -1
 * with @why (@len bytes) holding the reason to skip the test when the
 * module or the node is missing, or -1 with @why empty and errno set on
 * any other error.
 */
int dummy_fixture_open(int dev, char *why, size_t len);

/* One device command; returns 0 or -errno, @out (if set) gets the result. */
int dummy_cmd(int fd, unsigned long req, __u64 addr, void *buf,
	      __u64 npages, struct hmm_dummy_cmd *out);
int dev_read(int fd, void *addr, void *buf, __u64 npages,
	     struct hmm_dummy_cmd *out);
int dev_write(int fd, void *addr, void *buf, __u64 npages,
	      struct hmm_dummy_cmd *out);
int dev_snap(int fd, void *addr, void *buf, __u64 npages,
	     struct hmm_dummy_cmd *out);

/* COUNTERS and INFO of a file; 0 or -errno. */
int get_counters(int fd, struct hmm_dummy_counters *c);
int get_info(int fd, struct hmm_dummy_info *info);
/*
 * INFO pages_used of /dev/hmm_dummy@dev once it reaches 0, polling for up
 * to two seconds; the last value read, or -1 when the device cannot be read.
 */
long dummy_settled_pages_used(int dev);

/*
 * Data patterns. Byte @off of pattern @seed depends on the seed, the
 * byte's offset and its page, so that a stale, shifted or torn copy
 * cannot pass for the expected one. The *_diff() helpers return the
 * offset of the first byte that does not match, or -1.
 */
unsigned char pat_byte(unsigned int seed, size_t off);
void pat_fill(void *p, size_t len, unsigned int seed);
long pat_diff(const void *p, size_t len, unsigned int seed);
/* The same for bytes @from to @from + @len - 1 of the pattern, at @p. */
void pat_fill_at(void *p, size_t from, size_t len, unsigned int seed);
long pat_diff_at(const void *p, size_t from, size_t len, unsigned int seed);
long zero_diff(const void *p, size_t len);
/* Index of the first SNAPSHOT byte that is not @want, or -1. */
long prot_diff(const unsigned char *snap, size_t n, unsigned char want);

/*
 * Anonymous memory kept out of THP, so SNAPSHOT values are exact, unless
 * map_anon_allow_thp(true) asked for THP where the mapping has room.
 */
void *map_anon(size_t len, int flags);
void map_anon_allow_thp(bool allow);

/*
 * A 2 MiB aligned, 2 MiB long piece of a new 4 MiB anonymous mapping
 * whose start goes to *@raw, advised for THP. MAP_FAILED if the mapping
 * failed, NULL if the kernel refused MADV_HUGEPAGE.
 */
void *map_thp_area(void **raw);

/* Exit code of child @pid, 128 + signal if it was killed, -1 on error. */
int wait_child(pid_t pid);

#endif /* HMM_DUMMY_UTIL_H */
