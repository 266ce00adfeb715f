// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the memnodes of a device - connecting, leasing, recovery.
 *
 * Each memnode gets a control queue (0) and one data queue per blk-mq
 * hardware queue. Slab i of the device lives on memnode i % nr_memnodes, so
 * memnode m holds slabs m, m + nr_memnodes, ...
 *
 * Life of a memnode:
 *
 *   NEW --connect, lease--> CONNECTED --error--> RECONNECTING --resume--> CONNECTED
 *                                                     |
 *                                    lease token refused (data gone)
 *                                                     v
 *                                                    DOWN
 *
 * Any error on a connected memnode (a failed work request, a CM event that
 * ends a connection, a missed keepalive, a request timeout) moves it to
 * RECONNECTING once and queues err_work, which quiesces the disk so that no
 * queue_rq() still uses the queues, flushes them (in-flight requests are
 * requeued), frees them and starts reconnect_work. Requests for a
 * RECONNECTING memnode wait (BLK_STS_RESOURCE) for up to io_timeout, then
 * fail. Reconnecting presents the lease token, so the memnode hands back the
 * same slabs with their data; LIST confirms each of them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "rmai.h"

static const char * const rmai_mn_state_names[] = {
	[RMAI_MN_NEW]		= "new",
	[RMAI_MN_CONNECTED]	= "connected",
	[RMAI_MN_RECONNECTING]	= "reconnecting",
	[RMAI_MN_DOWN]		= "down",
};

/**
 * rmai_mn_state_name() - a memnode state as sysfs shows it
 * @state: &enum rmai_mn_state
 *
 * Return: a constant string.
 */
const char *rmai_mn_state_name(int state)
{
	if (state >= 0 && state < ARRAY_SIZE(rmai_mn_state_names))
		return rmai_mn_state_names[state];
	return "unknown";
}

/* --- queues ---------------------------------------------------------------- */

/* Stop and free every queue of @mn; control buffers are unmapped between. */
static void rmai_mn_teardown_queues(struct rmai_memnode *mn)
{
	int i;

	for (i = mn->nr_queues - 1; i >= 0; i--)
		rmai_queue_stop(&mn->queues[i]);
	if (mn->queues[0].cm_id)
		rmai_ctrl_exit(mn);
	for (i = mn->nr_queues - 1; i >= 0; i--)
		rmai_queue_free(&mn->queues[i]);
}

static int rmai_mn_connect_queue(struct rmai_memnode *mn, unsigned int qid)
{
	struct rmai_queue *queue = &mn->queues[qid];
	int ret;

	ret = rmai_queue_connect(queue);
	if (ret)
		pr_err("memnode %pISpc: cannot connect queue %u: %s (%pe)\n",
		       &mn->addr, qid, queue->cm_reason ?: "error", ERR_PTR(ret));
	return ret;
}

/*
 * Connect queue 0 (opening a session, or resuming it with mn->token), say
 * HELLO, then connect the data queues into the session.
 */
static int rmai_mn_connect(struct rmai_memnode *mn)
{
	const struct rmai_cm_rep *rep = &mn->queues[0].rep;
	unsigned int qid;
	u64 slab_size;
	int ret;

	ret = rmai_mn_connect_queue(mn, 0);
	if (ret)
		return ret;
	slab_size = le64_to_cpu(rep->slab_size);
	if (!is_power_of_2(slab_size) || slab_size < RMAI_MAX_IO_BYTES ||
	    (mn->slab_size && slab_size != mn->slab_size)) {
		pr_err("memnode %pISpc: unusable slab size %llu (a power of two >= %u, the same on every memnode)\n",
		       &mn->addr, slab_size, RMAI_MAX_IO_BYTES);
		ret = -EINVAL;
		goto out_teardown;
	}
	mn->slab_size = slab_size;
	mn->token = le64_to_cpu(rep->token);
	mn->nr_free = le32_to_cpu(rep->nr_free);

	ret = rmai_ctrl_init(mn);
	if (ret)
		goto out_teardown;
	ret = rmai_ctrl_hello(mn);
	if (ret) {
		pr_err("memnode %pISpc: HELLO failed (%pe)\n", &mn->addr, ERR_PTR(ret));
		goto out_teardown;
	}
	for (qid = 1; qid < mn->nr_queues; qid++) {
		ret = rmai_mn_connect_queue(mn, qid);
		if (ret)
			goto out_teardown;
	}
	return 0;

out_teardown:
	rmai_mn_teardown_queues(mn);
	return ret;
}

/* --- leases ---------------------------------------------------------------- */

/* Lease every slab of the device that lives on @mn, a fresh session. */
static int rmai_mn_lease(struct rmai_memnode *mn)
{
	struct rmai_dev *dev = mn->dev;
	struct rmai_slab_desc desc[RMAI_MSG_MAX_SLABS];
	unsigned int i, j = 0, n, k;
	int ret;

	if (mn->nr_slabs > mn->nr_free) {
		pr_err("memnode %pISpc has %u free slabs of %llu MiB, %u needed\n",
		       &mn->addr, mn->nr_free, mn->slab_size >> 20, mn->nr_slabs);
		return -ENOSPC;
	}
	i = mn->idx;
	while (j < mn->nr_slabs) {
		n = min_t(unsigned int, mn->nr_slabs - j, RMAI_MSG_MAX_SLABS);
		ret = rmai_ctrl_alloc(mn, n, desc);
		if (ret) {
			pr_err("memnode %pISpc: cannot lease %u slabs (%pe)\n",
			       &mn->addr, n, ERR_PTR(ret));
			return ret;
		}
		for (k = 0; k < n; k++, j++, i += dev->nr_memnodes) {
			dev->slabs[i].mn = mn;
			dev->slabs[i].addr = le64_to_cpu(desc[k].addr);
			dev->slabs[i].rkey = le32_to_cpu(desc[k].rkey);
			dev->slabs[i].index = le32_to_cpu(desc[k].index);
			dev->slabs[i].leased = true;
		}
	}
	return 0;
}

static int rmai_mn_release_batch(struct rmai_memnode *mn, const u32 *index, u32 n)
{
	int ret = rmai_ctrl_release(mn, n, index);

	if (ret)
		pr_warn("memnode %pISpc: cannot release slabs (%pe); it reclaims them after its grace period\n",
			&mn->addr, ERR_PTR(ret));
	return ret;
}

/* Give @mn's slabs back (clean teardown), so it need not wait for grace. */
static void rmai_mn_release(struct rmai_memnode *mn)
{
	struct rmai_slab *slabs = mn->dev->slabs;
	u32 index[RMAI_MSG_MAX_SLABS];
	unsigned int i, n = 0;

	for (i = mn->idx; i < mn->dev->nr_slabs; i += mn->dev->nr_memnodes) {
		if (!slabs[i].leased)
			continue;
		slabs[i].leased = false;
		index[n++] = slabs[i].index;
		if (n < RMAI_MSG_MAX_SLABS)
			continue;
		if (rmai_mn_release_batch(mn, index, n))
			return;
		n = 0;
	}
	if (n)
		rmai_mn_release_batch(mn, index, n);
}

static struct rmai_slab *rmai_mn_find_slab(struct rmai_memnode *mn, u32 index)
{
	unsigned int i;

	for (i = mn->idx; i < mn->dev->nr_slabs; i += mn->dev->nr_memnodes)
		if (mn->dev->slabs[i].index == index)
			return &mn->dev->slabs[i];
	return NULL;
}

/*
 * After a resume: the memnode must still hold exactly our slabs. Refresh
 * their addresses and keys from its LIST (they do not change while the
 * memnode keeps the lease, but the reply is the authority).
 */
static int rmai_mn_check_lease(struct rmai_memnode *mn)
{
	struct rmai_slab_desc desc[RMAI_MSG_MAX_SLABS];
	struct rmai_slab *slab;
	u32 start = 0, total, count, k;
	int ret;

	do {
		ret = rmai_ctrl_list(mn, start, &total, &count, desc);
		if (ret)
			return ret;
		if (total != mn->nr_slabs) {
			pr_err("memnode %pISpc holds %u slabs for us, %u expected\n",
			       &mn->addr, total, mn->nr_slabs);
			return -ESTALE;
		}
		for (k = 0; k < count; k++) {
			slab = rmai_mn_find_slab(mn, le32_to_cpu(desc[k].index));
			if (!slab) {
				pr_err("memnode %pISpc lists slab %u, which is not ours\n",
				       &mn->addr, le32_to_cpu(desc[k].index));
				return -ESTALE;
			}
			slab->addr = le64_to_cpu(desc[k].addr);
			slab->rkey = le32_to_cpu(desc[k].rkey);
		}
		start += count;
	} while (count && start < total);
	return start == total ? 0 : -EPROTO;
}

/* --- recovery -------------------------------------------------------------- */

#define RMAI_MN_ANY	(-1)	/* rmai_mn_set_state() from any state */

/*
 * Move @mn from state @from (or any) to @to; false when it was not in @from.
 * Leaving CONNECTED stamps down_since first, and the state is published
 * after it, so that rmai_memnode_ready() never pairs a new state with an old
 * stamp.
 */
static bool rmai_mn_set_state(struct rmai_memnode *mn, int from, int to)
{
	unsigned long flags;
	bool ok;

	spin_lock_irqsave(&mn->state_lock, flags);
	ok = from == RMAI_MN_ANY || mn->state == from;
	if (ok) {
		if (mn->state == RMAI_MN_CONNECTED)
			WRITE_ONCE(mn->down_since, jiffies);
		/* Pairs with smp_load_acquire() in rmai_memnode_ready(). */
		smp_store_release(&mn->state, to);
	}
	spin_unlock_irqrestore(&mn->state_lock, flags);
	return ok;
}

/**
 * rmai_memnode_error() - a connected memnode failed: start recovery
 * @mn: the memnode
 *
 * Safe from any context, and idempotent: only the first caller after the
 * memnode went CONNECTED queues the recovery.
 */
void rmai_memnode_error(struct rmai_memnode *mn)
{
	if (rmai_mn_set_state(mn, RMAI_MN_CONNECTED, RMAI_MN_RECONNECTING))
		queue_work(rmai_wq, &mn->err_work);
}

static void rmai_mn_err_work(struct work_struct *work)
{
	struct rmai_memnode *mn = container_of(work, struct rmai_memnode, err_work);
	struct request_queue *q = mn->dev->disk->queue;
	unsigned int noio = memalloc_noio_save();

	pr_warn("memnode %pISpc lost; reconnecting, I/O to it waits up to %lu s\n",
		&mn->addr, rmai_cfg.io_timeout / HZ);
	cancel_delayed_work_sync(&mn->keepalive_work);
	mutex_lock(&mn->setup_lock);
	/* After this, no queue_rq() can still be posting on our queues. */
	blk_mq_quiesce_queue(q);
	rmai_mn_teardown_queues(mn);
	blk_mq_unquiesce_queue(q);
	mn->attempt = 0;
	if (READ_ONCE(mn->state) == RMAI_MN_RECONNECTING)
		queue_delayed_work(rmai_wq, &mn->reconnect_work, rmai_cfg.reconnect_delay);
	mutex_unlock(&mn->setup_lock);
	memalloc_noio_restore(noio);
}

static unsigned long rmai_mn_backoff(unsigned int attempt)
{
	unsigned long delay = rmai_cfg.reconnect_delay << min(attempt, 10U);

	delay = min(delay, rmai_cfg.reconnect_max);
	return delay + get_random_u32() % (delay / 4 + 1);	/* jitter */
}

static void rmai_mn_reconnect_work(struct work_struct *work)
{
	struct rmai_memnode *mn = container_of(to_delayed_work(work),
					       struct rmai_memnode, reconnect_work);
	unsigned int noio = memalloc_noio_save();
	unsigned long delay;
	int ret;

	mutex_lock(&mn->setup_lock);
	if (READ_ONCE(mn->state) != RMAI_MN_RECONNECTING)
		goto out_unlock;
	mn->attempt++;
	ret = rmai_mn_connect(mn);
	if (!ret) {
		ret = rmai_mn_check_lease(mn);
		if (ret)
			rmai_mn_teardown_queues(mn);
	}
	if (ret == -ESTALE) {
		pr_err("memnode %pISpc: our lease is gone (the memnode restarted or its grace period ran out): its data is lost, I/O to it fails\n",
		       &mn->addr);
		rmai_mn_set_state(mn, RMAI_MN_RECONNECTING, RMAI_MN_DOWN);
		rmai_wb_drop(mn);
		rmai_blk_kick(mn->dev);
		goto out_unlock;
	}
	if (ret) {
		delay = rmai_mn_backoff(mn->attempt);
		pr_info("memnode %pISpc: reconnect attempt %u failed (%pe), next in %u ms\n",
			&mn->addr, mn->attempt, ERR_PTR(ret), jiffies_to_msecs(delay));
		queue_delayed_work(rmai_wq, &mn->reconnect_work, delay);
		goto out_unlock;
	}
	if (!rmai_mn_set_state(mn, RMAI_MN_RECONNECTING, RMAI_MN_CONNECTED)) {
		rmai_mn_teardown_queues(mn);	/* the device is going away */
		goto out_unlock;
	}
	mn->reconnects++;
	pr_info("memnode %pISpc: reconnected after %u ms (attempt %u), lease of %u slabs resumed\n",
		&mn->addr, jiffies_to_msecs(jiffies - mn->down_since), mn->attempt,
		mn->nr_slabs);
	if (rmai_cfg.keepalive)
		queue_delayed_work(rmai_wq, &mn->keepalive_work, rmai_cfg.keepalive);
	rmai_wb_resume(mn);
	rmai_blk_kick(mn->dev);
out_unlock:
	mutex_unlock(&mn->setup_lock);
	memalloc_noio_restore(noio);
}

static void rmai_mn_keepalive_work(struct work_struct *work)
{
	struct rmai_memnode *mn = container_of(to_delayed_work(work),
					       struct rmai_memnode, keepalive_work);
	int ret;

	if (READ_ONCE(mn->state) != RMAI_MN_CONNECTED)
		return;
	ret = rmai_ctrl_keepalive(mn);
	if (ret) {
		pr_warn("memnode %pISpc: keepalive failed (%pe)\n", &mn->addr, ERR_PTR(ret));
		rmai_memnode_error(mn);
		return;
	}
	queue_delayed_work(rmai_wq, &mn->keepalive_work, rmai_cfg.keepalive);
}

/* --- the device's memnodes ------------------------------------------------- */

static int rmai_mn_init(struct rmai_dev *dev, unsigned int idx)
{
	struct rmai_memnode *mn = &dev->memnodes[idx];
	unsigned int qid;

	mn->dev = dev;
	mn->idx = idx;
	mn->addr = rmai_cfg.memnodes[idx];
	mn->state = RMAI_MN_NEW;
	mn->nr_queues = 1 + rmai_cfg.nr_queues;
	mn->queues = kcalloc(mn->nr_queues, sizeof(*mn->queues), GFP_KERNEL);
	mn->ctrl.req = kzalloc(RMAI_MSG_SIZE, GFP_KERNEL);
	mn->ctrl.rep = kzalloc(RMAI_MSG_SIZE, GFP_KERNEL);
	if (!mn->queues || !mn->ctrl.req || !mn->ctrl.rep)
		return -ENOMEM;
	for (qid = 0; qid < mn->nr_queues; qid++) {
		mn->queues[qid].mn = mn;
		mn->queues[qid].qid = qid;
	}
	mutex_init(&mn->ctrl.lock);
	init_completion(&mn->ctrl.send_done);
	init_completion(&mn->ctrl.recv_done);
	spin_lock_init(&mn->state_lock);
	INIT_LIST_HEAD(&mn->wb_retry);
	mutex_init(&mn->setup_lock);
	INIT_WORK(&mn->err_work, rmai_mn_err_work);
	INIT_DELAYED_WORK(&mn->reconnect_work, rmai_mn_reconnect_work);
	INIT_DELAYED_WORK(&mn->keepalive_work, rmai_mn_keepalive_work);
	return 0;
}

static void rmai_mn_exit(struct rmai_memnode *mn)
{
	kfree(mn->ctrl.rep);
	kfree(mn->ctrl.req);
	kfree(mn->queues);
}

/**
 * rmai_memnodes_connect() - connect every memnode and lease the device's slabs
 * @dev: the device, with @dev->size set
 *
 * Every memnode must answer within connect_timeout and report the same slab
 * size; the device's slabs are spread over them round-robin.
 *
 * Return: 0, or a negative errno with everything undone.
 */
int rmai_memnodes_connect(struct rmai_dev *dev)
{
	struct rmai_memnode *mn;
	unsigned int i;
	int ret;

	dev->nr_memnodes = rmai_cfg.nr_memnodes;
	dev->memnodes = kcalloc(dev->nr_memnodes, sizeof(*dev->memnodes), GFP_KERNEL);
	if (!dev->memnodes)
		return -ENOMEM;
	for (i = 0; i < dev->nr_memnodes; i++) {
		ret = rmai_mn_init(dev, i);
		if (ret)
			goto out_exit;
	}

	for (i = 0; i < dev->nr_memnodes; i++) {
		mn = &dev->memnodes[i];
		mn->slab_size = i ? dev->memnodes[0].slab_size : 0;
		ret = rmai_mn_connect(mn);
		if (ret)
			goto out_disconnect;
	}

	mn = &dev->memnodes[0];
	dev->slab_shift = ilog2(mn->slab_size);
	dev->nr_slabs = DIV_ROUND_UP_ULL(dev->size, mn->slab_size);
	dev->slabs = kvcalloc(dev->nr_slabs, sizeof(*dev->slabs), GFP_KERNEL);
	if (!dev->slabs) {
		ret = -ENOMEM;
		goto out_disconnect;
	}
	for (i = 0; i < dev->nr_memnodes; i++) {
		mn = &dev->memnodes[i];
		mn->nr_slabs = dev->nr_slabs / dev->nr_memnodes +
			       (i < dev->nr_slabs % dev->nr_memnodes);
		ret = rmai_mn_lease(mn);
		if (ret)
			goto out_release;
	}
	return 0;

out_release:
	for (i = 0; i < dev->nr_memnodes; i++)
		rmai_mn_release(&dev->memnodes[i]);
	kvfree(dev->slabs);
	dev->slabs = NULL;
	i = dev->nr_memnodes;
out_disconnect:
	while (i--)
		rmai_mn_teardown_queues(&dev->memnodes[i]);
out_exit:
	for (i = 0; i < dev->nr_memnodes; i++)	/* zeroed ones too */
		rmai_mn_exit(&dev->memnodes[i]);
	kfree(dev->memnodes);
	dev->memnodes = NULL;
	return ret;
}

/**
 * rmai_memnodes_go_live() - let I/O reach the memnodes and start keepalives
 * @dev: the device, its disk allocated but not yet added
 */
void rmai_memnodes_go_live(struct rmai_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->nr_memnodes; i++) {
		rmai_mn_set_state(&dev->memnodes[i], RMAI_MN_NEW, RMAI_MN_CONNECTED);
		if (rmai_cfg.keepalive)
			queue_delayed_work(rmai_wq, &dev->memnodes[i].keepalive_work,
					   rmai_cfg.keepalive);
	}
}

/**
 * rmai_memnodes_stop_recovery() - undo rmai_memnodes_go_live()
 * @dev: the device, its disk deleted
 *
 * Every memnode goes DOWN, so nothing starts recovery any more, then the
 * recovery, reconnect and keepalive work items are cancelled, and staged
 * writes still waiting for a reconnect are dropped. Queues stay as they are
 * (up, or down after a failure) for rmai_memnodes_disconnect().
 */
void rmai_memnodes_stop_recovery(struct rmai_dev *dev)
{
	struct rmai_memnode *mn;
	unsigned int i;

	for (i = 0; i < dev->nr_memnodes; i++) {
		mn = &dev->memnodes[i];
		rmai_mn_set_state(mn, RMAI_MN_ANY, RMAI_MN_DOWN);
		cancel_work_sync(&mn->err_work);
		cancel_delayed_work_sync(&mn->reconnect_work);
		cancel_delayed_work_sync(&mn->keepalive_work);
		rmai_wb_drop(mn);
	}
}

/**
 * rmai_memnodes_disconnect() - undo rmai_memnodes_connect()
 * @dev: the device, recovery stopped
 *
 * Slabs are released on the memnodes still connected (the others reclaim
 * them after their grace period), then every queue goes.
 */
void rmai_memnodes_disconnect(struct rmai_dev *dev)
{
	struct rmai_memnode *mn;
	unsigned int i = dev->nr_memnodes;

	while (i--) {
		mn = &dev->memnodes[i];
		if (mn->queues[0].cm_id)
			rmai_mn_release(mn);
		rmai_mn_teardown_queues(mn);
		rmai_mn_exit(mn);
	}
	kvfree(dev->slabs);
	kfree(dev->memnodes);
}

static bool rmai_mn_uses_ibdev(struct rmai_memnode *mn, struct ib_device *ibdev)
{
	unsigned int qid;

	for (qid = 0; qid < mn->nr_queues; qid++)
		if (mn->queues[qid].cm_id && mn->queues[qid].cm_id->device == ibdev)
			return true;
	return false;
}

/**
 * rmai_memnodes_remove_ibdev() - release everything @dev has on @ibdev
 * @dev: a live device
 * @ibdev: an RDMA device being removed
 *
 * Memnodes reached through @ibdev go to recovery, and this waits until their
 * queues are gone. They reconnect through another device, or through this
 * one when it comes back.
 */
void rmai_memnodes_remove_ibdev(struct rmai_dev *dev, struct ib_device *ibdev)
{
	struct rmai_memnode *mn;
	unsigned int i;
	bool uses;

	for (i = 0; i < dev->nr_memnodes; i++) {
		mn = &dev->memnodes[i];
		mutex_lock(&mn->setup_lock);
		uses = rmai_mn_uses_ibdev(mn, ibdev);
		mutex_unlock(&mn->setup_lock);
		if (!uses)
			continue;
		rmai_memnode_error(mn);
		flush_work(&mn->err_work);
	}
}
