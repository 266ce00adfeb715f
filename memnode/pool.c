// SPDX-License-Identifier: GPL-2.0
/*
 * rmai-memnoded: the memory pool. Allocated once, locked so the memnode
 * never swaps what it holds, cut into slabs. A slab is zero whenever it is
 * free: fresh anonymous memory is zero, and a reclaimed slab is deregistered
 * first (no client can write it any more) and zeroed before it is free again.
 *
 * Zeroing runs on a thread of its own: a large lease that expires would
 * otherwise hold the event loop for seconds, past the clients' control
 * timeout. A reclaimed slab counts as free at once, but its owner is
 * POOL_ZEROING until the thread has zeroed it; a grant that finds only such
 * slabs waits for the thread (the client needs them anyway). Only the loop
 * grants, only the thread ends a zeroing, under zero_lock.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memnode.h"

static int pool_start(struct pool *pool);

/* MemAvailable in bytes, or 0 when unknown. */
static uint64_t mem_available(void)
{
	unsigned long long kb = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb << 10;
}

/**
 * pool_check() - the rules for --size and --slab, before anything is set up.
 * Return: 0, or -1 with @err set.
 */
int pool_check(uint64_t size, uint64_t slab_size, char *err, size_t errlen)
{
	if (!slab_size || (slab_size & (slab_size - 1)) || slab_size < 4096) {
		snprintf(err, errlen, "slab size must be a power of two >= 4K");
		return -1;
	}
	if (!size || size % slab_size) {
		snprintf(err, errlen, "size must be a non-zero multiple of the slab size (%llu bytes)",
			 (unsigned long long)slab_size);
		return -1;
	}
	return 0;
}

/**
 * pool_init() - map, lock and cut the pool.
 * @err: a one-line reason on failure
 *
 * hugetlb pages are reserved by mmap() itself and never swapped. Otherwise
 * the pool must fit in the memory available now (locking more would push
 * the node into swap or the OOM killer), THP is asked for before any page
 * is touched, and mlock() faults the pages in; it fails on RLIMIT_MEMLOCK
 * before touching any.
 *
 * Return: 0, or -1 with @err set.
 */
int pool_init(struct pool *pool, uint64_t size, uint64_t slab_size,
	      enum hugepages_mode mode, char *err, size_t errlen)
{
	uint64_t avail;
	void *p = MAP_FAILED;

	memset(pool, 0, sizeof(*pool));
	if (pool_check(size, slab_size, err, errlen))
		return -1;
	if (mode != HUGEPAGES_OFF) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
		pool->backing = "hugetlb";
		if (p == MAP_FAILED && mode == HUGEPAGES_ON) {
			snprintf(err, errlen, "cannot allocate %llu bytes of hugetlb pages: %s (see vm.nr_hugepages)",
				 (unsigned long long)size, strerror(errno));
			return -1;
		}
	}
	if (p == MAP_FAILED) {
		avail = mem_available();
		if (avail && size > avail) {
			snprintf(err, errlen, "cannot lock %llu MiB: only %llu MiB of memory available",
				 (unsigned long long)size >> 20, (unsigned long long)avail >> 20);
			return -1;
		}
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			snprintf(err, errlen, "cannot allocate %llu bytes: %s",
				 (unsigned long long)size, strerror(errno));
			return -1;
		}
		pool->backing = "4k pages";
		if (mode == HUGEPAGES_AUTO && !madvise(p, size, MADV_HUGEPAGE))
			pool->backing = "thp";
	}
	pool->base = p;
	pool->size = size;
	if (mlock(pool->base, size)) {
		snprintf(err, errlen, "cannot lock %llu bytes: %s (raise RLIMIT_MEMLOCK, LimitMEMLOCK= in systemd)",
			 (unsigned long long)size, strerror(errno));
		pool_destroy(pool);
		return -1;
	}
	pool->slab_size = slab_size;
	pool->nr_slabs = size / slab_size;
	pool->nr_free = pool->nr_slabs;
	pool->owner = calloc(pool->nr_slabs, sizeof(*pool->owner));
	pool->mr = calloc(pool->nr_slabs, sizeof(*pool->mr));
	if (!pool->owner || !pool->mr || pool_start(pool)) {
		snprintf(err, errlen, "cannot start: %s", strerror(errno));
		pool_destroy(pool);
		return -1;
	}
	return 0;
}

/* The zeroing thread: zero what reclaim hands over, then free it. */
static void *pool_zero_thread(void *arg)
{
	struct pool *pool = arg;
	uint32_t index;

	pthread_mutex_lock(&pool->zero_lock);
	for (;;) {
		while (pool->zero_head == pool->zero_tail && !pool->zero_stop)
			pthread_cond_wait(&pool->zero_cond, &pool->zero_lock);
		if (pool->zero_head == pool->zero_tail)
			break;		/* stopping, and nothing left to zero */
		index = pool->zero_queue[pool->zero_head++ % pool->nr_slabs];
		pthread_mutex_unlock(&pool->zero_lock);
		memset(pool->base + (uint64_t)index * pool->slab_size, 0, pool->slab_size);
		pthread_mutex_lock(&pool->zero_lock);
		__atomic_store_n(&pool->owner[index], NULL, __ATOMIC_RELEASE);
		pool->nr_zeroing--;
		pthread_cond_broadcast(&pool->zeroed_cond);
	}
	pthread_mutex_unlock(&pool->zero_lock);
	return NULL;
}

/* pool_start() - the zeroing thread. Return: 0 or -1 with errno set. */
static int pool_start(struct pool *pool)
{
	sigset_t all, old;
	int ret;

	pool->zero_queue = calloc(pool->nr_slabs, sizeof(*pool->zero_queue));
	if (!pool->zero_queue)
		return -1;
	pthread_mutex_init(&pool->zero_lock, NULL);
	pthread_cond_init(&pool->zero_cond, NULL);
	pthread_cond_init(&pool->zeroed_cond, NULL);
	/* Signals are for the event loop's signalfd: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&pool->zero_thread, NULL, pool_zero_thread, pool);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		errno = ret;
		return -1;
	}
	pool->zero_started = true;
	return 0;
}

/* Let the zeroing thread finish what it was given, and end. */
static void pool_stop(struct pool *pool)
{
	if (!pool->zero_started)
		return;
	pthread_mutex_lock(&pool->zero_lock);
	pool->zero_stop = true;
	pthread_cond_signal(&pool->zero_cond);
	pthread_mutex_unlock(&pool->zero_lock);
	pthread_join(pool->zero_thread, NULL);
	pool->zero_started = false;
}

void pool_destroy(struct pool *pool)
{
	pool_stop(pool);
	free(pool->zero_queue);
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
	pthread_mutex_lock(&pool->zero_lock);
	for (;;) {
		for (i = 0; i < pool->nr_slabs && pool->owner[i]; i++)
			;
		if (i < pool->nr_slabs || !pool->nr_zeroing)
			break;
		/* Every free slab is still being zeroed: wait for one. */
		pthread_cond_wait(&pool->zeroed_cond, &pool->zero_lock);
	}
	pthread_mutex_unlock(&pool->zero_lock);
	if (i == pool->nr_slabs)
		return -ENOSPC;
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

/*
 * pool_reclaim() - deregister slab @index, then hand it to the zeroing
 * thread, which frees it once zero.
 */
void pool_reclaim(struct pool *pool, uint32_t index)
{
	struct session *s = pool->owner[index];

	ibv_dereg_mr(pool->mr[index]);
	pool->mr[index] = NULL;
	s->nr_held--;
	pool->nr_free++;
	pthread_mutex_lock(&pool->zero_lock);
	pool->owner[index] = POOL_ZEROING;
	pool->nr_zeroing++;
	pool->zero_queue[pool->zero_tail++ % pool->nr_slabs] = index;
	pthread_cond_signal(&pool->zero_cond);
	pthread_mutex_unlock(&pool->zero_lock);
}

