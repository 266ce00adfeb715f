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
 *   sysfs.c      /sys/block/rmaiN/rmai/: statistics and memnode states
 */
#ifndef RMAI_H
#define RMAI_H

#include <linux/blk-mq.h>
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
};

/* Where one slab of the device lives. */
struct rmai_slab {
	struct rmai_memnode *mn;	/* the memnode that leased it */
	u64 addr;			/* remote address of its first byte */
	u32 rkey;			/* remote key, valid on mn's queues */
	u32 index;			/* the memnode's number for it */
	bool leased;			/* held, to be released at teardown */
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

/* Per-CPU counters; sysfs sums them. */
struct rmai_stats {
	u64 ops[RMAI_NR_IO];		/* requests completed, by class */
	u64 bytes[RMAI_NR_IO];		/* bytes completed, by class */
	u64 errors;			/* requests failed */
	u64 requeues;			/* requests retried after a QP error */
	u64 started;			/* requests posted to a QP */
	u64 finished;			/* posted requests completed */
	u64 lat[2][RMAI_LAT_BUCKETS];	/* READ/WRITE: completions by log2 us */
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
int rmai_blk_alloc(struct rmai_dev *dev);
int rmai_blk_add(struct rmai_dev *dev);
void rmai_blk_del(struct rmai_dev *dev);
void rmai_blk_free(struct rmai_dev *dev);
void rmai_blk_kick(struct rmai_dev *dev);

/* sysfs.c */
extern const struct attribute_group *rmai_disk_groups[];

#endif /* RMAI_H */
