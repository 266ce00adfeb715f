// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the transfer layer, the only code that maps pages, builds work
 * requests, posts them and completes them.
 *
 * A transfer is one run of RDMA READ or WRITE between local pages and one
 * remote address: a chain of work requests of at most the queue's SGE
 * limit each (max_sge_rd for READ, max_send_sge for WRITE), of which only
 * the last is signaled. Its completion unmaps the pages, gives back the
 * send-queue credits it took and calls the transfer's done().
 *
 * Credits: a queue hands out as many work requests as its send queue holds.
 * A transfer that finds too few waits on the queue's backlog, in order, and
 * is posted as completions return credits; so a queue can never overflow,
 * whatever the cache, write-back and queue depth ask of it. Completions of
 * an RC send queue come in order, so the last work request's completion
 * frees the whole chain.
 *
 * A failed work request, or a failed post, breaks the queue: queue->lost
 * hands it to recovery, whose drain flushes everything posted and fails
 * the backlog. Each such transfer completes with -EREMOTEIO (the memnode's
 * queue is gone: try again once it is back); one whose pages cannot be
 * mapped, with -EIO. A queue that recovery took down (!live) takes nothing.
 *
 * Locking: queue->post_lock (irqsave) covers the credits, the backlog, the
 * live flag and every post and mapping, so that teardown, which clears
 * live under it, never races a post.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "rmai.h"

/* Work requests of @x and everything chained behind it. */
static unsigned int rmai_xfer_chain_wrs(const struct rmai_xfer *x)
{
	unsigned int nr = 0;

	for (; x; x = x->next)
		nr += x->nr_wrs;
	return nr;
}

/**
 * rmai_xfer_max_wrs() - work requests a run of @nr_sge SGEs needs
 * @nr_sge: SGEs of the run
 * @sge: SGEs per work request
 *
 * Return: the count.
 */
unsigned int rmai_xfer_max_wrs(unsigned int nr_sge, unsigned int sge)
{
	return DIV_ROUND_UP(nr_sge, sge);
}

static void rmai_xfer_unmap(struct rmai_queue *queue, struct rmai_xfer *x)
{
	if (!x->nents)
		return;
	ib_dma_unmap_sg(queue->cm_id->device, x->sgl, x->nr_sg,
			x->write ? DMA_TO_DEVICE : DMA_FROM_DEVICE);
	x->nents = 0;
}

/* Finish @x: unmapped, counted, then its owner's done(). */
static void rmai_xfer_complete(struct rmai_queue *queue, struct rmai_xfer *x, int status)
{
	rmai_xfer_unmap(queue, x);
	this_cpu_inc(queue->mn->dev->stats->finished);
	x->done(x, status);
}

/* Complete every chain on @failed (linked by backlog) with -EREMOTEIO. */
static void rmai_xfer_fail_all(struct rmai_queue *queue, struct list_head *failed)
{
	struct rmai_xfer *x, *t;

	while ((x = list_first_entry_or_null(failed, struct rmai_xfer, backlog))) {
		list_del_init(&x->backlog);
		for (; x; x = t) {
			t = x->next;
			x->next = NULL;
			rmai_xfer_complete(queue, x, -EREMOTEIO);
		}
	}
}

/*
 * Post @x and its chain, credits permitting: false when they do not. A
 * chain the device refuses goes on @failed, for the caller to complete
 * once it dropped the lock; the queue is then broken.
 */
static bool rmai_xfer_post_locked(struct rmai_queue *queue, struct rmai_xfer *x,
				  struct list_head *failed)
{
	unsigned int nr = rmai_xfer_chain_wrs(x);
	struct rmai_xfer *t;
	int ret;

	lockdep_assert_held(&queue->post_lock);
	if (nr > queue->credits)
		return false;
	for (t = x; t->next; t = t->next)
		t->wrs[t->nr_wrs - 1].wr.next = &t->next->wrs[0].wr;
	ret = ib_post_send(queue->qp, &x->wrs[0].wr, NULL);
	if (likely(!ret)) {
		queue->credits -= nr;
		return true;
	}
	/*
	 * rxe, like the hardware drivers, checks the whole chain before it
	 * posts any of it: nothing of it will complete on its own.
	 */
	pr_err_ratelimited("memnode %pISpc queue %u: cannot post (%pe)\n",
			   &queue->mn->addr, queue->qid, ERR_PTR(ret));
	list_add_tail(&x->backlog, failed);
	return true;
}

/* Credits come back: post what the backlog can now have, in order. */
static void rmai_xfer_credit(struct rmai_queue *queue, unsigned int nr)
{
	struct rmai_xfer *x;
	unsigned long flags;
	LIST_HEAD(failed);

	spin_lock_irqsave(&queue->post_lock, flags);
	queue->credits += nr;
	if (unlikely(!queue->live))
		list_splice_init(&queue->backlog, &failed);
	while ((x = list_first_entry_or_null(&queue->backlog, struct rmai_xfer, backlog))) {
		list_del_init(&x->backlog);
		if (!rmai_xfer_post_locked(queue, x, &failed)) {
			list_add(&x->backlog, &queue->backlog);
			break;
		}
	}
	spin_unlock_irqrestore(&queue->post_lock, flags);
	if (!list_empty(&failed)) {
		queue->lost(queue);
		rmai_xfer_fail_all(queue, &failed);
	}
}

static void rmai_xfer_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_xfer *x = container_of(wc->wr_cqe, struct rmai_xfer, cqe);
	struct rmai_queue *queue = x->queue;
	int status = 0;

	if (unlikely(wc->status != IB_WC_SUCCESS)) {
		if (wc->status != IB_WC_WR_FLUSH_ERR)
			pr_err_ratelimited("memnode %pISpc queue %u: RDMA failed: %s\n",
					   &queue->mn->addr, queue->qid,
					   ib_wc_status_msg(wc->status));
		queue->lost(queue);
		status = -EREMOTEIO;
	}
	rmai_xfer_credit(queue, x->nr_wrs);
	rmai_xfer_complete(queue, x, status);
}

/*
 * An unsignaled work request completes only when it fails; the last one of
 * its chain then completes too (flushed), and finishes the transfer.
 */
static void rmai_xfer_unsignaled(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_queue *queue = wc->qp->qp_context;

	if (wc->status != IB_WC_WR_FLUSH_ERR)
		pr_err_ratelimited("memnode %pISpc queue %u: RDMA failed: %s\n",
				   &queue->mn->addr, queue->qid, ib_wc_status_msg(wc->status));
	queue->lost(queue);
}

static struct ib_cqe rmai_xfer_unsignaled_cqe = { .done = rmai_xfer_unsignaled };

/* Map the pages and fill the SGEs. Return: SGEs, or -EIO. */
static int rmai_xfer_map(struct rmai_queue *queue, struct rmai_xfer *x)
{
	struct ib_device *ibdev = queue->cm_id->device;
	struct scatterlist *sg;
	unsigned int i;

	x->nents = ib_dma_map_sg(ibdev, x->sgl, x->nr_sg,
				 x->write ? DMA_TO_DEVICE : DMA_FROM_DEVICE);
	if (unlikely(x->nents <= 0)) {
		x->nents = 0;
		return -EIO;
	}
	for_each_sg(x->sgl, sg, x->nents, i) {
		x->sges[i].addr = sg_dma_address(sg);
		x->sges[i].length = sg_dma_len(sg);
		x->sges[i].lkey = queue->pd->local_dma_lkey;
	}
	return x->nents;
}

/* Chain the work requests of @x over its SGEs; @x->nr_wrs is their count. */
static void rmai_xfer_build(struct rmai_queue *queue, struct rmai_xfer *x, int nr_sge)
{
	unsigned int max = x->write ? queue->lim.sge_write : queue->lim.sge_read;
	u64 remote = x->remote_addr;
	struct ib_rdma_wr *wr = x->wrs;
	int i, s, n;

	for (s = 0; ; s += n, wr++) {
		n = min_t(int, nr_sge - s, max);
		wr->wr.opcode = x->write ? IB_WR_RDMA_WRITE : IB_WR_RDMA_READ;
		wr->wr.sg_list = &x->sges[s];
		wr->wr.num_sge = n;
		wr->remote_addr = remote;
		wr->rkey = x->rkey;
		if (s + n == nr_sge)
			break;
		for (i = s; i < s + n; i++)
			remote += x->sges[i].length;
		wr->wr.wr_cqe = &rmai_xfer_unsignaled_cqe;
		wr->wr.send_flags = 0;
		wr->wr.next = &wr[1].wr;
	}
	wr->wr.wr_cqe = &x->cqe;
	wr->wr.send_flags = IB_SEND_SIGNALED;
	wr->wr.next = NULL;
	x->nr_wrs = wr - x->wrs + 1;
}

/**
 * rmai_xfer_post() - map, build and post a transfer and its chain
 * @queue: a data queue of a connected memnode
 * @x: the first transfer, its fields up to @wrs set; @x->next and so on
 *	chained behind it, posted with it
 *
 * Each transfer completes through its done(): 0, -EIO when its pages could
 * not be mapped, -EREMOTEIO when the queue broke or was already taken down.
 * Never sleeps; done() may run before this returns.
 */
void rmai_xfer_post(struct rmai_queue *queue, struct rmai_xfer *x)
{
	struct rmai_xfer *t, *bad = NULL, **link = &x;
	unsigned long flags;
	LIST_HEAD(failed);
	int nr_sge;

	for (t = x; t; t = t->next)
		this_cpu_inc(queue->mn->dev->stats->started);
	spin_lock_irqsave(&queue->post_lock, flags);
	if (unlikely(!queue->live)) {
		list_add(&x->backlog, &failed);
		x = NULL;
	}
	for (t = x; t; link = &t->next, t = t->next) {
		t->queue = queue;
		t->cqe.done = rmai_xfer_done;
		nr_sge = rmai_xfer_map(queue, t);
		if (unlikely(nr_sge < 0)) {
			/* Post what mapped; fail this one and what follows. */
			*link = NULL;
			bad = t;
			break;
		}
		rmai_xfer_build(queue, t, nr_sge);
	}
	if (x && (!list_empty(&queue->backlog) || !rmai_xfer_post_locked(queue, x, &failed)))
		list_add_tail(&x->backlog, &queue->backlog);
	spin_unlock_irqrestore(&queue->post_lock, flags);
	if (!list_empty(&failed)) {
		if (x)
			queue->lost(queue);
		rmai_xfer_fail_all(queue, &failed);
	}
	for (; bad; bad = t) {
		t = bad->next;
		bad->next = NULL;
		rmai_xfer_complete(queue, bad, -EIO);
	}
}

/**
 * rmai_xfer_stop() - take nothing more on @queue
 * @queue: a queue about to be disconnected
 *
 * A post in progress finishes first; later ones fail at once.
 */
void rmai_xfer_stop(struct rmai_queue *queue)
{
	unsigned long flags;

	spin_lock_irqsave(&queue->post_lock, flags);
	queue->live = false;
	spin_unlock_irqrestore(&queue->post_lock, flags);
}

/**
 * rmai_xfer_flush() - fail the transfers still waiting for credits
 * @queue: a stopped queue whose QP was drained
 */
void rmai_xfer_flush(struct rmai_queue *queue)
{
	unsigned long flags;
	LIST_HEAD(backlog);

	spin_lock_irqsave(&queue->post_lock, flags);
	list_splice_init(&queue->backlog, &backlog);
	spin_unlock_irqrestore(&queue->post_lock, flags);
	rmai_xfer_fail_all(queue, &backlog);
}
