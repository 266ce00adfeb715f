/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RMAI: a block device whose sectors live in remote memory nodes, reached by
 * one-sided RDMA, meant to be used as swap.
 *
 * One stage of the data path per file, each calling only the ones below it;
 * completions come back up through callbacks:
 *
 *   dev.c        device lifecycle: set up and take down, in exact reverse
 *   blk.c        blk-mq requests: routing through the stages below, waits
 *                (requests parked, then driven again), completion, timeouts
 *   order.c      write ordering: the writes in flight, by device page;
 *                whoever overlaps one waits on it (or reads its staged copy)
 *   vmr.c        the VMR cache: prefetch on a read miss, sharded, pinned
 *   writeback.c  small writes staged per memnode and completed before they
 *                land
 *   remote.c     logical pages to and from the remote pages the page map
 *                gives them, as runs of contiguous remote pages; a page's
 *                keyed fingerprint, so that content a memnode holds already
 *                is remapped instead of sent
 *   pagemap.c    the page map: the remote page of each logical page, what
 *                each remote page holds, the free ones (bookkeeping only,
 *                host-tested)
 *   xfer.c       the transfer layer: the only code that maps, builds, posts
 *                and completes work requests, with send-queue credits
 *   memnode.c    one memnode: its lease, error recovery and reconnect
 *   ctrl.c       the control protocol on queue 0 (rmai_proto.h), its replies
 *                checked by reply.c (pure functions, fuzzed in userspace)
 *   queue.c      one rdma_cm connection: connect, PD, CQ, QP, teardown
 *   copy.c       the one copy between a request's pages and a page array
 *   sysfs.c      /sys/block/rmaiN/rmai/: statistics and memnode states
 *   main.c       module parameters, module init and exit
 *   compat.h     every 6.1/6.12 difference
 */
#ifndef RMAI_H
#define RMAI_H

#include <linux/blk-mq.h>
#include <linux/interval_tree.h>
#include <linux/mutex.h>
#include <linux/siphash.h>
#include <linux/socket.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "rmai_proto.h"
#include "pagemap.h"

#define RMAI_BLOCK_SIZE		SZ_4K	/* logical and physical block */
#define RMAI_MAX_IO_BYTES	SZ_2M	/* largest request: a whole 2 MiB VMR */
#define RMAI_MAX_SEGMENTS	128	/* scatterlist entries of one request */
#define RMAI_MAX_SGE		32	/* SGEs per work request we ask for */
#define RMAI_CTRL_TIMEOUT_MS	5000	/* a control reply must arrive by then */
#define RMAI_LAT_BUCKETS	24	/* latency histogram: < 1 us .. >= 2^22 us */
#define RMAI_VMR_MIN_KB		64	/* vmr_kb range */
#define RMAI_VMR_MAX_KB		2048
#define RMAI_VMR_MAX_PAGES	(RMAI_VMR_MAX_KB * SZ_1K / PAGE_SIZE)
#define RMAI_WB_MAX_PAGES	16	/* writes staged for write-back: <= 64 KiB */
#define RMAI_VMR_MAX_RUNS	8	/* runs of remote pages a VMR fetch reads */
#define RMAI_WB_MAX_SLOTS	256	/* staged writes in flight per memnode */

/**
 * struct rmai_config - module parameters, checked once at load
 * @nr_memnodes: entries in @memnodes
 * @memnodes: the memory nodes' addresses (rdma_cm destination)
 * @size: bytes of each device, a multiple of RMAI_BLOCK_SIZE
 * @nr_queues: data queues per memnode = blk-mq hardware queues
 * @queue_depth: requests in flight per hardware queue
 * @connect_timeout: jiffies a queue may take to connect
 * @io_timeout: jiffies a request waits for a lost memnode before failing
 * @reconnect_delay: jiffies before the first reconnect attempt; doubles up
 *	to @reconnect_max, and to a quarter of the memnode's lease grace
 * @reconnect_max: jiffies, the longest wait between attempts
 * @keepalive: jiffies between keepalives on an idle memnode; 0 disables
 * @synchronous: expose BLK_FEAT_SYNCHRONOUS so swap waits inline per folio
 * @vmr_shift: log2 of the VMR size in bytes
 * @cache_mb: MiB of VMR cache; 0 disables it
 * @writeback_mb: MiB of staging pages for write-back, split evenly between
 *	the memnodes; 0 disables it
 * @elide: a write of content its memnode holds already is remapped to it
 * @readahead: a sequential read of a cached VMR fetches the next one
 * @tag_bytes: bytes at the end of each page that its fingerprint covers:
 *	PAGE_SIZE but in tests, which make it smaller to see wrong remaps
 *	caught
 */
struct rmai_config {
	unsigned int nr_memnodes;
	struct sockaddr_storage *memnodes;
	u64 size;
	unsigned int nr_queues;
	unsigned int queue_depth;
	unsigned long connect_timeout;
	unsigned long io_timeout;
	unsigned long reconnect_delay;
	unsigned long reconnect_max;
	unsigned long keepalive;
	bool synchronous;
	unsigned int vmr_shift;
	unsigned int cache_mb;
	unsigned int writeback_mb;
	bool elide;
	bool readahead;
	unsigned int tag_bytes;
};

extern struct rmai_config rmai_cfg;
extern int rmai_major;
extern struct workqueue_struct *rmai_wq;

struct rmai_dev;
struct rmai_memnode;
struct rmai_queue;

/* --- queue.c: one rdma_cm connection ------------------------------------ */

/**
 * struct rmai_queue_limits - what the RDMA device lets one queue do
 * @sge_write: SGEs per RDMA WRITE (max_send_sge)
 * @sge_read: SGEs per RDMA READ (max_sge_rd)
 * @send_wrs: send work requests, what xfer.c hands out as credits
 */
struct rmai_queue_limits {
	unsigned int sge_write;
	unsigned int sge_read;
	unsigned int send_wrs;
};

/**
 * struct rmai_queue - one rdma_cm connection to a memnode
 * @mn: owner
 * @qid: 0: control, else hardware queue + 1
 * @cm_id: the connection; NULL when torn down
 * @pd: protection domain; its local DMA lkey serves every SGE
 * @cq: from the device's CQ pool
 * @qp: RC
 * @cq_size: CQEs taken from the pool
 * @lim: its limits, decided at connect
 * @lost: called once the connection broke (any context)
 * @cm_done: the connect step waited for has finished
 * @cm_event: the last rdma_cm event of the connect
 * @cm_status: that event's status
 * @cm_reason: why the connect failed, in words, for the log
 * @rep: the memnode's accept (or reject) data
 * @rep_len: bytes of it received
 * @connected: ESTABLISHED seen: later events mean the connection is lost
 * @live: takes transfers (xfer.c): from the connect until recovery stops it
 * @post_lock: send-queue credits, the backlog and @live (xfer.c)
 * @credits: send work requests free
 * @backlog: transfers waiting for credits, in order
 */
struct rmai_queue {
	struct rmai_memnode *mn;
	u16 qid;
	struct rdma_cm_id *cm_id;
	struct ib_pd *pd;
	struct ib_cq *cq;
	struct ib_qp *qp;
	unsigned int cq_size;
	struct rmai_queue_limits lim;
	void (*lost)(struct rmai_queue *queue);
	struct completion cm_done;
	enum rdma_cm_event_type cm_event;
	int cm_status;
	const char *cm_reason;
	struct rmai_cm_rep rep;
	u8 rep_len;
	bool connected;
	bool live;
	spinlock_t post_lock;		/* @credits, @backlog, @live */
	unsigned int credits;
	struct list_head backlog;
};

int rmai_queue_connect(struct rmai_queue *queue, const struct sockaddr *addr,
		       const struct rmai_cm_req *req, unsigned long timeout);
void rmai_queue_stop(struct rmai_queue *queue);
void rmai_queue_free(struct rmai_queue *queue);

/* --- xfer.c: the transfer layer ------------------------------------------ */

/**
 * struct rmai_xfer - one run of RDMA READ or WRITE between local pages and
 *	one remote address: a chain of work requests, the last one signaled
 * @cqe: completion of the last work request
 * @queue: posted there
 * @backlog: on @queue's backlog while it waits for credits
 * @done: called once with 0 or a negative errno, in softirq or process
 *	context; local pages are unmapped by then
 * @sgl: local pages
 * @nr_sg: entries in @sgl
 * @nents: entries DMA-mapped, 0 when nothing is mapped
 * @write: RDMA WRITE (else READ)
 * @remote_addr: where the run starts on the memnode
 * @rkey: its remote key
 * @sges: room for @nr_sg SGEs
 * @wrs: room for as many work requests as the run needs
 * @nr_wrs: work requests built, = credits taken
 * @next: a transfer chained behind this one: posted with it, completed on
 *	its own
 */
struct rmai_xfer {
	struct ib_cqe cqe;
	struct rmai_queue *queue;
	struct list_head backlog;
	void (*done)(struct rmai_xfer *x, int status);
	struct scatterlist *sgl;
	unsigned int nr_sg;
	int nents;
	bool write;
	u64 remote_addr;
	u32 rkey;
	struct ib_sge *sges;
	struct ib_rdma_wr *wrs;
	unsigned int nr_wrs;
	struct rmai_xfer *next;
};

unsigned int rmai_xfer_max_wrs(unsigned int nr_sge, unsigned int sge);
void rmai_xfer_post(struct rmai_queue *queue, struct rmai_xfer *x);
void rmai_xfer_stop(struct rmai_queue *queue);
void rmai_xfer_flush(struct rmai_queue *queue);

/* --- remote.c: logical pages sent to where the page map puts them ------------- */

/**
 * struct rmai_remote - a READ or WRITE of logical pages, as runs of
 *	contiguous remote pages, one transfer at a time
 * @xfer: the transfer of the run in flight
 * @dev: the device
 * @queue: the data queue it goes to
 * @done: called once with 0 when every page is done, or with the errno of
 *	the run that failed (which stays planned: rmai_remote_start() sends
 *	it again, rmai_remote_abort() lets it go)
 * @wait: on the device's list of transfers waiting for a free remote page
 * @sgl: the local pages of all of it (NULL for WRITE_ZEROES); each run
 *	cuts it down to its own pages while it is in flight
 * @nr_sg: entries in @sgl
 * @lpn: the first logical page
 * @nr_pages: pages
 * @next: pages done (sent, elided or zeroed)
 * @run_rpn: the first remote page of the planned run (RMAI_PM_NONE: a read
 *	of zeros)
 * @run_len: pages in the planned run; 0 when none is
 * @carry_rpn: where the page after the run goes (a write's verdict is taken
 *	page by page, and that page's did not fit the run)
 * @carry: the verdict for it; RMAI_PM_FULL when there is none
 * @write: RDMA WRITE, else READ
 * @zeroes: a WRITE_ZEROES: every page is a page of zeros
 * @sent: a run of it went out
 * @sg_at: the entry of @sgl holding byte @sg_byte, where searches start
 * @sg_byte: the byte of the range at which @sg_at starts
 * @cut_first: the entry the cut starts in, NULL when @sgl is whole
 * @cut_last: the entry it ends in
 * @cut_page: @cut_first's page before the cut
 * @cut_offset: ... its offset
 * @cut_length: ... its length
 * @cut_last_length: @cut_last's length before the cut
 * @cut_last_end: @cut_last ended @sgl before the cut
 */
struct rmai_remote {
	struct rmai_xfer xfer;
	struct rmai_dev *dev;
	struct rmai_queue *queue;
	void (*done)(struct rmai_remote *r, int status);
	struct list_head wait;
	struct scatterlist *sgl;
	unsigned int nr_sg;
	u32 lpn;
	u32 nr_pages;
	u32 next;
	u32 run_rpn;
	u32 run_len;
	u32 carry_rpn;
	enum rmai_pm_verdict carry;
	bool write;
	bool zeroes;
	bool sent;
	struct scatterlist *sg_at;
	u32 sg_byte;
	struct scatterlist *cut_first;
	struct scatterlist *cut_last;
	struct page *cut_page;
	unsigned int cut_offset;
	unsigned int cut_length;
	unsigned int cut_last_length;
	bool cut_last_end;
};

void rmai_remote_init(struct rmai_remote *r, struct rmai_dev *dev, u64 pos, u32 len,
		      bool write, bool zeroes);
void rmai_remote_start(struct rmai_remote *r, struct rmai_queue *queue);
void rmai_remote_abort(struct rmai_remote *r);
void rmai_remote_rewind(struct rmai_remote *r);
bool rmai_remote_one_run(struct rmai_remote *r);
void rmai_remote_post_chain(struct rmai_remote *r, struct rmai_queue *queue,
			    struct rmai_xfer *next);
void rmai_remote_addr(struct rmai_dev *dev, u32 rpn, u64 *addr, u32 *rkey);
void rmai_remote_freed(struct rmai_dev *dev, u32 lpn, u32 nr);
void rmai_remote_put_run(struct rmai_dev *dev, u32 rpn, u32 nr);
void rmai_remote_kick(struct rmai_dev *dev);
int rmai_remote_dev_init(struct rmai_dev *dev);
void rmai_remote_dev_exit(struct rmai_dev *dev);

/* --- memnode.c: lease and recovery ---------------------------------------- */

/*
 * A memnode's state, as sysfs shows it. NEW until the disk goes live.
 * Only CONNECTED memnodes are sent I/O; while RECONNECTING, requests wait
 * up to io_timeout and then fail; DOWN means the lease is gone (the memnode
 * lost it, its grace ran out, or the device is being removed), so every
 * request to it fails.
 */
enum rmai_mn_state {
	RMAI_MN_NEW,
	RMAI_MN_CONNECTED,
	RMAI_MN_RECONNECTING,
	RMAI_MN_DOWN,
};

/* The control channel of a memnode: one request in flight at a time. */
struct rmai_ctrl {
	struct mutex lock;		/* serializes exchanges */
	struct rmai_msg *req;		/* SEND buffer */
	struct rmai_msg *rep;		/* RECV buffer */
	u64 req_dma;			/* @req mapped to the device */
	u64 rep_dma;			/* @rep mapped to the device */
	struct ib_cqe send_cqe;		/* the SEND's completion */
	struct ib_cqe recv_cqe;		/* the reply's completion */
	struct completion send_done;	/* SEND completed (any status) */
	struct completion recv_done;	/* reply arrived or was flushed */
	int send_status;		/* 0 or -EIO */
	int recv_status;		/* 0 or -EIO */
	u32 seq;			/* of the last request */
	bool mapped;			/* @req and @rep are DMA-mapped */
};

/**
 * struct rmai_mn_ops - how a memnode's state changes reach the device
 * @changed: the memnode went CONNECTED or DOWN (process context)
 * @expired: io_timeout passed since it was lost (process context)
 */
struct rmai_mn_ops {
	void (*changed)(struct rmai_memnode *mn);
	void (*expired)(struct rmai_memnode *mn);
};

/**
 * struct rmai_memnode - one memory node serving slabs of a device
 * @dev: the device
 * @idx: position in memnodes=
 * @addr: where it listens
 * @ops: the device's handlers of state changes
 * @state: &enum rmai_mn_state, changed under @state_lock only
 * @state_lock: makes a change of @state and @down_since one step
 * @down_since: jiffies when it left CONNECTED
 * @token: the lease token (0 until the first connect)
 * @slab_size: bytes per slab, from the memnode
 * @pool_slabs: slabs in the memnode's pool, from its accept
 * @nr_free: free slabs the memnode reported when queue 0 connected
 * @lease_grace: jiffies the memnode keeps a lost session's lease
 * @lease_hold: jiffies the memnode keeps a lease after losing us: its
 *	grace plus the time it takes to notice (from its accept)
 * @nr_slabs: slabs of the device this memnode holds
 * @nr_queues: 1 + rmai_cfg.nr_queues
 * @queues: [@nr_queues]; queues[0] is control
 * @ctrl: control exchanges on queues[0]
 * @setup_lock: serializes connect, teardown and device removal
 * @err_work: takes the queues down after an error (then reconnects)
 * @reconnect_work: the next reconnect attempt
 * @keepalive_work: periodic KEEPALIVE while connected
 * @expire_work: io_timeout after it was lost
 * @attempt: reconnect attempts since it went down
 * @reconnects: successful reconnects since load
 */
struct rmai_memnode {
	struct rmai_dev *dev;
	unsigned int idx;
	struct sockaddr_storage addr;
	const struct rmai_mn_ops *ops;
	int state;
	spinlock_t state_lock;		/* see @state */
	unsigned long down_since;
	u64 token;
	u64 slab_size;
	u32 pool_slabs;
	u32 nr_free;
	unsigned long lease_grace;
	unsigned long lease_hold;
	unsigned int nr_slabs;
	unsigned int nr_queues;
	struct rmai_queue *queues;
	struct rmai_ctrl ctrl;
	struct mutex setup_lock;	/* connect vs teardown vs removal */
	struct work_struct err_work;
	struct delayed_work reconnect_work;
	struct delayed_work keepalive_work;
	struct delayed_work expire_work;
	unsigned int attempt;
	unsigned int reconnects;
};

/* Where one slab of the device lives. */
struct rmai_slab {
	struct rmai_memnode *mn;	/* the memnode that leased it */
	u64 addr;			/* remote address of its first byte */
	u32 rkey;			/* remote key, valid on mn's queues */
	u32 index;			/* the memnode's number for it */
	bool leased;			/* held, to be released at teardown */
};

/* What a request may do with its memnode now (rmai_memnode_ready()). */
enum rmai_mn_ready {
	RMAI_MN_GO,		/* connected */
	RMAI_MN_WAIT,		/* reconnecting: wait for it */
	RMAI_MN_FAIL,		/* down, or io_timeout passed: fail */
};

const char *rmai_mn_state_name(int state);
enum rmai_mn_ready rmai_memnode_ready(struct rmai_memnode *mn);
int rmai_memnodes_connect(struct rmai_dev *dev, const struct rmai_mn_ops *ops);
void rmai_memnodes_go_live(struct rmai_dev *dev);
void rmai_memnodes_stop_recovery(struct rmai_dev *dev);
void rmai_memnodes_disconnect(struct rmai_dev *dev);
void rmai_memnode_error(struct rmai_memnode *mn);
void rmai_memnodes_remove_ibdev(struct rmai_dev *dev, struct ib_device *ibdev);

/* ctrl.c */
struct rmai_slab_info;
const char *rmai_status_name(unsigned int status);
int rmai_status_errno(unsigned int status);
int rmai_ctrl_init(struct rmai_memnode *mn);
void rmai_ctrl_exit(struct rmai_memnode *mn);
int rmai_ctrl_hello(struct rmai_memnode *mn);
int rmai_ctrl_alloc(struct rmai_memnode *mn, u32 count,
		    struct rmai_slab_info *desc);
int rmai_ctrl_release(struct rmai_memnode *mn, u32 count, const u32 *index);
int rmai_ctrl_list(struct rmai_memnode *mn, u32 start, u32 *total,
		   u32 *count, struct rmai_slab_info *desc);
int rmai_ctrl_keepalive(struct rmai_memnode *mn);

/* --- order.c: writes in flight --------------------------------------------- */

struct rmai_wb_slot;

/**
 * struct rmai_range - a write in flight, over device pages
 * @node: in the registry, by page
 * @waiters: requests waiting for it to end (&struct rmai_cmd.wait)
 * @staged: its staged copy, when write-back holds it (readers copy it)
 */
struct rmai_range {
	struct interval_tree_node node;
	struct list_head waiters;
	struct rmai_wb_slot *staged;
};

/**
 * struct rmai_order - the registry of writes in flight
 * @lock: the tree and every range's waiters
 * @ranges: registered ranges, by device page
 */
struct rmai_order {
	spinlock_t lock;		/* see above */
	struct rb_root_cached ranges;
};

/* What a read finds in the registry. */
enum rmai_order_read {
	RMAI_ORDER_CLEAR,	/* no write in flight over it */
	RMAI_ORDER_STAGED,	/* inside one staged write: copy that */
	RMAI_ORDER_WAIT,	/* parked on an overlapping write */
};

struct rmai_cmd;
void rmai_order_init(struct rmai_order *order);
bool rmai_order_busy(struct rmai_dev *dev, u64 pos, u64 len);
bool rmai_order_begin(struct rmai_dev *dev, struct rmai_range *range, u64 pos,
		      u64 len, struct rmai_cmd *waiter);
void rmai_order_end(struct rmai_dev *dev, struct rmai_range *range);
void rmai_order_wake(struct rmai_dev *dev, struct rmai_range *range);
enum rmai_order_read rmai_order_read(struct rmai_dev *dev, u64 pos, u64 len,
				     struct rmai_cmd *cmd,
				     struct rmai_wb_slot **slot);

/* --- copy.c ---------------------------------------------------------------- */

void rmai_copy_rq(struct request *rq, struct page **pages, u32 off, bool to_rq);

/* --- writeback.c: staged writes --------------------------------------------- */

/**
 * struct rmai_wb_slot - a staged write
 * @range: its pages in the write registry, @range.staged pointing back
 * @list: a pool's free list, or its memnode's retry list
 * @pool: the memnode's pool it came from
 * @pins: 1 while it is staged, plus readers copying it
 * @pos: byte offset on the device
 * @nr_pages: pages in use
 * @remote: its RDMA WRITE, to where the page map puts it
 * @pages: [RMAI_WB_MAX_PAGES] the staged data
 * @sgl: [RMAI_WB_MAX_PAGES] @pages, as the transfer maps them
 * @sges: [RMAI_WB_MAX_PAGES] SGEs of its transfer
 * @wrs: [RMAI_WB_MAX_PAGES] work requests of its transfer
 */
struct rmai_wb_slot {
	struct rmai_range range;
	struct list_head list;
	struct rmai_wb_pool *pool;
	atomic_t pins;
	u64 pos;
	unsigned int nr_pages;
	struct rmai_remote remote;
	struct page *pages[RMAI_WB_MAX_PAGES];
	struct scatterlist sgl[RMAI_WB_MAX_PAGES];
	struct ib_sge sges[RMAI_WB_MAX_PAGES];
	struct ib_rdma_wr wrs[RMAI_WB_MAX_PAGES];
};

/**
 * struct rmai_wb_pool - one memnode's share of the staging
 * @dev: the device
 * @mn: the memnode whose writes it stages
 * @lock: the free slots and pages, and @retry
 * @slots: [@nr_slots]
 * @nr_slots: staged writes at most
 * @free_slots: slots not in use
 * @free_pages: a stack of free staging pages
 * @nr_free_pages: entries in @free_pages
 * @nr_pages: staging pages it owns
 * @retry: staged writes that failed, posted again after the reconnect
 * @in_flight: slots in use
 */
struct rmai_wb_pool {
	struct rmai_dev *dev;
	struct rmai_memnode *mn;
	spinlock_t lock;		/* see above */
	struct rmai_wb_slot *slots;
	unsigned int nr_slots;
	struct list_head free_slots;
	struct page **free_pages;
	unsigned int nr_free_pages;
	unsigned int nr_pages;
	struct list_head retry;
	atomic_t in_flight;
};

/**
 * struct rmai_wb - write-back of the device
 * @pools: [nr_memnodes], NULL when write-back is off
 * @lock: @flushes, @flushing
 * @flushing: a FLUSH waits: stage nothing new, so that it cannot starve
 * @flushes: FLUSH requests waiting for the staged writes to land
 * @in_flight: staged writes in flight, all pools
 * @idle: woken when @in_flight drops to 0
 */
struct rmai_wb {
	struct rmai_wb_pool *pools;
	spinlock_t lock;		/* see above */
	bool flushing;
	struct list_head flushes;
	atomic_t in_flight;
	wait_queue_head_t idle;
};

/* What write-back did with a write. */
enum rmai_wb_route {
	RMAI_WB_STAGED,		/* staged: end the request now */
	RMAI_WB_WAIT,		/* parked on an overlapping write */
	RMAI_WB_DIRECT,		/* not staged: write it directly */
};

/* --- vmr.c: the VMR cache ------------------------------------------------------ */

enum rmai_vmr_state {
	RMAI_VMR_FREE,		/* on its shard's free list */
	RMAI_VMR_FETCHING,	/* hashed, its READ in flight */
	RMAI_VMR_VALID,		/* hashed, on the LRU, equal to remote memory */
	RMAI_VMR_GONE,		/* unhashed while pinned: freed at the last unpin */
};

/**
 * struct rmai_vmr_run - one run of remote pages of a VMR fetch
 * @xfer: its READ
 * @e: the entry it fetches into
 * @rpn: its first remote page, pinned until the fetch is over
 * @len: its pages
 */
struct rmai_vmr_run {
	struct rmai_xfer xfer;
	struct rmai_vmr *e;
	u32 rpn;
	u32 len;
};

/**
 * struct rmai_vmr - a cache entry: one VMR's data
 * @node: in its shard's hash, while hashed
 * @lru: its shard's LRU (VALID) or free list (FREE)
 * @shard: owner
 * @index: VMR number on the device
 * @state: &enum rmai_vmr_state, under the shard's lock
 * @pins: copies in progress, plus 1 while its fetch is in flight
 * @waiters: reads served when the fetch lands
 * @runs: the fetch, one READ per run of remote pages (pages of zeros are
 *	no run: they are cleared)
 * @nr_runs: entries of @runs in use
 * @runs_left: READs of the fetch still in flight
 * @status: the first error of the fetch, 0 when none
 * @used: pages read from it, for the prefetch accounting
 * @ahead: the next VMR's readahead was tried, under the shard's lock
 * @sgl: [vmr_pages] its pages
 * @sges: [vmr_pages]
 * @wrs: [wrs_per_vmr]
 * @pages: [vmr_pages]
 */
struct rmai_vmr {
	struct hlist_node node;
	struct list_head lru;
	struct rmai_vmr_shard *shard;
	u64 index;
	enum rmai_vmr_state state;
	int pins;
	struct list_head waiters;
	struct rmai_vmr_run runs[RMAI_VMR_MAX_RUNS];
	unsigned int nr_runs;
	atomic_t runs_left;
	int status;
	DECLARE_BITMAP(used, RMAI_VMR_MAX_PAGES);
	bool ahead;
	struct scatterlist *sgl;
	struct ib_sge *sges;
	struct ib_rdma_wr *wrs;
	struct page *pages[];
};

/**
 * struct rmai_vmr_shard - one lock's worth of the cache (VMR n lives in
 *	shard n % nr_shards)
 * @lock: everything below and the state, pins and waiters of its entries;
 *	held for list and hash work only, never for a copy
 * @dev: the device
 * @hash: [1 << hash_bits] hashed entries
 * @hash_bits: log2 of the buckets
 * @lru: VALID entries, most recent first
 * @free: FREE entries
 * @nr_entries: entries allocated
 * @max_entries: its share of cache_mb
 */
struct rmai_vmr_shard {
	spinlock_t lock;		/* see above */
	struct rmai_dev *dev;
	struct hlist_head *hash;
	unsigned int hash_bits;
	struct list_head lru;
	struct list_head free;
	unsigned int nr_entries;
	unsigned int max_entries;
};

/**
 * struct rmai_cache - the VMR cache (vmr.c)
 * @shards: [@nr_shards]; none when the cache is off
 * @nr_shards: 0 when the cache is off
 * @credit: prefetch pays while >= 0, in pages
 * @probe: misses without credit, counted
 * @grow_work: allocates entries back once memory pressure is over
 * @shrinker: frees entries under pressure
 */
struct rmai_cache {
	struct rmai_vmr_shard *shards;
	unsigned int nr_shards;
	atomic_t credit;
	atomic_t probe;
	struct delayed_work grow_work;
	struct shrinker *shrinker;
};

/* What the cache did with a read. */
enum rmai_vmr_route {
	RMAI_VMR_SERVED,	/* copied: end the request now */
	RMAI_VMR_POSTED,	/* it completes later (fetch, or waiting for one) */
	RMAI_VMR_DIRECT,	/* not cached: read it directly */
};

/* --- blk.c: requests ---------------------------------------------------------- */

/**
 * struct rmai_cmd_ops - how the stages below blk.c hand requests back
 * @end: end a request that they served or that failed (any context)
 * @redrive: drive requests that waited again from the top of their route
 *	(any context); the list is emptied
 */
struct rmai_cmd_ops {
	void (*end)(struct rmai_cmd *cmd, blk_status_t status);
	void (*redrive)(struct rmai_dev *dev, struct list_head *cmds);
};

/* Where a started request is, for the timeout handler and for waits. */
enum rmai_cmd_where {
	RMAI_CMD_IDLE,		/* in queue_rq, or being completed */
	RMAI_CMD_POSTED,	/* its transfer is on a queue */
	RMAI_CMD_WAITING,	/* parked: a write, a fetch, a memnode, a flush */
};

/**
 * struct rmai_cmd - per-request state, the blk-mq PDU
 * @remote: its RDMA READ or WRITE, through the page map
 * @range: its pages in the write registry (a direct write)
 * @registered: @range is in the registry
 * @wait: in the list of what it waits for
 * @where: &enum rmai_cmd_where
 * @dev: the device
 * @slab: its slab, the home of its pages (and so their memnode)
 * @hctx: the hardware queue it came on: its data queue on the memnode
 * @status: the request's result
 * @start_ns: when it was first started, for the latency histogram
 * @sgl: [RMAI_MAX_SEGMENTS] the request's pages
 */
struct rmai_cmd {
	struct rmai_remote remote;
	struct rmai_range range;
	bool registered;
	struct list_head wait;
	enum rmai_cmd_where where;
	struct rmai_dev *dev;
	struct rmai_slab *slab;
	unsigned int hctx;
	blk_status_t status;
	u64 start_ns;
	struct scatterlist sgl[];
};

/* I/O classes counted in the statistics. */
enum rmai_io {
	RMAI_IO_READ,
	RMAI_IO_WRITE,
	RMAI_IO_DISCARD,
	RMAI_IO_WRITE_ZEROES,
	RMAI_IO_FLUSH,
	RMAI_NR_IO,
};

/* Per-CPU counters; sysfs sums them. Only u64 members: see rmai_stats_get(). */
struct rmai_stats {
	u64 ops[RMAI_NR_IO];		/* requests completed, by class */
	u64 bytes[RMAI_NR_IO];		/* bytes completed, by class */
	u64 errors;			/* requests failed */
	u64 requeues;			/* requests driven again after a wait */
	u64 started;			/* transfers posted to a QP */
	u64 finished;			/* posted transfers completed */
	u64 lat[2][RMAI_LAT_BUCKETS];	/* READ/WRITE: completions by log2 us */
	u64 cache_hits;			/* reads served by a cached VMR */
	u64 cache_misses;		/* reads whose VMR was not cached */
	u64 prefetch_used;		/* bytes of evicted VMRs that were read */
	u64 prefetch_wasted;		/* bytes of evicted VMRs never read */
	u64 evictions;			/* VMRs evicted for another */
	u64 shrunk;			/* bytes the shrinker freed */
	u64 staged;			/* writes completed by write-back */
	u64 staged_reads;		/* reads served from a staged write */
	u64 readahead;			/* VMRs fetched ahead of a sequential read */
	u64 sent_bytes;			/* bytes of RDMA WRITEs of requests */
	u64 fetched_bytes;		/* bytes of RDMA READs of requests */
	u64 elided_writes;		/* writes that sent nothing at all */
	u64 elided_bytes;		/* bytes remapped to a page holding them */
	u64 zeroed_bytes;		/* bytes of zeros, mapped to nothing */
	u64 freed_pages;		/* pages swap or DISCARD gave back */
};

/**
 * struct rmai_dev - one /dev/rmaiN
 * @id: N
 * @disk: the block device
 * @tag_set: its blk-mq tags; the PDU is &struct rmai_cmd
 * @size: bytes
 * @client_id: identity presented to every memnode, random per device
 * @nr_memnodes: entries in @memnodes
 * @memnodes: [@nr_memnodes]
 * @slab_shift: log2 of the slab size (all memnodes use one size)
 * @nr_slabs: entries in @slabs
 * @slabs: [@nr_slabs]; slab i lives on memnode i % @nr_memnodes
 * @lim: the limits every data queue meets (the first data queue sets them)
 * @wrs_per_cmd: work requests one request needs at most
 * @vmr_shift: log2 of the VMR size
 * @vmr_pages: pages in a VMR
 * @wrs_per_vmr: work requests a VMR fetch needs
 * @cmd_ops: blk.c's handlers, for the stages below it
 * @order: the write registry
 * @cache: the VMR cache
 * @wb: write-back
 * @waiting: [nr_memnodes] requests parked until that memnode is back
 * @waiting_lock: @waiting
 * @pm: which remote page holds each logical page (pagemap.c)
 * @tag_key: the keys of the pages' fingerprints, random per device
 * @remote_wait: transfers waiting for a free remote page (remote.c)
 * @remote_wait_lock: @remote_wait
 * @remote_waiters: entries on @remote_wait, read without the lock
 * @stats: per-CPU counters
 */
struct rmai_dev {
	int id;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	u64 size;
	u8 client_id[RMAI_CLIENT_ID_LEN];
	unsigned int nr_memnodes;
	struct rmai_memnode *memnodes;
	unsigned int slab_shift;
	unsigned int nr_slabs;
	struct rmai_slab *slabs;
	struct rmai_queue_limits lim;
	unsigned int wrs_per_cmd;
	unsigned int vmr_shift;
	unsigned int vmr_pages;
	unsigned int wrs_per_vmr;
	const struct rmai_cmd_ops *cmd_ops;
	struct rmai_order order;
	struct rmai_cache cache;
	struct rmai_wb wb;
	struct list_head *waiting;
	spinlock_t waiting_lock;	/* @waiting */
	struct rmai_pagemap pm;
	siphash_key_t tag_key[2];
	struct list_head remote_wait;
	spinlock_t remote_wait_lock;	/* @remote_wait */
	atomic_t remote_waiters;
	struct rmai_stats __percpu *stats;
};

/* blk.c */
extern const struct rmai_cmd_ops rmai_blk_cmd_ops;
int rmai_blk_alloc(struct rmai_dev *dev);
int rmai_blk_add(struct rmai_dev *dev);
void rmai_blk_del(struct rmai_dev *dev);
void rmai_blk_free(struct rmai_dev *dev);
void rmai_blk_memnode_changed(struct rmai_memnode *mn);
void rmai_blk_memnode_expired(struct rmai_memnode *mn);

/* vmr.c */
int rmai_cache_init(struct rmai_dev *dev);
void rmai_cache_exit(struct rmai_dev *dev);
enum rmai_vmr_route rmai_vmr_read(struct rmai_dev *dev, struct rmai_queue *queue,
				  struct rmai_cmd *cmd);
void rmai_vmr_write(struct rmai_dev *dev, struct rmai_cmd *cmd);
void rmai_cache_drop(struct rmai_dev *dev, u64 pos, u64 len);

/* writeback.c */
int rmai_wb_init(struct rmai_dev *dev);
void rmai_wb_exit(struct rmai_dev *dev);
enum rmai_wb_route rmai_wb_write(struct rmai_dev *dev, struct rmai_queue *queue,
				 struct rmai_cmd *cmd);
bool rmai_wb_flush(struct rmai_dev *dev, struct rmai_cmd *cmd);
void rmai_wb_copy_out(struct rmai_wb_slot *slot, struct request *rq);
void rmai_wb_unpin(struct rmai_wb_slot *slot);
void rmai_wb_memnode_changed(struct rmai_memnode *mn);
void rmai_wb_memnode_expired(struct rmai_memnode *mn);
bool rmai_wb_drain(struct rmai_dev *dev, unsigned long timeout);
void rmai_wb_drop(struct rmai_memnode *mn);

/* sysfs.c */
extern const struct attribute_group *rmai_disk_groups[];

/* dev.c */
int rmai_dev_create(int id, struct rmai_dev **devp);
void rmai_dev_destroy(struct rmai_dev *dev);

#endif /* RMAI_H */
