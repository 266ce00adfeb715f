/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RMAI: a block device whose sectors live in remote memory nodes, reached by
 * one-sided RDMA, meant to be used as swap.
 *
 * The pieces, one stage of the data path per file:
 *   main.c       module parameters, module init/exit, the device list
 *   memnode.c    one memory node: its queues, lease, recovery and reconnect
 *   queue.c      one rdma_cm connection: QP, CQ, connect and teardown
 *   ctrl.c       the control protocol on queue 0 (rmai_proto.h)
 *   blk.c        the blk-mq device: requests to RDMA READ/WRITE and back
 *   vmr.c        the VMR cache (prefetch on a read miss) and write ordering
 *   writeback.c  small writes staged and completed before they land
 *   sysfs.c      /sys/block/rmaiN/rmai/: statistics and memnode states
 */
#ifndef RMAI_H
#define RMAI_H

#include <linux/blk-mq.h>
#include <linux/interval_tree.h>
#include <linux/mutex.h>
#include <linux/socket.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "rmai_proto.h"

#define RMAI_BLOCK_SIZE		SZ_4K	/* logical and physical block */
#define RMAI_MAX_IO_BYTES	SZ_2M	/* largest request: a whole 2 MiB VMR */
#define RMAI_MAX_SEGMENTS	128	/* scatterlist entries of one request */
#define RMAI_MAX_SGE		32	/* SGEs per work request we ask for */
#define RMAI_CTRL_TIMEOUT_MS	5000	/* a control reply must arrive by then */
#define RMAI_MAX_RETRIES	5	/* requeues of a request after a QP error */
#define RMAI_LAT_BUCKETS	24	/* latency histogram: < 1 us .. >= 2^22 us */
#define RMAI_VMR_MIN_KB		64	/* vmr_kb range */
#define RMAI_VMR_MAX_KB		2048
#define RMAI_VMR_MAX_PAGES	(RMAI_VMR_MAX_KB * SZ_1K / PAGE_SIZE)
#define RMAI_WB_MAX_PAGES	16	/* writes staged for write-back: <= 64 KiB */
#define RMAI_WB_MAX_SLOTS	256	/* staged writes in flight, at most */

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
 *	to @reconnect_max
 * @reconnect_max: jiffies, the longest wait between attempts
 * @keepalive: jiffies between keepalives on an idle memnode; 0 disables
 * @synchronous: expose BLK_FEAT_SYNCHRONOUS so swap waits inline per folio
 * @vmr_shift: log2 of the VMR size in bytes
 * @cache_mb: MiB of VMR cache; 0 disables it
 * @writeback_mb: MiB of staging pages for write-back; 0 disables it
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
};

extern struct rmai_config rmai_cfg;
extern int rmai_major;
extern struct workqueue_struct *rmai_wq;

/*
 * A memnode's state, as sysfs shows it. NEW until the disk goes live.
 * Only CONNECTED memnodes are sent
 * I/O; while RECONNECTING, requests wait up to io_timeout and then fail;
 * DOWN means the lease is gone (the memnode lost it, or the device is being
 * removed), so every request to it fails.
 */
enum rmai_mn_state {
	RMAI_MN_NEW,
	RMAI_MN_CONNECTED,
	RMAI_MN_RECONNECTING,
	RMAI_MN_DOWN,
};

/* One rdma_cm connection to a memnode: queue 0 is control, 1..n data. */
struct rmai_queue {
	struct rmai_memnode *mn;	/* owner */
	u16 qid;			/* 0: control, else hw queue + 1 */
	struct rdma_cm_id *cm_id;	/* the connection; NULL when torn down */
	struct ib_pd *pd;		/* local DMA lkey for every SGE */
	struct ib_cq *cq;		/* from the device's CQ pool */
	struct ib_qp *qp;		/* RC, created on ADDR_RESOLVED */
	unsigned int cq_size;		/* CQEs taken from the pool */
	unsigned int max_sge;		/* SGEs per work request */
	u64 zero_dma;			/* ZERO_PAGE mapped for WRITE_ZEROES */
	struct completion cm_done;	/* connect finished, see @cm_error */
	int cm_error;			/* 0 or why the connect failed */
	const char *cm_reason;		/* that reason in words, for the log */
	struct rmai_cm_rep rep;		/* the memnode's accept */
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
 * struct rmai_memnode - one memory node serving slabs of a device
 * @dev: the device
 * @idx: position in memnodes=
 * @addr: where it listens
 * @state: &enum rmai_mn_state, changed under @state_lock only
 * @state_lock: makes a change of @state and @down_since one step
 * @down_since: jiffies when it left CONNECTED
 * @token: the lease token (0 until the first connect)
 * @slab_size: bytes per slab, from the memnode
 * @nr_free: free slabs the memnode reported when queue 0 connected
 * @nr_slabs: slabs of the device this memnode holds
 * @nr_queues: 1 + rmai_cfg.nr_queues
 * @queues: [@nr_queues]; queues[0] is control
 * @ctrl: control exchanges on queues[0]
 * @setup_lock: serializes connect, teardown and device removal
 * @err_work: takes the queues down after an error (then reconnects)
 * @reconnect_work: the next reconnect attempt
 * @keepalive_work: periodic KEEPALIVE while connected
 * @attempt: reconnect attempts since it went down
 * @reconnects: successful reconnects since load
 * @wb_retry: staged writes that failed on it, posted again after the
 *	reconnect (under rmai_dev.wb.lock)
 */
struct rmai_memnode {
	struct rmai_dev *dev;
	unsigned int idx;
	struct sockaddr_storage addr;
	int state;
	spinlock_t state_lock;		/* see @state */
	unsigned long down_since;
	u64 token;
	u64 slab_size;
	unsigned int nr_free;
	unsigned int nr_slabs;
	unsigned int nr_queues;
	struct rmai_queue *queues;
	struct rmai_ctrl ctrl;
	struct mutex setup_lock;	/* connect vs teardown vs removal */
	struct work_struct err_work;
	struct delayed_work reconnect_work;
	struct delayed_work keepalive_work;
	unsigned int attempt;
	unsigned int reconnects;
	struct list_head wb_retry;
};

/* Where one slab of the device lives. */
struct rmai_slab {
	struct rmai_memnode *mn;	/* the memnode that leased it */
	u64 addr;			/* remote address of its first byte */
	u32 rkey;			/* remote key, valid on mn's queues */
	u32 index;			/* the memnode's number for it */
	bool leased;			/* held, to be released at teardown */
};

/**
 * struct rmai_cmd - per-request state, the blk-mq PDU
 * @cqe: completion of the last (signaled) work request
 * @queue: the queue the request was posted on
 * @wait: in a VMR's waiters (a read) or the flush waiters (a FLUSH)
 * @range: its pages in the write registry (a direct write)
 * @registered: @range is in the registry
 * @nents: DMA-mapped scatterlist entries; 0 when nothing is mapped
 * @retries: requeues after a failed work request
 * @status: the request's result
 * @start_ns: when it was started, for the latency histogram
 * @wrs: [rmai_dev.wrs_per_cmd] work requests
 * @sges: [RMAI_MAX_SEGMENTS] their SGEs
 * @sgl: [RMAI_MAX_SEGMENTS] the request's pages
 */
struct rmai_cmd {
	struct ib_cqe cqe;
	struct rmai_queue *queue;
	struct list_head wait;
	struct interval_tree_node range;
	bool registered;
	int nents;
	u8 retries;
	blk_status_t status;
	u64 start_ns;
	struct ib_rdma_wr *wrs;
	struct ib_sge *sges;
	struct scatterlist sgl[];
};

/* Where a request goes, as the cache and write-back decide. */
enum rmai_route {
	RMAI_SERVED,	/* done locally: end the request now */
	RMAI_POSTED,	/* under way: it completes later */
	RMAI_RETRY,	/* a write to its pages is in flight: try again */
	RMAI_DIRECT,	/* straight to the memnode, by RDMA */
};

enum rmai_vmr_state {
	RMAI_VMR_FREE,		/* on the free list */
	RMAI_VMR_FETCHING,	/* hashed, its READ in flight */
	RMAI_VMR_VALID,		/* hashed, on the LRU, equal to remote memory */
	RMAI_VMR_ORPHAN,	/* unhashed by a write; freed when its READ lands */
};

/* A cache entry: one VMR's data. */
struct rmai_vmr {
	struct hlist_node node;		/* in the cache hash, while hashed */
	struct list_head lru;		/* LRU (VALID) or free list (FREE) */
	struct rmai_dev *dev;		/* owner */
	u64 index;			/* VMR number on the device */
	enum rmai_vmr_state state;	/* under rmai_cache.lock */
	struct list_head waiters;	/* reads served when the fetch lands */
	struct rmai_queue *queue;	/* the fetch runs there */
	struct ib_cqe cqe;		/* completion of the fetch */
	DECLARE_BITMAP(used, RMAI_VMR_MAX_PAGES); /* pages read from it */
	struct scatterlist *sgl;	/* [vmr_pages] its pages */
	struct ib_sge *sges;		/* [vmr_pages] */
	struct ib_rdma_wr *wrs;		/* [wrs_per_vmr] */
	struct page *pages[];		/* [vmr_pages] */
};

/* The VMR cache and the registry of writes in flight (vmr.c). */
struct rmai_cache {
	spinlock_t lock;		/* everything below */
	struct hlist_head *hash;	/* [1 << hash_bits] hashed entries */
	unsigned int hash_bits;		/* log2 of the buckets */
	struct list_head lru;		/* VALID entries, most recent first */
	struct list_head free;		/* FREE entries */
	unsigned int nr_entries;	/* allocated entries */
	unsigned int max_entries;	/* cache_mb worth of them */
	struct rb_root_cached writes;	/* writes in flight, by page */
	int credit;			/* prefetch pays while >= 0, in pages */
	unsigned int probe;		/* misses without credit, counted */
	struct work_struct grow_work;	/* allocates entries back */
	struct shrinker *shrinker;	/* frees entries under pressure */
};

/* A staged write (writeback.c). */
struct rmai_wb_slot {
	struct interval_tree_node range; /* its pages, in the write registry */
	struct list_head list;		/* free list, or a memnode's retry list */
	struct rmai_dev *dev;		/* owner */
	struct rmai_queue *queue;	/* posted there */
	const struct rmai_slab *slab;	/* where it goes */
	u64 slab_off;			/* ... at this offset */
	struct ib_cqe cqe;		/* completion of its WRITE */
	unsigned int nr_pages;		/* pages in use */
	struct page *pages[RMAI_WB_MAX_PAGES]; /* the staged data */
	struct scatterlist sgl[RMAI_WB_MAX_PAGES]; /* @pages, DMA-mapped */
	struct ib_sge sges[RMAI_WB_MAX_PAGES]; /* SGEs of @sgl */
	struct ib_rdma_wr wrs[RMAI_WB_MAX_PAGES]; /* the WRITE, chained */
};

/* The write-back pool (writeback.c). */
struct rmai_wb {
	spinlock_t lock;		/* free slots and pages, flushes, retry lists */
	struct rmai_wb_slot *slots;	/* [nr_slots] */
	unsigned int nr_slots;		/* 0: write-back off */
	struct list_head free_slots;	/* slots not in use */
	struct page **free_pages;	/* a stack of free staging pages */
	unsigned int nr_free_pages;	/* entries in @free_pages */
	atomic_t in_flight;		/* slots in use */
	bool flushing;			/* a FLUSH waits: stage nothing new */
	struct list_head flushes;	/* FLUSH requests waiting */
	wait_queue_head_t idle;		/* woken when @in_flight drops */
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
	u64 requeues;			/* requests retried after a QP error */
	u64 started;			/* requests posted to a QP */
	u64 finished;			/* posted requests completed */
	u64 lat[2][RMAI_LAT_BUCKETS];	/* READ/WRITE: completions by log2 us */
	u64 cache_hits;			/* reads served by a cached VMR */
	u64 cache_misses;		/* reads whose VMR was not cached */
	u64 prefetch_used;		/* bytes of evicted VMRs that were read */
	u64 prefetch_wasted;		/* bytes of evicted VMRs never read */
	u64 evictions;			/* VMRs evicted for another */
	u64 shrunk;			/* bytes the shrinker freed */
	u64 staged;			/* writes completed by write-back */
};

/**
 * struct rmai_dev - one /dev/rmaiN
 * @id: N
 * @list: in the module's device list
 * @disk: the block device
 * @tag_set: its blk-mq tags; the PDU is &struct rmai_cmd
 * @size: bytes
 * @client_id: identity presented to every memnode, random per device
 * @nr_memnodes: entries in @memnodes
 * @memnodes: [@nr_memnodes]
 * @slab_shift: log2 of the slab size (all memnodes use one size)
 * @nr_slabs: entries in @slabs
 * @slabs: [@nr_slabs]; slab i lives on memnode i % @nr_memnodes
 * @max_sge: SGEs per work request, the same on every queue
 * @wrs_per_cmd: work requests one request needs at most
 * @vmr_shift: log2 of the VMR size
 * @vmr_pages: pages in a VMR
 * @wrs_per_vmr: work requests a VMR fetch needs
 * @cache: the VMR cache and the write registry
 * @wb: the write-back pool
 * @stats: per-CPU counters
 * @deleting: set once removal started: no more recovery
 */
struct rmai_dev {
	int id;
	struct list_head list;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	u64 size;
	u8 client_id[RMAI_CLIENT_ID_LEN];
	unsigned int nr_memnodes;
	struct rmai_memnode *memnodes;
	unsigned int slab_shift;
	unsigned int nr_slabs;
	struct rmai_slab *slabs;
	unsigned int max_sge;
	unsigned int wrs_per_cmd;
	unsigned int vmr_shift;
	unsigned int vmr_pages;
	unsigned int wrs_per_vmr;
	struct rmai_cache cache;
	struct rmai_wb wb;
	struct rmai_stats __percpu *stats;
	bool deleting;
};

/* queue.c */
int rmai_queue_connect(struct rmai_queue *queue);
void rmai_queue_stop(struct rmai_queue *queue);
void rmai_queue_free(struct rmai_queue *queue);
unsigned int rmai_queue_send_wrs(const struct rmai_queue *queue);

/* ctrl.c */
const char *rmai_status_name(unsigned int status);
int rmai_status_errno(unsigned int status);
int rmai_ctrl_init(struct rmai_memnode *mn);
void rmai_ctrl_exit(struct rmai_memnode *mn);
int rmai_ctrl_hello(struct rmai_memnode *mn);
int rmai_ctrl_alloc(struct rmai_memnode *mn, u32 count,
		    struct rmai_slab_desc *desc);
int rmai_ctrl_release(struct rmai_memnode *mn, u32 count, const u32 *index);
int rmai_ctrl_list(struct rmai_memnode *mn, u32 start, u32 *total,
		   u32 *count, struct rmai_slab_desc *desc);
int rmai_ctrl_keepalive(struct rmai_memnode *mn);

/* memnode.c */
int rmai_memnodes_connect(struct rmai_dev *dev);
void rmai_memnodes_go_live(struct rmai_dev *dev);
void rmai_memnodes_stop_recovery(struct rmai_dev *dev);
void rmai_memnodes_disconnect(struct rmai_dev *dev);
void rmai_memnode_error(struct rmai_memnode *mn);
void rmai_memnodes_remove_ibdev(struct rmai_dev *dev, struct ib_device *ibdev);
const char *rmai_mn_state_name(int state);

/* blk.c */
struct ib_rdma_wr *rmai_build_wrs(struct ib_rdma_wr *wrs, struct ib_sge *sges,
				  int nr_sge, unsigned int max_sge,
				  enum ib_wr_opcode opcode, u64 remote_addr,
				  u32 rkey, struct ib_cqe *cqe);
int rmai_cmd_prepare(struct rmai_queue *queue, struct request *rq,
		     u64 remote_addr, u32 rkey, struct ib_rdma_wr **last);
int rmai_cmd_post(struct rmai_queue *queue, struct request *rq);
void rmai_cmd_unmap(struct ib_device *ibdev, struct request *rq);
void rmai_cmd_failed(struct rmai_cmd *cmd);
void rmai_wr_error(struct ib_wc *wc);
int rmai_blk_alloc(struct rmai_dev *dev);
int rmai_blk_add(struct rmai_dev *dev);
void rmai_blk_del(struct rmai_dev *dev);
void rmai_blk_free(struct rmai_dev *dev);
void rmai_blk_kick(struct rmai_dev *dev);

/* vmr.c */
int rmai_cache_init(struct rmai_dev *dev);
void rmai_cache_exit(struct rmai_dev *dev);
bool rmai_write_begin(struct rmai_dev *dev, struct interval_tree_node *range,
		      u64 pos, u64 len, struct request *rq);
void rmai_write_end(struct rmai_dev *dev, struct interval_tree_node *range);
bool rmai_write_pending(struct rmai_dev *dev, u64 pos, u64 len);
void rmai_cache_discard(struct rmai_dev *dev, u64 pos, u64 len);
enum rmai_route rmai_vmr_read(struct rmai_dev *dev, struct rmai_queue *queue,
			      struct request *rq, const struct rmai_slab *slab,
			      u64 slab_off);

/* writeback.c */
int rmai_wb_init(struct rmai_dev *dev);
void rmai_wb_exit(struct rmai_dev *dev);
enum rmai_route rmai_wb_write(struct rmai_dev *dev, struct rmai_queue *queue,
			      struct request *rq, const struct rmai_slab *slab,
			      u64 slab_off);
enum rmai_route rmai_wb_flush(struct rmai_dev *dev, struct request *rq);
void rmai_wb_resume(struct rmai_memnode *mn);
void rmai_wb_drop(struct rmai_memnode *mn);
bool rmai_wb_drain(struct rmai_dev *dev, unsigned long timeout);

/* sysfs.c */
extern const struct attribute_group *rmai_disk_groups[];

#endif /* RMAI_H */
