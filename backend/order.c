// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the ordering of writes against reads and other writes.
 *
 * Every write registers the device pages it covers until the memnode has
 * them: a direct write until its RDMA WRITE completes, a staged write
 * (writeback.c) until its copy lands. Whoever overlaps a registered write
 * waits on that write's list, in order, and is driven again (through the
 * device's redrive callback) when it ends; nothing spins or holds up requests that
 * overlap nothing. A read that lies inside one staged write is served from
 * the staged copy instead of waiting: the slot is pinned under the lock and
 * copied outside it.
 *
 * Locking: order->lock (irqsave: completions run in softirq) protects the
 * tree and every range's waiters; it is held for tree work only.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "rmai.h"

/**
 * rmai_order_init() - an empty registry
 * @order: the device's
 */
void rmai_order_init(struct rmai_order *order)
{
	spin_lock_init(&order->lock);
	order->ranges = RB_ROOT_CACHED;
}

static struct rmai_range *rmai_order_first(struct rmai_order *order, u64 first, u64 last)
{
	struct interval_tree_node *node = interval_tree_iter_first(&order->ranges, first, last);

	return node ? container_of(node, struct rmai_range, node) : NULL;
}

/**
 * rmai_order_begin() - register a write of [@pos, @pos + @len)
 * @dev: the device
 * @range: the write's node, owned by the caller until rmai_order_end()
 * @pos: byte offset on the device
 * @len: bytes
 * @waiter: the request to park when the pages overlap a write in flight
 *
 * Return: true when registered; false when @waiter was parked instead,
 * to be driven again once that write ends.
 */
bool rmai_order_begin(struct rmai_dev *dev, struct rmai_range *range, u64 pos,
		      u64 len, struct rmai_cmd *waiter)
{
	struct rmai_order *order = &dev->order;
	struct rmai_range *busy;
	unsigned long flags;

	range->node.start = pos >> PAGE_SHIFT;
	range->node.last = (pos + len - 1) >> PAGE_SHIFT;
	INIT_LIST_HEAD(&range->waiters);
	spin_lock_irqsave(&order->lock, flags);
	busy = rmai_order_first(order, range->node.start, range->node.last);
	if (busy) {
		waiter->where = RMAI_CMD_WAITING;
		list_add_tail(&waiter->wait, &busy->waiters);
	} else {
		interval_tree_insert(&range->node, &order->ranges);
	}
	spin_unlock_irqrestore(&order->lock, flags);
	return !busy;
}

/**
 * rmai_order_busy() - is a write over [@pos, @pos + @len) in flight?
 * @dev: the device
 * @pos: byte offset on the device
 * @len: bytes
 *
 * Return: true when one is.
 */
bool rmai_order_busy(struct rmai_dev *dev, u64 pos, u64 len)
{
	struct rmai_order *order = &dev->order;
	unsigned long flags;
	bool busy;

	spin_lock_irqsave(&order->lock, flags);
	busy = rmai_order_first(order, pos >> PAGE_SHIFT, (pos + len - 1) >> PAGE_SHIFT);
	spin_unlock_irqrestore(&order->lock, flags);
	return busy;
}

/**
 * rmai_order_end() - the write of @range is on the memnode, or never will be
 * @dev: the device
 * @range: as given to rmai_order_begin()
 *
 * The requests that waited for it are driven again.
 */
void rmai_order_end(struct rmai_dev *dev, struct rmai_range *range)
{
	struct rmai_order *order = &dev->order;
	unsigned long flags;
	LIST_HEAD(woken);

	spin_lock_irqsave(&order->lock, flags);
	interval_tree_remove(&range->node, &order->ranges);
	list_splice_init(&range->waiters, &woken);
	spin_unlock_irqrestore(&order->lock, flags);
	if (!list_empty(&woken))
		dev->cmd_ops->redrive(dev, &woken);
}

/**
 * rmai_order_wake() - drive again the requests waiting for @range, which
 *	stays registered (its memnode is gone for longer than io_timeout: they
 *	fail now instead of waiting for it)
 * @dev: the device
 * @range: a registered range
 */
void rmai_order_wake(struct rmai_dev *dev, struct rmai_range *range)
{
	struct rmai_order *order = &dev->order;
	unsigned long flags;
	LIST_HEAD(woken);

	spin_lock_irqsave(&order->lock, flags);
	list_splice_init(&range->waiters, &woken);
	spin_unlock_irqrestore(&order->lock, flags);
	if (!list_empty(&woken))
		dev->cmd_ops->redrive(dev, &woken);
}

/**
 * rmai_order_read() - may a read of [@pos, @pos + @len) go to the memnode?
 * @dev: the device
 * @pos: byte offset on the device
 * @len: bytes
 * @cmd: the read, parked when it must wait
 * @slot: set to the pinned staged write it lies in (RMAI_ORDER_STAGED);
 *	the caller copies it out and unpins it
 *
 * Return: &enum rmai_order_read.
 */
enum rmai_order_read rmai_order_read(struct rmai_dev *dev, u64 pos, u64 len,
				     struct rmai_cmd *cmd,
				     struct rmai_wb_slot **slot)
{
	struct rmai_order *order = &dev->order;
	u64 first = pos >> PAGE_SHIFT, last = (pos + len - 1) >> PAGE_SHIFT;
	enum rmai_order_read ret = RMAI_ORDER_CLEAR;
	struct rmai_range *busy;
	unsigned long flags;

	/* Lockless peek: no write in flight at all is the common case. */
	if (!READ_ONCE(order->ranges.rb_root.rb_node))
		return RMAI_ORDER_CLEAR;
	spin_lock_irqsave(&order->lock, flags);
	busy = rmai_order_first(order, first, last);
	if (busy && busy->staged && busy->node.start <= first && busy->node.last >= last &&
	    !interval_tree_iter_next(&busy->node, first, last)) {
		atomic_inc(&busy->staged->pins);
		*slot = busy->staged;
		ret = RMAI_ORDER_STAGED;
	} else if (busy) {
		cmd->where = RMAI_CMD_WAITING;
		list_add_tail(&cmd->wait, &busy->waiters);
		ret = RMAI_ORDER_WAIT;
	}
	spin_unlock_irqrestore(&order->lock, flags);
	return ret;
}
