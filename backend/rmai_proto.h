/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RMAI wire protocol between the compute-side module (backend/rmai.ko) and the
 * memory-node daemon (memnode/rmai-memnoded). This header is the only
 * definition of it; both sides include it. memnode/PROTOCOL.md documents the
 * message flow, states and error codes.
 *
 * All fields are little-endian and every struct has a fixed size with explicit
 * reserved bytes, which senders zero and the memnode rejects when non-zero: a
 * later use of them comes with a new RMAI_PROTO_VERSION.
 *
 * Transport: one rdma_cm RC connection per queue (RDMA_PS_TCP). Queue 0 is the
 * control queue and carries the messages below as two-sided SEND/RECV; queues
 * 1..n only ever carry the client's one-sided RDMA READ/WRITE. All queues of
 * one session share one protection domain on the memnode, and every leased
 * slab is registered in that domain alone, so a remote key is useless from any
 * other session's queue pair.
 *
 * Compatible with both kernel and userspace: only <linux/types.h> types.
 */
#ifndef RMAI_PROTO_H
#define RMAI_PROTO_H

#include <linux/types.h>
#ifdef __KERNEL__
#include <linux/build_bug.h>
#else
#include <assert.h>
#endif

#define RMAI_PROTO_MAGIC	0x49414d52	/* "RMAI" as little-endian bytes */
#define RMAI_PROTO_VERSION	2
#define RMAI_DEFAULT_PORT	7470

#define RMAI_CLIENT_ID_LEN	16	/* bytes: random per client instance */
#define RMAI_AUTH_LEN		32	/* bytes: reserved for authentication */
#define RMAI_MSG_SIZE		256	/* bytes: every control message */
#define RMAI_MSG_MAX_SLABS	14	/* slab descriptors in one message */
#define RMAI_CTRL_QUEUE_DEPTH	4	/* control messages in flight per side */

/**
 * enum rmai_status - status codes in CM replies and control messages
 * @RMAI_OK: success
 * @RMAI_E_VERSION: protocol version not supported
 * @RMAI_E_INVAL: malformed message or invalid field
 * @RMAI_E_NOSPC: not enough free slabs in the pool
 * @RMAI_E_TOKEN: unknown session or wrong lease token
 * @RMAI_E_BUSY: a limit was reached
 * @RMAI_E_NOENT: slab not held by this session
 * @RMAI_E_INTERNAL: memnode-side failure (e.g. memory registration)
 */
enum rmai_status {
	RMAI_OK		= 0,
	RMAI_E_VERSION	= 1,
	RMAI_E_INVAL	= 2,
	RMAI_E_NOSPC	= 3,
	RMAI_E_TOKEN	= 4,
	RMAI_E_BUSY	= 5,
	RMAI_E_NOENT	= 6,
	RMAI_E_INTERNAL	= 7,
};

/**
 * struct rmai_cm_req - private data of the rdma_cm connect request (48 bytes)
 * @magic: RMAI_PROTO_MAGIC
 * @version: RMAI_PROTO_VERSION of the client
 * @qid: 0 for the control queue (opens or resumes the session), 1..n for
 *	data queues (join a session that queue 0 already opened)
 * @token: 0 on queue 0 to open a new session; otherwise the session's lease
 *	token from &struct rmai_cm_rep (resume after a disconnect, or join)
 * @client_id: random identity the client keeps for its lifetime
 * @reserved1: zero
 *
 * 48 bytes leave room in the 56 bytes rdma_cm passes through on RoCE/IB.
 */
struct rmai_cm_req {
	__le32	magic;
	__le16	version;
	__le16	qid;
	__le64	token;
	__u8	client_id[RMAI_CLIENT_ID_LEN];
	__u8	reserved1[16];
};

/**
 * struct rmai_cm_rep - private data of the accept, or of a reject (48 bytes)
 * @magic: RMAI_PROTO_MAGIC
 * @version: RMAI_PROTO_VERSION of the memnode
 * @status: &enum rmai_status; non-zero only in a reject
 * @token: the session's lease token (the client keeps it to resume)
 * @slab_size: bytes per slab; a power of two
 * @nr_slabs: slabs in the whole pool
 * @nr_free: slabs free when this reply was sent
 * @nr_held: slabs this session holds (non-zero when a session was resumed)
 * @lease_grace: seconds the memnode keeps a lease once the session's
 *	control queue is gone (version 2)
 * @liveness: seconds the memnode may take to notice that a client vanished
 *	without a disconnect (version 2): a lease outlives its client's last
 *	contact by at most @liveness + @lease_grace
 * @reserved: zero
 */
struct rmai_cm_rep {
	__le32	magic;
	__le16	version;
	__le16	status;
	__le64	token;
	__le64	slab_size;
	__le32	nr_slabs;
	__le32	nr_free;
	__le32	nr_held;
	__le32	lease_grace;
	__le32	liveness;
	__u8	reserved[4];
};

/**
 * enum rmai_opcode - control message opcodes (queue 0 only)
 * @RMAI_OP_HELLO: first message of a session; carries the auth field
 * @RMAI_OP_ALLOC: lease up to RMAI_MSG_MAX_SLABS more slabs
 * @RMAI_OP_RELEASE: give slabs back (they are zeroed before reuse)
 * @RMAI_OP_LIST: list held slabs from an index on (to rebuild after resume)
 * @RMAI_OP_KEEPALIVE: liveness; echoes @seq
 * @RMAI_OP_STATS: pool counters
 *
 * A reply carries the request's opcode with RMAI_OP_REPLY set, its @seq, and
 * a status.
 */
enum rmai_opcode {
	RMAI_OP_HELLO		= 1,
	RMAI_OP_ALLOC		= 2,
	RMAI_OP_RELEASE		= 3,
	RMAI_OP_LIST		= 4,
	RMAI_OP_KEEPALIVE	= 5,
	RMAI_OP_STATS		= 6,
};

#define RMAI_OP_REPLY		0x80

/**
 * struct rmai_msg_hdr - header of every control message (16 bytes)
 * @magic: RMAI_PROTO_MAGIC
 * @version: RMAI_PROTO_VERSION
 * @opcode: &enum rmai_opcode, with RMAI_OP_REPLY in replies
 * @reserved0: zero
 * @status: &enum rmai_status (replies); zero in requests
 * @length: RMAI_MSG_SIZE
 * @seq: chosen by the requester, echoed in the reply
 */
struct rmai_msg_hdr {
	__le32	magic;
	__le16	version;
	__u8	opcode;
	__u8	reserved0;
	__le16	status;
	__le16	length;
	__le32	seq;
};

/**
 * struct rmai_slab_desc - one leased slab (16 bytes)
 * @addr: remote virtual address of the slab's first byte
 * @rkey: remote key valid for this slab, from this session's queues only
 * @index: the slab's number in the memnode's pool (used to release it)
 */
struct rmai_slab_desc {
	__le64	addr;
	__le32	rkey;
	__le32	index;
};

/**
 * struct rmai_msg - a control message; every message is RMAI_MSG_SIZE bytes
 * @hdr: the header
 * @hello: RMAI_OP_HELLO request: @auth reserved, zero for now
 * @alloc: RMAI_OP_ALLOC request: @count slabs wanted (1..RMAI_MSG_MAX_SLABS)
 * @release: RMAI_OP_RELEASE request: @count slab indexes in @index
 * @list: RMAI_OP_LIST request: descriptors of held slabs from @start on
 * @slabs: reply to ALLOC or LIST: @count descriptors; for LIST, @total held
 * @stats: reply to STATS (and HELLO): pool counters
 * @raw: the whole body
 */
struct rmai_msg {
	struct rmai_msg_hdr hdr;
	union {
		struct {
			__u8	auth[RMAI_AUTH_LEN];
		} hello;
		struct {
			__le32	count;
			__le32	reserved;
		} alloc;
		struct {
			__le32	count;
			__le32	reserved;
			__le32	index[RMAI_MSG_MAX_SLABS];
		} release;
		struct {
			__le32	start;
			__le32	reserved;
		} list;
		struct {
			__le32	count;
			__le32	total;
			__u8	reserved[8];
			struct rmai_slab_desc desc[RMAI_MSG_MAX_SLABS];
		} slabs;
		struct {
			__le64	slab_size;
			__le32	nr_slabs;
			__le32	nr_free;
			__le32	nr_held;
			__le32	nr_sessions;
			__le64	proto_errors;
		} stats;
		__u8	raw[RMAI_MSG_SIZE - sizeof(struct rmai_msg_hdr)];
	};
};

/* Sizes are part of the protocol: a change here breaks every peer. */
static_assert(sizeof(struct rmai_cm_req) == 48, "rmai_cm_req size");
static_assert(sizeof(struct rmai_cm_rep) == 48, "rmai_cm_rep size");
static_assert(sizeof(struct rmai_msg_hdr) == 16, "rmai_msg_hdr size");
static_assert(sizeof(struct rmai_slab_desc) == 16, "rmai_slab_desc size");
static_assert(sizeof(struct rmai_msg) == RMAI_MSG_SIZE, "rmai_msg size");

#endif /* RMAI_PROTO_H */
