// SPDX-License-Identifier: GPL-2.0
/*
 * rmai-memnoded: the memory pool. Allocated once, locked so the memnode
 * never swaps what it holds, cut into slabs. A slab is zero whenever it is
 * free: fresh anonymous memory is zero, and a reclaimed slab is deregistered
 * first (no client can write it any more) and zeroed before it is free again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memnode.h"

static void *map_pool(uint64_t size, enum hugepages_mode mode,
		      const char **backing)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
	void *p;

	if (mode != HUGEPAGES_OFF) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_HUGETLB,
			 -1, 0);
		if (p != MAP_FAILED) {
			*backing = "hugetlb";
			return p;
		}
		if (mode == HUGEPAGES_ON)
			return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	*backing = "4k pages";
	if (mode == HUGEPAGES_AUTO && !madvise(p, size, MADV_HUGEPAGE))
		*backing = "thp";
	return p;
}

/**
 * pool_init() - map, lock and cut the pool.
 * @err: a one-line reason on failure
 *
 * Return: 0, or -1 with @err set.
 */
int pool_init(struct pool *pool, uint64_t size, uint64_t slab_size,
	      enum hugepages_mode mode, char *err, size_t errlen)
{
	memset(pool, 0, sizeof(*pool));
	if (!slab_size || (slab_size & (slab_size - 1)) || slab_size < 4096) {
		snprintf(err, errlen, "slab size must be a power of two >= 4K");
		return -1;
	}
	if (!size || size % slab_size) {
		snprintf(err, errlen, "size must be a non-zero multiple of the slab size (%llu bytes)",
			 (unsigned long long)slab_size);
		return -1;
	}
	pool->base = map_pool(size, mode, &pool->backing);
	if (!pool->base) {
		snprintf(err, errlen, "cannot allocate %llu bytes%s: %s",
			 (unsigned long long)size,
			 mode == HUGEPAGES_ON ? " of hugetlb pages" : "",
			 strerror(errno));
		return -1;
	}
	if (mlock(pool->base, size)) {
		snprintf(err, errlen, "cannot lock %llu bytes: %s (raise RLIMIT_MEMLOCK, LimitMEMLOCK= in systemd)",
			 (unsigned long long)size, strerror(errno));
		munmap(pool->base, size);
		return -1;
	}
	pool->size = size;
	pool->slab_size = slab_size;
	pool->nr_slabs = size / slab_size;
	pool->nr_free = pool->nr_slabs;
	pool->owner = calloc(pool->nr_slabs, sizeof(*pool->owner));
	pool->mr = calloc(pool->nr_slabs, sizeof(*pool->mr));
	if (!pool->owner || !pool->mr) {
		snprintf(err, errlen, "out of memory");
		pool_destroy(pool);
		return -1;
	}
	return 0;
}

void pool_destroy(struct pool *pool)
{
	free(pool->mr);
	free(pool->owner);
	if (pool->base)
		munmap(pool->base, pool->size);
	memset(pool, 0, sizeof(*pool));
}

/**
 * pool_grant() - give a free slab to @s and register it in @s's PD alone.
 * Return: 0 with *@index set; -ENOSPC when none is free; -errno when the
 * registration fails (the slab stays free).
 */
int pool_grant(struct pool *pool, struct session *s, uint32_t *index)
{
	uint32_t i;

	if (!pool->nr_free)
		return -ENOSPC;
	for (i = 0; i < pool->nr_slabs && pool->owner[i]; i++)
		;
	pool->mr[i] = ibv_reg_mr(s->pd, pool->base + (uint64_t)i * pool->slab_size,
				 pool->slab_size, IBV_ACCESS_LOCAL_WRITE |
				 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
	if (!pool->mr[i])
		return errno ? -errno : -EIO;
	pool->owner[i] = s;
	pool->nr_free--;
	s->nr_held++;
	*index = i;
	return 0;
}

/* pool_reclaim() - deregister, then zero, then free slab @index. */
void pool_reclaim(struct pool *pool, uint32_t index)
{
	struct session *s = pool->owner[index];

	ibv_dereg_mr(pool->mr[index]);
	pool->mr[index] = NULL;
	memset(pool->base + (uint64_t)index * pool->slab_size, 0, pool->slab_size);
	pool->owner[index] = NULL;
	pool->nr_free++;
	s->nr_held--;
}
