// SPDX-License-Identifier: GPL-2.0
/*
 * blk_stress - concurrent reads, writes and discards on a block device,
 * every byte checked.
 *
 *   blk_stress DEV [--mib N] [--threads N] [--seconds S] [--seed N]
 *              [--max-kib N] [--no-discard] [--sabotage] [--ops N] [--dup K]
 *
 * The first N MiB of DEV are cut into 1 MiB stripes; thread t writes and
 * discards only its own stripes (s % threads == t), in random runs of 4 KiB
 * up to --max-kib, and reads anywhere, in random runs that cross stripes and
 * VMRs. Every 4 KiB block written carries (seed, block, generation) and a
 * pattern derived from them. For each block, started[b] and done[b] are the
 * last generation begun and finished; a read must find, in every block, a
 * generation between done[b] before the read and started[b] after it. A
 * block written while the read ran may also come back torn (block devices
 * promise nothing for overlapping concurrent I/O, and RDMA moves a block in
 * several packets), and one discarded since its last write, or while the
 * read ran (the device may read a long request's blocks at different
 * times), may hold anything; but old data where nothing overlapped is a
 * failure. At the end every
 * block must hold exactly done[b], read back both in 4 KiB and in 1 MiB
 * requests (through a cache and around it). --sabotage overwrites one
 * block behind the checker's back before that, to show that it notices.
 * --ops N stops each thread after N operations instead of after S seconds:
 * with one thread the final content is then the same on every run.
 * --dup K gives blocks b, b + K, b + 2K, ... the same content in the same
 * generation, so that a device that shares identical pages (rmai's page
 * map) does share them; a block that comes back with another's generation
 * is still found.
 *
 * All I/O is O_DIRECT. Prints one line: ops=... bad_blocks=... and exits
 * 0 when all matched, 1 on a mismatch, 2 on usage or I/O errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BLOCK		4096u
#define STRIPE		(1u << 20)
#define BLOCKS_PER_STRIPE (STRIPE / BLOCK)
#define MAGIC		0x524d4149424c4b53ull	/* "RMAIBLKS" */

struct header {
	uint64_t magic;			/* MAGIC */
	uint64_t seed;			/* the run's seed */
	uint64_t block;			/* the block's number on the device */
	uint64_t gen;			/* its generation: 1, 2, ... */
};

static struct {
	const char *dev;		/* device path */
	unsigned int mib;		/* region tested */
	unsigned int threads;		/* workers */
	unsigned int seconds;		/* how long they run */
	uint64_t seed;			/* pattern and choices */
	unsigned int max_kib;		/* largest write or discard */
	int discard;			/* issue discards */
	int sabotage;			/* corrupt a block before the final check */
	unsigned long ops;		/* per thread, instead of --seconds */
	uint64_t dup;			/* blocks K apart share content; 0: none */
} opt = { .mib = 16, .threads = 4, .seconds = 20, .seed = 1, .max_kib = 256,
	  .discard = 1 };

static uint64_t nr_blocks;
static _Atomic uint64_t *started;	/* [nr_blocks] last generation begun */
static _Atomic uint64_t *done;		/* [nr_blocks] last generation finished */
static _Atomic uint8_t *discarded;	/* [nr_blocks] discarded since written */
static _Atomic uint32_t *discards;	/* [nr_blocks] discards begun */
static _Atomic uint64_t bad, ops, io_errors;
static _Atomic int stop;
static int fd;

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *state)
{
	return mix(*state += 0x9e3779b97f4a7c15ull);
}

/* What a block's content is derived from: itself, or its class of --dup. */
static uint64_t content_id(uint64_t block)
{
	return opt.dup ? block % opt.dup : block;
}

static void fill(uint64_t *w, uint64_t block, uint64_t gen)
{
	struct header *h = (struct header *)w;
	uint64_t s;

	block = content_id(block);
	s = mix(opt.seed ^ mix(block) ^ gen);
	unsigned int i;

	for (i = sizeof(*h) / 8; i < BLOCK / 8; i++)
		w[i] = rnd(&s);
	h->magic = MAGIC;
	h->seed = opt.seed;
	h->block = block;
	h->gen = gen;
}

/* The generation a block holds: 0 for never written (zero), -1 when corrupt. */
static int64_t gen_of(const uint64_t *w, uint64_t block)
{
	static const uint64_t zero[BLOCK / 8];
	uint64_t want[BLOCK / 8];
	const struct header *h = (const struct header *)w;

	if (!memcmp(w, zero, BLOCK))
		return 0;
	if (h->magic != MAGIC || h->seed != opt.seed || h->block != content_id(block) || !h->gen)
		return -1;
	fill(want, block, h->gen);
	return memcmp(w, want, BLOCK) ? -1 : (int64_t)h->gen;
}

static void report(uint64_t block, int64_t got, uint64_t lo, uint64_t hi, const char *when)
{
	if (atomic_fetch_add(&bad, 1) < 10)
		fprintf(stderr, "blk_stress: %s: block %llu holds generation %lld, want %llu..%llu\n",
			when, (unsigned long long)block, (long long)got,
			(unsigned long long)lo, (unsigned long long)hi);
}

static int do_write(uint64_t *buf, uint64_t first, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint64_t gen = atomic_load(&started[first + i]) + 1;

		atomic_store(&started[first + i], gen);
		fill(buf + i * BLOCK / 8, first + i, gen);
	}
	if (pwrite(fd, buf, (size_t)n * BLOCK, first * BLOCK) != (ssize_t)n * BLOCK)
		return -1;
	for (i = 0; i < n; i++) {
		atomic_store(&done[first + i], atomic_load(&started[first + i]));
		atomic_store(&discarded[first + i], 0);
	}
	return 0;
}

static int do_discard(uint64_t first, unsigned int n)
{
	uint64_t range[2] = { first * BLOCK, (uint64_t)n * BLOCK };
	unsigned int i;

	for (i = 0; i < n; i++) {
		atomic_store(&discarded[first + i], 1);
		atomic_fetch_add(&discards[first + i], 1);
	}
	return ioctl(fd, BLKDISCARD, range);
}

static int do_read(uint64_t *buf, uint64_t first, unsigned int n)
{
	uint64_t lo[STRIPE / BLOCK * 2];
	uint8_t skip[STRIPE / BLOCK * 2];
	uint32_t disc[STRIPE / BLOCK * 2];
	unsigned int i;

	for (i = 0; i < n; i++) {
		lo[i] = atomic_load(&done[first + i]);
		skip[i] = atomic_load(&discarded[first + i]);
		disc[i] = atomic_load(&discards[first + i]);
	}
	if (pread(fd, buf, (size_t)n * BLOCK, first * BLOCK) != (ssize_t)n * BLOCK)
		return -1;
	for (i = 0; i < n; i++) {
		uint64_t hi = atomic_load(&started[first + i]);
		int64_t got = gen_of(buf + i * BLOCK / 8, first + i);

		if (skip[i] || atomic_load(&discarded[first + i]) ||
		    atomic_load(&discards[first + i]) != disc[i])
			continue;
		if (got < 0 && hi != lo[i])
			continue;	/* torn by a write that overlapped */
		if (got < 0 || (uint64_t)got < lo[i] || (uint64_t)got > hi)
			report(first + i, got, lo[i], hi, "concurrent read");
	}
	return 0;
}

static void *worker(void *arg)
{
	unsigned int t = (uintptr_t)arg, nr_stripes = opt.mib, n;
	uint64_t state = mix(opt.seed + t), first, stripe, r;
	unsigned long count = 0;
	uint64_t *buf;

	if (posix_memalign((void **)&buf, BLOCK, 2 * STRIPE))
		return NULL;
	while (!atomic_load(&stop) && (!opt.ops || count++ < opt.ops)) {
		r = rnd(&state) % 10;
		if (r < 5) {		/* write, within one of our stripes */
			stripe = t + (rnd(&state) % (nr_stripes / opt.threads)) * opt.threads;
			n = 1 + rnd(&state) % (opt.max_kib / 4);
			first = stripe * BLOCKS_PER_STRIPE + rnd(&state) % (BLOCKS_PER_STRIPE - n + 1);
			if (do_write(buf, first, n))
				goto io_error;
		} else if (r < 6 && opt.discard) {
			stripe = t + (rnd(&state) % (nr_stripes / opt.threads)) * opt.threads;
			n = 1 + rnd(&state) % (opt.max_kib / 4);
			first = stripe * BLOCKS_PER_STRIPE + rnd(&state) % (BLOCKS_PER_STRIPE - n + 1);
			if (do_discard(first, n))
				goto io_error;
		} else {		/* read anywhere, across stripes */
			n = 1 + rnd(&state) % (rnd(&state) % 4 ? 16 : 2 * BLOCKS_PER_STRIPE);
			first = rnd(&state) % (nr_blocks - n + 1);
			if (do_read(buf, first, n))
				goto io_error;
		}
		atomic_fetch_add(&ops, 1);
	}
	free(buf);
	return NULL;
io_error:
	fprintf(stderr, "blk_stress: I/O error: %s\n", strerror(errno));
	atomic_fetch_add(&io_errors, 1);
	atomic_store(&stop, 1);
	free(buf);
	return NULL;
}

/* Every block must hold exactly its last finished generation. */
static int final_check(unsigned int blocks_per_io)
{
	uint64_t *buf, b, i;
	int64_t got;

	if (posix_memalign((void **)&buf, BLOCK, (size_t)blocks_per_io * BLOCK))
		return -1;
	for (b = 0; b < nr_blocks; b += blocks_per_io) {
		if (pread(fd, buf, (size_t)blocks_per_io * BLOCK, b * BLOCK) !=
		    (ssize_t)blocks_per_io * BLOCK) {
			free(buf);
			return -1;
		}
		for (i = 0; i < blocks_per_io; i++) {
			if (discarded[b + i])
				continue;
			got = gen_of(buf + i * BLOCK / 8, b + i);
			if (got != (int64_t)done[b + i])
				report(b + i, got, done[b + i], done[b + i],
				       blocks_per_io == 1 ? "final 4 KiB read" : "final 1 MiB read");
		}
	}
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mib", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "max-kib", required_argument, NULL, 'k' },
		{ "no-discard", no_argument, NULL, 'n' },
		{ "sabotage", no_argument, NULL, 'x' },
		{ "ops", required_argument, NULL, 'o' },
		{ "dup", required_argument, NULL, 'd' },
		{ }
	};
	pthread_t th[64];
	unsigned int i;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': opt.mib = atoi(optarg); break;
		case 't': opt.threads = atoi(optarg); break;
		case 's': opt.seconds = atoi(optarg); break;
		case 'S': opt.seed = strtoull(optarg, NULL, 0); break;
		case 'k': opt.max_kib = atoi(optarg); break;
		case 'n': opt.discard = 0; break;
		case 'x': opt.sabotage = 1; break;
		case 'o': opt.ops = strtoul(optarg, NULL, 0); break;
		case 'd': opt.dup = strtoull(optarg, NULL, 0); break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || !opt.threads || opt.threads > 64 ||
	    opt.mib < opt.threads || opt.max_kib < 4 || opt.max_kib > 1024)
		goto usage;
	opt.dev = argv[optind];
	nr_blocks = (uint64_t)opt.mib * BLOCKS_PER_STRIPE;
	started = calloc(nr_blocks, sizeof(*started));
	done = calloc(nr_blocks, sizeof(*done));
	discarded = calloc(nr_blocks, sizeof(*discarded));
	discards = calloc(nr_blocks, sizeof(*discards));
	fd = open(opt.dev, O_RDWR | O_DIRECT);
	if (!started || !done || !discarded || !discards || fd < 0) {
		fprintf(stderr, "blk_stress: %s: %s\n", opt.dev, strerror(errno));
		return 2;
	}
	/* Start from zeros: generation 0 everywhere. */
	{
		uint64_t range[2] = { 0, (uint64_t)opt.mib << 20 };

		if (ioctl(fd, BLKZEROOUT, range)) {
			fprintf(stderr, "blk_stress: zeroing: %s\n", strerror(errno));
			return 2;
		}
	}
	for (i = 0; i < opt.threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	if (!opt.ops) {
		sleep(opt.seconds);
		atomic_store(&stop, 1);
	}
	for (i = 0; i < opt.threads; i++)
		pthread_join(th[i], NULL);
	if (opt.sabotage) {
		static uint64_t junk[BLOCK / 8] __attribute__((aligned(BLOCK)));

		memset(junk, 0x5a, sizeof(junk));
		discarded[nr_blocks / 2] = 0;
		if (pwrite(fd, junk, BLOCK, nr_blocks / 2 * BLOCK) != BLOCK)
			io_errors++;
	}
	if (io_errors || final_check(1) || final_check(STRIPE / BLOCK)) {
		fprintf(stderr, "blk_stress: I/O errors\n");
		return 2;
	}
	printf("ops=%llu bad_blocks=%llu\n", (unsigned long long)ops,
	       (unsigned long long)bad);
	close(fd);
	return bad ? 1 : 0;
usage:
	fprintf(stderr, "usage: blk_stress DEV [--mib N] [--threads N] [--seconds S] [--seed N] [--max-kib N] [--no-discard] [--sabotage] [--ops N]\n");
	return 2;
}
