/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rmai-memnoded: the memory-node daemon. It donates a locked memory pool in
 * slabs to compute nodes (backend/rmai.ko) over rdma_cm; once a client holds
 * a lease it moves data with one-sided RDMA and this daemon does nothing.
 */
#ifndef RMAI_MEMNODE_H
#define RMAI_MEMNODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "rmai_proto.h"

#define MEMNODE_VERSION		"0.1"
#define MEMNODE_ADMIN_SOCKET	"/run/rmai-memnoded.sock"

enum hugepages_mode { HUGEPAGES_AUTO, HUGEPAGES_ON, HUGEPAGES_OFF };

/* The donated memory, cut into slabs; one owner per slab at most. */
struct pool {
	char *base;			/* start of the mapping */
	uint64_t size;			/* bytes */
	uint64_t slab_size;		/* bytes, a power of two */
	uint32_t nr_slabs;		/* slabs in the pool */
	uint32_t nr_free;		/* slabs owned by nobody (some being zeroed) */
	uint32_t nr_zeroing;		/* of those, not yet zero (zero_lock) */
	const char *backing;		/* "hugetlb", "thp" or "4k pages" */
	struct session **owner;		/* [nr_slabs]: who holds each slab */
	struct ibv_mr **mr;		/* [nr_slabs]: its registration */
	pthread_t zero_thread;		/* zeroes reclaimed slabs */
	bool zero_started;		/* @zero_thread runs */
	pthread_mutex_t zero_lock;	/* the queue below and @zero_stop */
	pthread_cond_t zero_cond;	/* signalled when either changes */
	pthread_cond_t zeroed_cond;	/* broadcast when a slab is zero */
	uint32_t *zero_queue;		/* [nr_slabs] ring of slabs to zero */
	uint64_t zero_head;		/* next to zero */
	uint64_t zero_tail;		/* next free place */
	bool zero_stop;			/* finish the queue, then end */
};

/* The owner of a slab being zeroed: granted to nobody until it is free. */
#define POOL_ZEROING	((struct session *)1)

enum session_state { SESSION_CONNECTED, SESSION_GRACE };

/* One client's lease: its protection domain, slabs and queues. */
struct session {
	struct session *next;		/* in memnode.sessions */
	uint8_t client_id[RMAI_CLIENT_ID_LEN]; /* the client's identity */
	uint64_t token;			/* secret that resumes or joins it */
	struct ibv_pd *pd;		/* every queue and slab of the session */
	enum session_state state;	/* connected, or waiting for resume */
	time_t created;			/* wall clock, for status */
	struct timespec grace_end;	/* CLOCK_MONOTONIC expiry in GRACE */
	uint32_t nr_held;		/* slabs leased */
	struct conn *ctrl;		/* the live control queue, or NULL */
	struct conn *conns;		/* its queues, control first or not */
};

/* One rdma_cm connection: the control queue (qid 0) or a data queue. */
struct conn {
	struct conn *next;		/* in session.conns */
	struct memnode *mn;		/* the daemon */
	struct session *session;	/* owner; NULL until accepted */
	struct rdma_cm_id *id;		/* the connection */
	uint16_t qid;			/* 0: control */
	bool established;		/* ESTABLISHED seen */
	bool closing;			/* disconnect once the reply is sent */
	bool closed;			/* disconnected by us, its event to come */
	bool probing;			/* control: a liveness probe in flight */
	unsigned int probe_tick;	/* memnode.ticks when it was posted */
	struct ibv_comp_channel *channel; /* control only: CQ events */
	struct ibv_cq *cq;		/* send and receive completions */
	struct rmai_msg *msgs;		/* control: depth recv + depth send */
	struct ibv_mr *msgs_mr;		/* their registration */
};

struct memnode {
	struct pool pool;		/* the donated memory */
	struct session *sessions;	/* every live or in-grace lease */
	struct rdma_event_channel *cm_channel; /* rdma_cm events */
	struct rdma_cm_id *listen_id;	/* bound to --listen */
	int epoll_fd;			/* the one event loop */
	int signal_fd;			/* SIGTERM, SIGINT, SIGHUP */
	int timer_fd;			/* 1 s tick: lease expiry */
	int admin_fd;			/* unix socket for status */
	const char *admin_path;		/* its path */
	bool admin_bound;		/* we created it: unlink it at exit */
	unsigned int lease_grace;	/* seconds a lease outlives its client */
	uint64_t proto_errors;		/* bad messages and requests seen */
	unsigned int ticks;		/* of timer_fd, for the probes */
	bool stop;			/* SIGTERM/SIGINT received, or a failure */
	bool failed;			/* stopped by a failure: exit non-zero */
};

/* pool.c */
int pool_check(uint64_t size, uint64_t slab_size, char *err, size_t errlen);
int pool_init(struct pool *pool, uint64_t size, uint64_t slab_size,
	      enum hugepages_mode mode, char *err, size_t errlen);
void pool_destroy(struct pool *pool);
int pool_grant(struct pool *pool, struct session *s, uint32_t *index);
void pool_reclaim(struct pool *pool, uint32_t index);

/* conn.c */
int cm_listen(struct memnode *mn, const char *addr, const char *port,
	      char *err, size_t errlen);
void cm_handle_events(struct memnode *mn);
void conn_handle_cq(struct conn *conn);
void sessions_expire(struct memnode *mn, bool all);
void sessions_tick(struct memnode *mn);
int session_disconnect(struct memnode *mn, const char *hex_client_id);
void cm_shutdown(struct memnode *mn);

/* main.c */
void logmsg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int loop_add(struct memnode *mn, int fd, void *ptr);
void loop_del(struct memnode *mn, int fd);

#endif /* RMAI_MEMNODE_H */
