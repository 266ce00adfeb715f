// SPDX-License-Identifier: GPL-2.0
/*
 * blkpat - write or verify a position-stamped pattern on a block device.
 *
 *   blkpat write|verify|zero DEV OFFSET LEN SEED [--bs BYTES] [--direct]
 *          [--buf-offset BYTES] [--no-fsync]
 *
 * Every 4 KiB block gets 8-byte words from a PRNG seeded with SEED and the
 * block's number on the device, so a block that lands in the wrong place,
 * comes back stale or from another run fails verification. "zero" verifies
 * that the range reads back as zeros. I/O goes in BYTES-sized calls (default
 * 1 MiB), with O_DIRECT when asked, from a buffer that starts --buf-offset
 * bytes into a page (a multiple of 512: what O_DIRECT allows on a device
 * whose DMA alignment is 511). OFFSET, LEN and BYTES take K/M/G suffixes and
 * must be multiples of 4 KiB. A write ends with fsync() (a FLUSH, which waits
 * for staged writes to land) unless --no-fsync.
 *
 * Exit status: 0 done and matching, 1 mismatch (the first bad block and the
 * count of bad blocks are printed), 2 usage or I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK	4096ULL

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The expected content of device block @blockno. */
static void fill_block(uint64_t *words, uint64_t seed, uint64_t blockno, int zero)
{
	uint64_t state = seed * 0x2545f4914f6cdd1dULL ^ blockno;
	size_t i;

	for (i = 0; i < BLOCK / 8; i++)
		words[i] = zero ? 0 : splitmix64(&state);
}

static int parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'G': case 'g':
		v <<= 10;
		/* fall through */
	case 'M': case 'm':
		v <<= 10;
		/* fall through */
	case 'K': case 'k':
		v <<= 10;
		end++;
		break;
	}
	if (*end || v % BLOCK)
		return -1;
	*out = v;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: blkpat write|verify|zero DEV OFFSET LEN SEED [--bs BYTES] [--direct] [--buf-offset BYTES] [--no-fsync]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long long offset, len, seed, bs = 1 << 20, done, n, b, bad = 0;
	unsigned long long first_bad = 0, buf_off = 0;
	int write_mode, zero, direct = 0, sync = 1, fd, i;
	uint64_t *base, *buf, *want;
	char *end;
	ssize_t r;

	if (argc < 6)
		usage();
	write_mode = !strcmp(argv[1], "write");
	zero = !strcmp(argv[1], "zero");
	if (!write_mode && !zero && strcmp(argv[1], "verify"))
		usage();
	if (parse_size(argv[3], &offset) || parse_size(argv[4], &len) || !len)
		usage();
	seed = strtoull(argv[5], NULL, 0);
	for (i = 6; i < argc; i++) {
		if (!strcmp(argv[i], "--direct"))
			direct = 1;
		else if (!strcmp(argv[i], "--no-fsync"))
			sync = 0;
		else if (!strcmp(argv[i], "--bs") && i + 1 < argc && !parse_size(argv[i + 1], &bs) && bs)
			i++;
		else if (!strcmp(argv[i], "--buf-offset") && i + 1 < argc &&
			 (buf_off = strtoull(argv[i + 1], &end, 0), !*end) &&
			 buf_off % 512 == 0 && buf_off < BLOCK)
			i++;
		else
			usage();
	}

	fd = open(argv[2], (write_mode ? O_WRONLY : O_RDONLY) | (direct ? O_DIRECT : 0));
	if (fd < 0) {
		fprintf(stderr, "blkpat: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	if (posix_memalign((void **)&base, BLOCK, bs + BLOCK) ||
	    posix_memalign((void **)&want, BLOCK, BLOCK)) {
		fprintf(stderr, "blkpat: out of memory\n");
		return 2;
	}
	buf = base + buf_off / 8;
	for (done = 0; done < len; done += n) {
		n = len - done < bs ? len - done : bs;
		if (write_mode)
			for (b = 0; b < n / BLOCK; b++)
				fill_block(buf + b * BLOCK / 8, seed, (offset + done) / BLOCK + b, 0);
		r = write_mode ? pwrite(fd, buf, n, offset + done) : pread(fd, buf, n, offset + done);
		if (r != (ssize_t)n) {
			fprintf(stderr, "blkpat: %s at %llu: %s\n", write_mode ? "write" : "read",
				offset + done, r < 0 ? strerror(errno) : "short transfer");
			return 2;
		}
		if (write_mode)
			continue;
		for (b = 0; b < n / BLOCK; b++) {
			fill_block(want, seed, (offset + done) / BLOCK + b, zero);
			if (memcmp(buf + b * BLOCK / 8, want, BLOCK))
				if (!bad++)
					first_bad = offset + done + b * BLOCK;
		}
	}
	if (write_mode && sync && fsync(fd)) {
		fprintf(stderr, "blkpat: fsync: %s\n", strerror(errno));
		return 2;
	}
	close(fd);
	free(base);
	free(want);
	if (bad) {
		printf("blkpat: %llu bad blocks of %llu, first at byte %llu\n",
		       bad, len / BLOCK, first_bad);
		return 1;
	}
	return 0;
}
