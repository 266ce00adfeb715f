// SPDX-License-Identifier: GPL-2.0
/*
 * swap_reload - write a working set of anonymous memory, push it to swap,
 * read it back, and check every byte.
 *
 *   swap_reload --size MiB [--order seq|random] [--seed N] [--pageout]
 *               [--hugepage] [--chunk KiB] [--check-seed N] [--wait FILE]
 *   swap_reload --size MiB --lock
 *
 * Run it in a cgroup whose memory.max is below --size and the kernel swaps
 * the pages out while they are written; --pageout then pushes out what is
 * still resident (MADV_PAGEOUT), so that the reload reads everything from the
 * swap device. --wait FILE prints "paged out" on stderr before the reload
 * and waits until FILE exists, so that a test can fault the swap device
 * under pages that are out. --lock instead locks the filled memory and
 * waits to be killed: it takes RAM away from everything else. Every 8-byte word holds a value derived from the seed and its
 * page, so a page that comes back from the wrong slot, stale or torn is found.
 *
 * Prints one line of key=value pairs (MB/s are 10^6 bytes per second):
 *   size_mib= order= write_mbps= reload_mbps= reload_majflt= reload_minflt=
 *   mismatched_pages= first_bad_page=
 * and exits 1 when any page mismatched (--check-seed verifies against another
 * seed's pattern, so a test can prove that the check does catch bad data), 2 on bad usage or a system error.
 * Used by the selftests (integrity) and by scripts/bench (speed).
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

struct options {
	size_t size;			/* bytes in the working set */
	int random_order;		/* reload pages in a random order */
	uint64_t seed;			/* pattern and order seed */
	uint64_t check_seed;		/* the pattern expected on reload */
	int pageout;			/* MADV_PAGEOUT everything before reload */
	int hugepage;			/* MADV_HUGEPAGE (for mTHP in madvise mode) */
	size_t chunk;			/* bytes touched per step of a random reload */
	const char *wait;		/* reload once this file exists */
	int lock;			/* mlock the working set and wait */
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/*
 * Word @w of page @page holds base + w * step, with base hashed from the seed
 * and the page number: distinct across pages, cheap within one.
 */
#define PATTERN_STEP 0x9e3779b97f4a7c15ull

static void fill_page(uint64_t *p, size_t words, uint64_t seed, size_t page)
{
	uint64_t v = mix(seed ^ ((uint64_t)page << 20));
	size_t w;

	for (w = 0; w < words; w++, v += PATTERN_STEP)
		p[w] = v;
}

static int check_page(const uint64_t *p, size_t words, uint64_t seed,
		      size_t page)
{
	uint64_t v = mix(seed ^ ((uint64_t)page << 20));
	size_t w;

	for (w = 0; w < words; w++, v += PATTERN_STEP)
		if (p[w] != v)
			return 0;
	return 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "order", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 'S' },
		{ "pageout", no_argument, NULL, 'p' },
		{ "hugepage", no_argument, NULL, 'H' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "check-seed", required_argument, NULL, 'C' },
		{ "wait", required_argument, NULL, 'w' },
		{ "lock", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	char *end;
	int c;

	int check_seed_set = 0;

	*o = (struct options){ .seed = 1, .chunk = 4096 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->size = strtoull(optarg, &end, 10) << 20;
			if (*end || !o->size)
				goto usage;
			break;
		case 'o':
			if (!strcmp(optarg, "random"))
				o->random_order = 1;
			else if (strcmp(optarg, "seq"))
				goto usage;
			break;
		case 'S':
			o->seed = strtoull(optarg, &end, 0);
			if (*end)
				goto usage;
			break;
		case 'p':
			o->pageout = 1;
			break;
		case 'H':
			o->hugepage = 1;
			break;
		case 'C':
			o->check_seed = strtoull(optarg, &end, 0);
			if (*end)
				goto usage;
			check_seed_set = 1;
			break;
		case 'w':
			o->wait = optarg;
			break;
		case 'l':
			o->lock = 1;
			break;
		case 'c':
			o->chunk = strtoull(optarg, &end, 10) << 10;
			if (*end || !o->chunk)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (!o->size || optind != argc)
		goto usage;
	if (!check_seed_set)
		o->check_seed = o->seed;
	return 0;
usage:
	fprintf(stderr, "usage: %s --size MiB [--order seq|random] [--seed N] "
		"[--pageout] [--hugepage] [--chunk KiB] [--check-seed N] [--wait FILE] | --lock\n",
		argv[0]);
	return -1;
}

int main(int argc, char **argv)
{
	size_t page = sysconf(_SC_PAGESIZE), words = page / sizeof(uint64_t);
	size_t npages, nchunks, pages_per_chunk, i, bad = 0, first_bad = 0;
	struct rusage ru0, ru1;
	struct options o;
	size_t *order = NULL;
	double t0, t_write, t_read;
	char *buf;

	if (parse(argc, argv, &o))
		return 2;
	if (o.chunk % page) {
		fprintf(stderr, "swap_reload: --chunk must be a multiple of %zu KiB\n",
			page >> 10);
		return 2;
	}
	npages = o.size / page;
	pages_per_chunk = o.chunk / page;
	nchunks = (npages + pages_per_chunk - 1) / pages_per_chunk;

	buf = mmap(NULL, o.size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("swap_reload: mmap");
		return 2;
	}
	if (o.hugepage && madvise(buf, o.size, MADV_HUGEPAGE))
		perror("swap_reload: madvise(MADV_HUGEPAGE), going on without");

	/* Locked before it is filled, so that none of it goes to swap first. */
	if (o.lock && mlock(buf, o.size)) {
		perror("swap_reload: mlock");
		return 2;
	}
	t0 = now();
	for (i = 0; i < npages; i++)
		fill_page((uint64_t *)(buf + i * page), words, o.seed, i);
	t_write = now() - t0;

	if (o.lock) {
		fprintf(stderr, "swap_reload: %zu MiB locked\n", o.size >> 20);
		for (;;)
			pause();
	}

	if (o.pageout && madvise(buf, o.size, MADV_PAGEOUT)) {
		perror("swap_reload: madvise(MADV_PAGEOUT)");
		return 2;
	}

	if (o.wait) {
		fprintf(stderr, "swap_reload: paged out; waiting for %s\n", o.wait);
		while (access(o.wait, F_OK))
			usleep(100 * 1000);
	}

	if (o.random_order) {
		/* Fisher-Yates over chunks, seeded: reproducible. */
		uint64_t r = mix(o.seed + 1);

		order = malloc(nchunks * sizeof(*order));
		if (!order) {
			perror("swap_reload: malloc");
			return 2;
		}
		for (i = 0; i < nchunks; i++)
			order[i] = i;
		for (i = nchunks - 1; i > 0; i--) {
			size_t j, tmp;

			r = mix(r);
			j = r % (i + 1);
			tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
	}

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now();
	for (i = 0; i < nchunks; i++) {
		size_t c = order ? order[i] : i, p;

		for (p = c * pages_per_chunk;
		     p < (c + 1) * pages_per_chunk && p < npages; p++) {
			if (check_page((uint64_t *)(buf + p * page), words,
				       o.check_seed, p))
				continue;
			if (!bad++)
				first_bad = p;
		}
	}
	t_read = now() - t0;
	getrusage(RUSAGE_SELF, &ru1);

	printf("size_mib=%zu order=%s write_mbps=%.1f reload_mbps=%.1f "
	       "reload_majflt=%ld reload_minflt=%ld mismatched_pages=%zu "
	       "first_bad_page=%zd\n",
	       o.size >> 20, o.random_order ? "random" : "seq",
	       o.size / t_write / 1e6, o.size / t_read / 1e6,
	       ru1.ru_majflt - ru0.ru_majflt, ru1.ru_minflt - ru0.ru_minflt,
	       bad, bad ? (ssize_t)first_bad : (ssize_t)-1);
	free(order);
	munmap(buf, o.size);
	return bad ? 1 : 0;
}
