// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: /sys/block/rmaiN/rmai/, created with the disk. Each file is lines
 * of fixed columns, documented in Documentation/ABI/testing/ and
 * README.md ("Statistics"); selftests/abi_docs.sh holds the ABI entries to
 * the list below. A column that is ever retired stays, as 0.
 *
 *   io_stat     reads writes discards write_zeroes flushes read_bytes
 *               write_bytes errors requeues in_flight
 *   memnodes    one line per memnode: index address state slabs reconnects
 *   latency_us  one line per bucket: upper_bound_us reads writes
 *   cache_stat  hits misses evictions prefetch_used_bytes
 *               prefetch_wasted_bytes shrunk_bytes cache_bytes
 *               cache_max_bytes staged_writes staged_reads readahead_vmrs
 *   remote_stat sent_bytes fetched_bytes elided_writes elided_bytes
 *               zeroed_bytes freed_pages free_remote_bytes
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/sysfs.h>

#include "rmai.h"

static struct rmai_dev *rmai_dev_of(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

/*
 * The counters summed over CPUs, in a buffer the caller frees; NULL without
 * memory. Each counter is exact, the set is not a snapshot. Every member of
 * struct rmai_stats is a u64 counter, so it is summed as an array of them.
 */
static struct rmai_stats *rmai_stats_get(struct rmai_dev *dev)
{
	struct rmai_stats *sum = kzalloc(sizeof(*sum), GFP_KERNEL);
	u64 *total = (u64 *)sum;
	const u64 *part;
	unsigned int i;
	int cpu;

	if (!sum)
		return NULL;
	for_each_possible_cpu(cpu) {
		part = (const u64 *)per_cpu_ptr(dev->stats, cpu);
		for (i = 0; i < sizeof(*sum) / sizeof(u64); i++)
			total[i] += READ_ONCE(part[i]);
	}
	return sum;
}

static ssize_t io_stat_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	struct rmai_stats *sum;
	ssize_t len;

	sum = rmai_stats_get(rmai_dev_of(d));
	if (!sum)
		return -ENOMEM;
	len = sysfs_emit(buf, "%8llu %8llu %8llu %8llu %8llu %12llu %12llu %8llu %8llu %8lld\n",
			 sum->ops[RMAI_IO_READ], sum->ops[RMAI_IO_WRITE],
			 sum->ops[RMAI_IO_DISCARD], sum->ops[RMAI_IO_WRITE_ZEROES],
			 sum->ops[RMAI_IO_FLUSH], sum->bytes[RMAI_IO_READ],
			 sum->bytes[RMAI_IO_WRITE], sum->errors, sum->requeues,
			 (s64)(sum->started - sum->finished));
	kfree(sum);
	return len;
}
static DEVICE_ATTR_RO(io_stat);

static ssize_t memnodes_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	struct rmai_dev *dev = rmai_dev_of(d);
	struct rmai_memnode *mn;
	unsigned int i;
	int len = 0;

	for (i = 0; i < dev->nr_memnodes; i++) {
		mn = &dev->memnodes[i];
		len += sysfs_emit_at(buf, len, "%u %pISpc %s %u %u\n", mn->idx,
				     &mn->addr, rmai_mn_state_name(READ_ONCE(mn->state)),
				     mn->nr_slabs, READ_ONCE(mn->reconnects));
	}
	return len;
}
static DEVICE_ATTR_RO(memnodes);

static ssize_t latency_us_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	struct rmai_stats *sum;
	int b, len = 0;

	sum = rmai_stats_get(rmai_dev_of(d));
	if (!sum)
		return -ENOMEM;
	for (b = 0; b < RMAI_LAT_BUCKETS; b++)
		len += sysfs_emit_at(buf, len, "%8lu %10llu %10llu\n", 1UL << b,
				     sum->lat[RMAI_IO_READ][b], sum->lat[RMAI_IO_WRITE][b]);
	kfree(sum);
	return len;
}
static DEVICE_ATTR_RO(latency_us);

static ssize_t cache_stat_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	struct rmai_dev *dev = rmai_dev_of(d);
	u64 vmr = 1ULL << dev->vmr_shift, entries = 0, max = 0;
	struct rmai_stats *sum;
	unsigned int i;
	ssize_t len;

	for (i = 0; i < dev->cache.nr_shards; i++) {
		entries += READ_ONCE(dev->cache.shards[i].nr_entries);
		max += dev->cache.shards[i].max_entries;
	}
	sum = rmai_stats_get(dev);
	if (!sum)
		return -ENOMEM;
	len = sysfs_emit(buf,
			 "%8llu %8llu %8llu %12llu %12llu %12llu %12llu %12llu %8llu %8llu %8llu\n",
			 sum->cache_hits, sum->cache_misses, sum->evictions,
			 sum->prefetch_used, sum->prefetch_wasted, sum->shrunk,
			 entries * vmr, max * vmr, sum->staged, sum->staged_reads,
			 sum->readahead);
	kfree(sum);
	return len;
}
static DEVICE_ATTR_RO(cache_stat);

static ssize_t remote_stat_show(struct device *d, struct device_attribute *attr,
				char *buf)
{
	struct rmai_dev *dev = rmai_dev_of(d);
	struct rmai_stats *sum;
	u64 free_pages = 0;
	unsigned int i;
	ssize_t len;

	for (i = 0; i < dev->pm.nr_zones; i++)
		free_pages += READ_ONCE(dev->pm.zones[i].nr_free);
	sum = rmai_stats_get(dev);
	if (!sum)
		return -ENOMEM;
	len = sysfs_emit(buf, "%12llu %12llu %8llu %12llu %12llu %8llu %12llu\n",
			 sum->sent_bytes, sum->fetched_bytes, sum->elided_writes,
			 sum->elided_bytes, sum->zeroed_bytes, sum->freed_pages,
			 free_pages << PAGE_SHIFT);
	kfree(sum);
	return len;
}
static DEVICE_ATTR_RO(remote_stat);

static struct attribute *rmai_attrs[] = {
	&dev_attr_io_stat.attr,
	&dev_attr_memnodes.attr,
	&dev_attr_latency_us.attr,
	&dev_attr_cache_stat.attr,
	&dev_attr_remote_stat.attr,
	NULL,
};

static const struct attribute_group rmai_attr_group = {
	.name	= "rmai",
	.attrs	= rmai_attrs,
};

const struct attribute_group *rmai_disk_groups[] = {
	&rmai_attr_group,
	NULL,
};
