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
 *                      lease token refused, or the lease's hold time passed
 *                                                     v
 *                                                    DOWN
 *
 * Any error on a connected memnode (a failed work request, a CM event that
 * ends a connection, a missed keepalive, a request timeout) moves it to
 * RECONNECTING once and queues err_work, which takes its queues down
 * (posting stops, the QPs are drained: what was posted completes with an
 * error and waits for the reconnect) and starts reconnect_work. Requests for
 * a RECONNECTING memnode wait for up to io_timeout; expire_work then fails
 * them (ops->expired). Reconnecting presents the lease token, so the memnode
 * hands back the same slabs with their data; LIST confirms each of them.
 *
 * The memnode says in its accept how long it keeps a lost session's lease
 * (its grace, plus the time it takes to notice a vanished client): attempts
 * come at least every quarter of the grace, so one lands inside it once the
 * memnode is reachable again, and once the hold time has passed the lease is
 * known gone: the memnode goes DOWN without waiting for an answer.
 *
 * Connecting and reconnecting run in work items under memalloc_noio: the PD,
 * CQ and QP of a reconnect are allocated there (queue.c), never with
 * reclaim that could wait on swap to this very memnode.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "reply.h"
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

/**
 * rmai_memnode_ready() - may a request go to @mn now?
 * @mn: the memnode
 *
 * Return: RMAI_MN_GO (connected), RMAI_MN_WAIT (reconnecting, io_timeout
 * not yet passed) or RMAI_MN_FAIL.
 */
enum rmai_mn_ready rmai_memnode_ready(struct rmai_memnode *mn)
{
	switch (smp_load_acquire(&mn->state)) {	/* then down_since */
	case RMAI_MN_CONNECTED:
		return RMAI_MN_GO;
	case RMAI_MN_RECONNECTING:
		if (time_before(jiffies, READ_ONCE(mn->down_since) + rmai_cfg.io_timeout))
			return RMAI_MN_WAIT;
		fallthrough;
	default:
		return RMAI_MN_FAIL;
	}
}

/* --- queues ---------------------------------------------------------------- */

static void rmai_mn_queue_lost(struct rmai_queue *queue)
{
	rmai_memnode_error(queue->mn);
}

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

/* A data queue must meet the device's limits, which the first one sets. */
static int rmai_mn_check_limits(struct rmai_memnode *mn, struct rmai_queue *queue)
{
	struct rmai_dev *dev = mn->dev;
	struct rmai_queue_limits *lim = &queue->lim;

	if (!dev->lim.send_wrs) {
		dev->lim = *lim;
		return 0;
	}
	if (lim->sge_write < dev->lim.sge_write || lim->sge_read < dev->lim.sge_read) {
		queue->cm_reason = "its RDMA device allows fewer SGEs than the first one";
		return -EINVAL;
	}
	lim->sge_write = dev->lim.sge_write;
	lim->sge_read = dev->lim.sge_read;
	return 0;
}

static int rmai_mn_connect_queue(struct rmai_memnode *mn, unsigned int qid,
				 unsigned long timeout)
{
	struct rmai_queue *queue = &mn->queues[qid];
	const struct rmai_cm_rep *rep = &queue->rep;
	struct rmai_cm_req req = {
		.magic = cpu_to_le32(RMAI_PROTO_MAGIC),
		.version = cpu_to_le16(RMAI_PROTO_VERSION),
		.qid = cpu_to_le16(qid),
		.token = cpu_to_le64(mn->token),
	};
	int ret;

	memcpy(req.client_id, mn->dev->client_id, sizeof(req.client_id));
	ret = rmai_queue_connect(queue, (struct sockaddr *)&mn->addr, &req, timeout);
	if (ret == -EREMOTEIO) {		/* the memnode said no */
		queue->cm_reason = rmai_status_name(le16_to_cpu(rep->status));
		ret = rmai_status_errno(le16_to_cpu(rep->status));
		if (!ret)
			ret = -EPROTO;
	}
	if (!ret && qid)
		ret = rmai_mn_check_limits(mn, queue);
	if (ret && queue->cm_id)
		rmai_queue_free(queue);
	if (ret)
		pr_err("memnode %pISpc: cannot connect queue %u: %s (%pe)\n",
		       &mn->addr, qid, queue->cm_reason ?: "error", ERR_PTR(ret));
	return ret;
}

/* What queue 0's accept says; on a resume it must match what we know. */
static int rmai_mn_accept(struct rmai_memnode *mn)
{
	struct rmai_queue *queue = &mn->queues[0];
	struct rmai_accept acc;
	const char *why;
	int ret;

	ret = rmai_check_accept(&queue->rep, queue->rep_len, &acc, &why);
	if (ret) {
		pr_err("memnode %pISpc: %s\n", &mn->addr, why);
		return ret;
	}
	if ((mn->slab_size && acc.slab_size != mn->slab_size) ||
	    (mn->token && acc.token != mn->token) ||
	    (mn->pool_slabs && acc.nr_slabs != mn->pool_slabs)) {
		pr_err("memnode %pISpc: its accept does not match the lease (slab size %llu, %u slabs)\n",
		       &mn->addr, acc.slab_size, acc.nr_slabs);
		return -EPROTO;
	}
	mn->slab_size = acc.slab_size;
	mn->token = acc.token;
	mn->pool_slabs = acc.nr_slabs;
	mn->nr_free = acc.nr_free;
	mn->lease_grace = acc.lease_grace * HZ;
	mn->lease_hold = (unsigned long)(acc.lease_grace + acc.liveness) * HZ;
	return 0;
}

/*
 * Connect queue 0 (opening a session, or resuming it with mn->token), say
 * HELLO, then connect the data queues into the session.
 */
static int rmai_mn_connect(struct rmai_memnode *mn, unsigned long timeout)
{
	unsigned int qid;
	int ret;

	ret = rmai_mn_connect_queue(mn, 0, timeout);
	if (ret)
		return ret;
	ret = rmai_mn_accept(mn);
	if (ret)
		goto out_teardown;
	ret = rmai_ctrl_init(mn);
	if (ret)
		goto out_teardown;
	ret = rmai_ctrl_hello(mn);
	if (ret) {
		pr_err("memnode %pISpc: HELLO failed (%pe)\n", &mn->addr, ERR_PTR(ret));
		goto out_teardown;
	}
	for (qid = 1; qid < mn->nr_queues; qid++) {
		ret = rmai_mn_connect_queue(mn, qid, timeout);
		if (ret)
			goto out_teardown;
	}
	return 0;

out_teardown:
	rmai_mn_teardown_queues(mn);
	return ret;
}

/* --- leases ---------------------------------------------------------------- */

/* The slab of the device on @mn that the memnode numbers @index, or NULL. */
static struct rmai_slab *rmai_mn_find_slab(struct rmai_memnode *mn, u32 index)
{
	unsigned int i;

	for (i = mn->idx; i < mn->dev->nr_slabs; i += mn->dev->nr_memnodes)
		if (mn->dev->slabs[i].leased && mn->dev->slabs[i].index == index)
			return &mn->dev->slabs[i];
	return NULL;
}

/* Lease every slab of the device that lives on @mn, a fresh session. */
static int rmai_mn_lease(struct rmai_memnode *mn)
{
	struct rmai_dev *dev = mn->dev;
	struct rmai_slab_info desc[RMAI_MSG_MAX_SLABS];
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
		for (k = 0; k < n; k++) {
			if (rmai_mn_find_slab(mn, desc[k].index)) {
				pr_err("memnode %pISpc leased slab %u twice\n",
				       &mn->addr, desc[k].index);
				return -EPROTO;
			}
		}
		for (k = 0; k < n; k++, j++, i += dev->nr_memnodes) {
			dev->slabs[i].mn = mn;
			dev->slabs[i].addr = desc[k].addr;
			dev->slabs[i].rkey = desc[k].rkey;
			dev->slabs[i].index = desc[k].index;
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

/*
 * After a resume: the memnode must still hold exactly our slabs, each once.
 * Refresh their addresses and keys from its LIST (they do not change while
 * the memnode keeps the lease, but the reply is the authority).
 */
static int rmai_mn_check_lease(struct rmai_memnode *mn)
{
	struct rmai_slab_info desc[RMAI_MSG_MAX_SLABS];
	unsigned long *seen;
	struct rmai_slab *slab;
	u32 start = 0, total, count, k;
	int ret = 0;

	seen = bitmap_zalloc(mn->dev->nr_slabs, GFP_NOIO);
	if (!seen)
		return -ENOMEM;
	do {
		ret = rmai_ctrl_list(mn, start, &total, &count, desc);
		if (ret)
			goto out;
		if (total != mn->nr_slabs) {
			pr_err("memnode %pISpc holds %u slabs for us, %u expected\n",
			       &mn->addr, total, mn->nr_slabs);
			ret = -ESTALE;
			goto out;
		}
		for (k = 0; k < count; k++) {
			slab = rmai_mn_find_slab(mn, desc[k].index);
			if (!slab || test_and_set_bit(slab - mn->dev->slabs, seen)) {
				pr_err("memnode %pISpc lists slab %u, which is not ours or listed twice\n",
				       &mn->addr, desc[k].index);
				ret = -ESTALE;
				goto out;
			}
			slab->addr = desc[k].addr;
			slab->rkey = desc[k].rkey;
		}
		start += count;
		if (start > total) {
			ret = -EPROTO;
			goto out;
		}
	} while (count && start < total);
	if (start != total)
		ret = -EPROTO;
out:
	bitmap_free(seen);
	return ret;
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

/* The lease is gone: everything that waits for @mn fails, now and later. */
static void rmai_mn_down(struct rmai_memnode *mn, const char *why)
{
	lockdep_assert_held(&mn->setup_lock);
	pr_err("memnode %pISpc: our lease is gone (%s): its data is lost, I/O to it fails\n",
	       &mn->addr, why);
	rmai_mn_set_state(mn, RMAI_MN_RECONNECTING, RMAI_MN_DOWN);
	cancel_delayed_work(&mn->expire_work);
	mn->ops->changed(mn);
}

static void rmai_mn_err_work(struct work_struct *work)
{
	struct rmai_memnode *mn = container_of(work, struct rmai_memnode, err_work);
	unsigned int noio = memalloc_noio_save();

	pr_warn("memnode %pISpc lost; reconnecting, I/O to it waits up to %lu s\n",
		&mn->addr, rmai_cfg.io_timeout / HZ);
	cancel_delayed_work_sync(&mn->keepalive_work);
	mutex_lock(&mn->setup_lock);
	rmai_mn_teardown_queues(mn);
	mn->attempt = 0;
	if (READ_ONCE(mn->state) == RMAI_MN_RECONNECTING) {
		queue_delayed_work(rmai_wq, &mn->expire_work,
				   max_t(long, READ_ONCE(mn->down_since) + rmai_cfg.io_timeout -
					       jiffies, 0));
		queue_delayed_work(rmai_wq, &mn->reconnect_work, rmai_cfg.reconnect_delay);
	}
	mutex_unlock(&mn->setup_lock);
	memalloc_noio_restore(noio);
}

/* Attempts come at least every quarter of the lease grace. */
static unsigned long rmai_mn_attempt_cap(struct rmai_memnode *mn)
{
	return max_t(unsigned long, min(rmai_cfg.reconnect_max, mn->lease_grace / 4), HZ / 4);
}

static unsigned long rmai_mn_backoff(struct rmai_memnode *mn)
{
	unsigned long cap = rmai_mn_attempt_cap(mn) / 2;
	unsigned long delay = rmai_cfg.reconnect_delay << min(mn->attempt, 10U);

	delay = min(delay, cap);
	return delay + get_random_u32() % (delay / 4 + 1);	/* jitter, within the cap */
}

static void rmai_mn_reconnect_work(struct work_struct *work)
{
	struct rmai_memnode *mn = container_of(to_delayed_work(work),
					       struct rmai_memnode, reconnect_work);
	unsigned int noio = memalloc_noio_save();
	unsigned long delay, timeout;
	int ret;

	mutex_lock(&mn->setup_lock);
	if (READ_ONCE(mn->state) != RMAI_MN_RECONNECTING)
		goto out_unlock;
	if (time_after(jiffies, mn->down_since + mn->lease_hold + rmai_mn_attempt_cap(mn))) {
		rmai_mn_down(mn, "it was unreachable for longer than it keeps a lease");
		goto out_unlock;
	}
	mn->attempt++;
	timeout = min(rmai_cfg.connect_timeout, rmai_mn_attempt_cap(mn) / 2);
	ret = rmai_mn_connect(mn, timeout);
	if (!ret) {
		ret = rmai_mn_check_lease(mn);
		if (ret)
			rmai_mn_teardown_queues(mn);
	}
	if (ret == -ESTALE) {
		rmai_mn_down(mn, "the memnode restarted, or its grace period ran out");
		goto out_unlock;
	}
	if (ret) {
		delay = rmai_mn_backoff(mn);
		pr_info("memnode %pISpc: reconnect attempt %u failed (%pe), next in %u ms\n",
			&mn->addr, mn->attempt, ERR_PTR(ret), jiffies_to_msecs(delay));
		queue_delayed_work(rmai_wq, &mn->reconnect_work, delay);
		goto out_unlock;
	}
	if (!rmai_mn_set_state(mn, RMAI_MN_RECONNECTING, RMAI_MN_CONNECTED)) {
		rmai_mn_teardown_queues(mn);	/* the device is going away */
		goto out_unlock;
	}
	cancel_delayed_work(&mn->expire_work);
	mn->reconnects++;
	pr_info("memnode %pISpc: reconnected after %u ms (attempt %u), lease of %u slabs resumed\n",
		&mn->addr, jiffies_to_msecs(jiffies - mn->down_since), mn->attempt,
		mn->nr_slabs);
	if (rmai_cfg.keepalive)
		queue_delayed_work(rmai_wq, &mn->keepalive_work, rmai_cfg.keepalive);
	mn->ops->changed(mn);
out_unlock:
	mutex_unlock(&mn->setup_lock);
	memalloc_noio_restore(noio);
}

/* io_timeout since @mn was lost: what waits for it fails from now on. */
static void rmai_mn_expire_work(struct work_struct *work)
{
	struct rmai_memnode *mn = container_of(to_delayed_work(work),
					       struct rmai_memnode, expire_work);

	mutex_lock(&mn->setup_lock);
	if (READ_ONCE(mn->state) == RMAI_MN_RECONNECTING) {
		pr_warn("memnode %pISpc: away for %lu s (io_timeout): its I/O fails until it is back\n",
			&mn->addr, rmai_cfg.io_timeout / HZ);
		mn->ops->expired(mn);
	}
	mutex_unlock(&mn->setup_lock);
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

static int rmai_mn_init(struct rmai_dev *dev, unsigned int idx,
			const struct rmai_mn_ops *ops)
{
	struct rmai_memnode *mn = &dev->memnodes[idx];
	unsigned int qid;

	mn->dev = dev;
	mn->idx = idx;
	mn->ops = ops;
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
		mn->queues[qid].lost = rmai_mn_queue_lost;
	}
	mutex_init(&mn->ctrl.lock);
	init_completion(&mn->ctrl.send_done);
	init_completion(&mn->ctrl.recv_done);
	spin_lock_init(&mn->state_lock);
	mutex_init(&mn->setup_lock);
	INIT_WORK(&mn->err_work, rmai_mn_err_work);
	INIT_DELAYED_WORK(&mn->reconnect_work, rmai_mn_reconnect_work);
	INIT_DELAYED_WORK(&mn->keepalive_work, rmai_mn_keepalive_work);
	INIT_DELAYED_WORK(&mn->expire_work, rmai_mn_expire_work);
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
 * @ops: how the memnodes' state changes reach the device
 *
 * Every memnode must answer within connect_timeout and report the same slab
 * size; the device's slabs are spread over them round-robin.
 *
 * Return: 0, or a negative errno with everything undone.
 */
int rmai_memnodes_connect(struct rmai_dev *dev, const struct rmai_mn_ops *ops)
{
	struct rmai_memnode *mn;
	unsigned int i;
	int ret;

	dev->nr_memnodes = rmai_cfg.nr_memnodes;
	dev->memnodes = kcalloc(dev->nr_memnodes, sizeof(*dev->memnodes), GFP_KERNEL);
	if (!dev->memnodes)
		return -ENOMEM;
	for (i = 0; i < dev->nr_memnodes; i++) {
		ret = rmai_mn_init(dev, i, ops);
		if (ret)
			goto out_exit;
	}

	for (i = 0; i < dev->nr_memnodes; i++) {
		mn = &dev->memnodes[i];
		mn->slab_size = i ? dev->memnodes[0].slab_size : 0;
		ret = rmai_mn_connect(mn, rmai_cfg.connect_timeout);
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
 * @dev: the device, its disk deleted and its staged writes drained
 *
 * Every memnode goes DOWN, so nothing starts recovery any more, then the
 * recovery, reconnect, expiry and keepalive work items are cancelled. Queues
 * stay as they are (up, or down after a failure) for
 * rmai_memnodes_disconnect().
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
		cancel_delayed_work_sync(&mn->expire_work);
		cancel_delayed_work_sync(&mn->keepalive_work);
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
