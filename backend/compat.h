/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where RMAI meets differences between the kernels it supports
 * (Debian's 6.12 and 6.1). Each shim is keyed by the feature it papers over,
 * probed where the kernel defines something to probe, and names the upstream
 * change that introduced the difference.
 */
#ifndef RMAI_COMPAT_H
#define RMAI_COMPAT_H

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/shrinker.h>

#ifdef BLK_FEAT_SYNCHRONOUS
/*
 * v6.11, "block: move the synchronous flag to queue_limits": features are
 * part of queue_limits, which blk_mq_alloc_disk() takes since v6.9 ("block:
 * pass a queue_limits argument to blk_mq_alloc_disk"), and devices are
 * non-rotational unless they say otherwise.
 */
static inline struct gendisk *
rmai_alloc_disk(struct blk_mq_tag_set *set, struct queue_limits *lim,
		bool synchronous, bool write_cache, void *queuedata)
{
	if (synchronous)
		lim->features |= BLK_FEAT_SYNCHRONOUS;
	if (write_cache)
		lim->features |= BLK_FEAT_WRITE_CACHE;
	return blk_mq_alloc_disk(set, lim, queuedata);
}

#define RMAI_FOPS_SYNCHRONOUS	/* a queue_limits feature instead */

#else /* 6.1 */

/*
 * 6.1: limits are set on the queue after blk_mq_alloc_disk(), and the queue
 * is rotational until told otherwise. WRITE_ZEROES stays off: 6.1's
 * bio_split_write_zeroes() splits only at max_write_zeroes_sectors, not at
 * chunk_sectors (6.12 uses get_max_io_size()), so such a request could span
 * two slabs; blkdev_issue_zeroout() falls back to writing zero pages.
 */
static inline struct gendisk *
rmai_alloc_disk(struct blk_mq_tag_set *set, struct queue_limits *lim,
		bool synchronous, bool write_cache, void *queuedata)
{
	struct gendisk *disk = blk_mq_alloc_disk(set, queuedata);
	struct request_queue *q;

	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	blk_queue_logical_block_size(q, lim->logical_block_size);
	blk_queue_physical_block_size(q, lim->physical_block_size);
	blk_queue_io_min(q, lim->io_min);
	blk_queue_max_hw_sectors(q, lim->max_hw_sectors);
	blk_queue_chunk_sectors(q, lim->chunk_sectors);
	blk_queue_max_segments(q, lim->max_segments);
	blk_queue_max_segment_size(q, lim->max_segment_size);
	blk_queue_max_discard_sectors(q, lim->max_hw_discard_sectors);
	q->limits.discard_granularity = lim->discard_granularity;
	blk_queue_max_write_zeroes_sectors(q, 0);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
	blk_queue_write_cache(q, write_cache, false);
	return disk;
}

/*
 * 6.1's swapon sets SWP_SYNCHRONOUS_IO when the disk has ->rw_page (v6.3,
 * "block: remove ->rw_page", keyed it off a queue flag instead, which v6.11
 * turned into BLK_FEAT_SYNCHRONOUS). An ->rw_page
 * that declines every page is enough: bdev_read_page() and
 * bdev_write_page() then return its error, and swap submits a bio instead,
 * waiting for it where it would have waited for ->rw_page.
 */
static inline int rmai_rw_page_decline(struct block_device *bdev,
				       sector_t sector, struct page *page,
				       enum req_op op)
{
	return -EOPNOTSUPP;
}

#define RMAI_FOPS_SYNCHRONOUS	.rw_page = rmai_rw_page_decline,

#endif /* BLK_FEAT_SYNCHRONOUS */

#ifdef SHRINKER_ALLOCATED
/*
 * v6.7, "mm: shrinker: add infrastructure for dynamically allocating shrinker":
 * shrinkers are allocated by the core and carry a private pointer.
 */
static inline struct shrinker *
rmai_shrinker_create(unsigned long (*count)(struct shrinker *, struct shrink_control *),
		     unsigned long (*scan)(struct shrinker *, struct shrink_control *),
		     void *data, const char *fmt, int id)
{
	struct shrinker *s = shrinker_alloc(0, fmt, id);

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->private_data = data;
	shrinker_register(s);
	return s;
}

static inline void rmai_shrinker_destroy(struct shrinker *s)
{
	shrinker_free(s);
}

static inline void *rmai_shrinker_data(struct shrinker *s)
{
	return s->private_data;
}

#else /* 6.1: the caller's struct shrinker, registered by name */

struct rmai_shrinker {
	struct shrinker shrinker;	/* registered with the core */
	void *data;			/* the caller's */
};

static inline struct shrinker *
rmai_shrinker_create(unsigned long (*count)(struct shrinker *, struct shrink_control *),
		     unsigned long (*scan)(struct shrinker *, struct shrink_control *),
		     void *data, const char *fmt, int id)
{
	struct rmai_shrinker *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->shrinker.count_objects = count;
	s->shrinker.scan_objects = scan;
	s->shrinker.seeks = DEFAULT_SEEKS;
	s->data = data;
	if (register_shrinker(&s->shrinker, fmt, id)) {
		kfree(s);
		return NULL;
	}
	return &s->shrinker;
}

static inline void rmai_shrinker_destroy(struct shrinker *s)
{
	unregister_shrinker(s);
	kfree(container_of(s, struct rmai_shrinker, shrinker));
}

static inline void *rmai_shrinker_data(struct shrinker *s)
{
	return container_of(s, struct rmai_shrinker, shrinker)->data;
}

#endif /* SHRINKER_ALLOCATED */

#endif /* RMAI_COMPAT_H */
