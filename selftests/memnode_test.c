// SPDX-License-Identifier: GPL-2.0
/*
 * rmai-memnoded over real soft-RoCE: leases, one-sided data, isolation
 * between clients, resume with the lease token, zeroing on expiry, capacity
 * exhaustion, malformed messages, clients that die or vanish, signals, the
 * admin socket, and the command line's errors. Each test starts its own
 * daemon (4 slabs of 4 MiB, 3 s lease grace) on 192.0.2.1 and a port of its
 * own.
 *
 * cpu_idle_on_data_path also gives the numbers for the memnode's notes:
 * RMAI_MEMNODE_MOVE_MIB (default 128) sets how much it writes and reads back,
 * RMAI_MEMNODE_IDLE_S (default 0) how long it then measures the idle daemon.
 */
#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>

#include "kselftest_harness.h"
#include "rmai_proto.h"

#define MN_ADDR		"192.0.2.1"
#define SLAB		(4u << 20)
#define NR_SLABS	4
#define GRACE		3		/* seconds */
#define BUF_SIZE	(1u << 20)
#define PROBE_WAIT	60		/* s: the memnode's probe, 5 s, plus retries */

/* A test client: one queue, its control buffers and a data buffer. */
struct client {
	struct rdma_cm_id *id;		/* the queue */
	struct rmai_msg req, rep;	/* control SEND and RECV buffers */
	struct ibv_mr *msg_mr;		/* covers req and rep */
	char *buf;			/* BUF_SIZE data buffer */
	struct ibv_mr *buf_mr;		/* its registration */
	struct rmai_cm_rep cm;		/* what the memnode accepted with */
	uint8_t client_id[RMAI_CLIENT_ID_LEN]; /* who we say we are */
	uint32_t seq;			/* next request's seq */
};

static void client_close(struct client *c)
{
	if (!c->id)
		return;
	if (c->buf_mr)
		rdma_dereg_mr(c->buf_mr);
	if (c->msg_mr)
		rdma_dereg_mr(c->msg_mr);
	rdma_destroy_ep(c->id);
	free(c->buf);
	c->id = NULL;
	c->buf_mr = c->msg_mr = NULL;
	c->buf = NULL;
}

/*
 * Connect queue @qid presenting @token. Returns 0, or the memnode's reject
 * status (> 0), or -1 for a local failure.
 */
static int client_open(struct client *c, int port, uint16_t qid, uint64_t token)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP }, *res;
	struct ibv_qp_init_attr attr = {
		.cap = { .max_send_wr = 8, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.sq_sig_all = 1,
	};
	struct rmai_cm_req cr = {
		.magic = htole32(RMAI_PROTO_MAGIC),
		.version = htole16(RMAI_PROTO_VERSION),
		.qid = htole16(qid),
		.token = htole64(token),
	};
	struct rdma_conn_param param = {
		.private_data = &cr, .private_data_len = sizeof(cr),
		.initiator_depth = 1, .retry_count = 7,
		.rnr_retry_count = 3,	/* finite: a closed peer must show */
	};
	char portstr[16];
	int ret;

	memcpy(cr.client_id, c->client_id, sizeof(cr.client_id));
	memset(&c->cm, 0, sizeof(c->cm));
	c->seq = 0;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (rdma_getaddrinfo(MN_ADDR, portstr, &hints, &res))
		return -1;
	ret = rdma_create_ep(&c->id, res, NULL, &attr);
	rdma_freeaddrinfo(res);
	if (ret)
		return -1;
	c->buf = calloc(1, BUF_SIZE);
	c->msg_mr = rdma_reg_msgs(c->id, &c->req, 2 * sizeof(struct rmai_msg));
	c->buf_mr = rdma_reg_msgs(c->id, c->buf, BUF_SIZE);
	if (!c->buf || !c->msg_mr || !c->buf_mr)
		return -1;
	if (qid == 0 && rdma_post_recv(c->id, NULL, &c->rep, sizeof(c->rep), c->msg_mr))
		return -1;
	ret = rdma_connect(c->id, &param);
	if (c->id->event && c->id->event->param.conn.private_data_len >= sizeof(c->cm))
		memcpy(&c->cm, c->id->event->param.conn.private_data, sizeof(c->cm));
	if (ret)
		return c->cm.status ? le16toh(c->cm.status) : -1;
	return 0;
}

/* Send the prepared c->req (raw, @len bytes); wait for the reply. */
static int client_send_raw(struct client *c, size_t len)
{
	struct ibv_wc wc;

	if (rdma_post_send(c->id, NULL, &c->req, len, c->msg_mr, 0) ||
	    rdma_get_send_comp(c->id, &wc) != 1 || wc.status != IBV_WC_SUCCESS)
		return -1;
	if (rdma_get_recv_comp(c->id, &wc) != 1 || wc.status != IBV_WC_SUCCESS)
		return -1;
	if (rdma_post_recv(c->id, NULL, &c->rep, sizeof(c->rep), c->msg_mr))
		return -1;
	return le16toh(c->rep.hdr.status);
}

static void client_prepare(struct client *c, uint8_t opcode)
{
	memset(&c->req, 0, sizeof(c->req));
	c->req.hdr.magic = htole32(RMAI_PROTO_MAGIC);
	c->req.hdr.version = htole16(RMAI_PROTO_VERSION);
	c->req.hdr.opcode = opcode;
	c->req.hdr.length = htole16(RMAI_MSG_SIZE);
	c->req.hdr.seq = htole32(++c->seq);
}

/* ALLOC @count slabs into @desc. Returns the reply status or -1. */
static int client_alloc(struct client *c, uint32_t count, struct rmai_slab_desc *desc)
{
	int st;

	client_prepare(c, RMAI_OP_ALLOC);
	c->req.alloc.count = htole32(count);
	st = client_send_raw(c, RMAI_MSG_SIZE);
	if (st == RMAI_OK)
		memcpy(desc, c->rep.slabs.desc, count * sizeof(*desc));
	return st;
}

/* One-sided op on @len bytes of slab @d at @off; returns the wc status. */
static int client_rdma(struct client *c, int write, const struct rmai_slab_desc *d,
		       uint64_t off, size_t len)
{
	uint64_t addr = le64toh(d->addr) + off;
	uint32_t rkey = le32toh(d->rkey);
	struct ibv_wc wc;
	int ret;

	ret = write ? rdma_post_write(c->id, NULL, c->buf, len, c->buf_mr, 0, addr, rkey) :
		      rdma_post_read(c->id, NULL, c->buf, len, c->buf_mr, 0, addr, rkey);
	if (ret || rdma_get_send_comp(c->id, &wc) != 1)
		return -1;
	return wc.status;
}

static void fill(char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)(seed * 131 + i * 7 + (i >> 9));
}

static int check(const char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (char)(seed * 131 + i * 7 + (i >> 9)))
			return 0;
	return 1;
}

static int all_zero(const char *p, size_t len)
{
	while (len--)
		if (*p++)
			return 0;
	return 1;
}

/* The daemon's `status --json` text, via its admin socket, into @buf. */
static int admin_status(const char *sock, char *buf, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	ssize_t n, got = 0;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    write(fd, "status json\n", 12) != 12) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	buf[got] = '\0';
	close(fd);
	return 0;
}

/* A number field of the daemon's JSON status; -1 when absent. */
static long long json_num(const char *buf, const char *key)
{
	char want[64];
	const char *p;

	snprintf(want, sizeof(want), "\"%s\": ", key);
	p = strstr(buf, want);
	return p ? strtoll(p + strlen(want), NULL, 10) : -1;
}

#define CONNECTED	"\"state\": \"connected\""
#define IN_GRACE	"\"state\": \"grace\""

/*
 * Wait up to @secs for the status of the lease of client id byte @b to show
 * @has ("\"queues\": 1", CONNECTED, IN_GRACE), or for the lease to be gone
 * when @has is NULL. Returns 1 when it did.
 */
static int wait_lease(const char *sock, uint8_t b, const char *has, int secs)
{
	char buf[4096], want[128];
	int i;

	snprintf(want, sizeof(want), "\"client\": \"%02x%02x", b, b);
	for (i = 0; i < secs * 10; i++) {
		char *p, *q;

		if (admin_status(sock, buf, sizeof(buf)))
			return 0;
		p = strstr(buf, want);
		q = p ? strchr(p, '}') : NULL;
		if (q)
			*q = '\0';	/* this lease's fields only */
		if (has ? p && strstr(p, has) : !p)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* Wait until the daemon reports the lease of client id byte @b as closed. */
static int wait_lease_in_grace(const char *sock, uint8_t b)
{
	return wait_lease(sock, b, IN_GRACE, 5);
}

static const char *daemon_path(void)
{
	return getenv("RMAI_MEMNODED") ?: "../memnode/rmai-memnoded";
}

static int have_rdma_device(void)
{
	struct ibv_device **devs;
	int n;

	devs = ibv_get_device_list(&n);
	if (devs)
		ibv_free_device_list(devs);
	return devs && n;
}

/* A port of this test's own, in 7500..7899, and +400 for a second daemon. */
static int pick_port(void)
{
	return 7500 + getpid() % 400;
}

/*
 * Start the daemon in the foreground as our child on @port with admin socket
 * @sock and the options @opts (NULL-terminated), and wait for its socket.
 * Returns its pid, or -1.
 */
static pid_t start_daemon(int port, const char *sock, const char *const *opts)
{
	const char *argv[32] = { daemon_path(), "--listen" };
	char listen[64];
	struct stat st;
	int n = 2, i;
	pid_t pid;

	snprintf(listen, sizeof(listen), "%s:%d", MN_ADDR, port);
	argv[n++] = listen;
	argv[n++] = "--admin-socket";
	argv[n++] = sock;
	argv[n++] = "--foreground";
	while (*opts && n < 31)
		argv[n++] = *opts++;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		/* Never outlive the test, even one that fails mid-way. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 600; i++) {	/* valgrind is slow */
		if (!stat(sock, &st))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* SIGTERM to @pid, our child; its exit status, or 128 + signal. */
static int stop_daemon(pid_t pid, int sig)
{
	int status;

	kill(pid, sig);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Run the daemon with @opts (NULL-terminated) to its end, its stdout and
 * stderr into @out; @pre runs in the child before exec. Returns its exit
 * status, or 128 + signal.
 */
static int run_daemon(char *out, size_t len, void (*pre)(void),
		      const char *const *opts)
{
	const char *argv[32] = { daemon_path() };
	ssize_t r, got = 0;
	int p[2], n = 1, status;
	pid_t pid;

	while (*opts && n < 31)
		argv[n++] = *opts++;
	argv[n] = NULL;
	if (pipe(p))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		if (pre)
			pre();
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while ((r = read(p[0], out + got, len - 1 - got)) > 0)
		got += r;
	out[got] = '\0';
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

FIXTURE(memnode) {
	pid_t pid;			/* the daemon */
	int port;			/* its port */
	char sock[64];			/* its admin socket */
	struct client a, b;		/* two clients */
};

FIXTURE_SETUP(memnode)
{
	static const char *const opts[] = {
		"--size", "16M", "--slab", "4M", "--lease-grace", "3",
		"--hugepages", "off", NULL
	};

	if (!have_rdma_device())
		SKIP(return, "no RDMA device (run in the test VM with --net)");
	ASSERT_EQ(0, access(daemon_path(), X_OK)) TH_LOG("%s not built", daemon_path());
	self->port = pick_port();
	snprintf(self->sock, sizeof(self->sock), "/tmp/memnode-%d.sock", self->port);
	memset(self->a.client_id, 0xaa, RMAI_CLIENT_ID_LEN);
	memset(self->b.client_id, 0xbb, RMAI_CLIENT_ID_LEN);
	self->pid = start_daemon(self->port, self->sock, opts);
	ASSERT_LT(0, self->pid) TH_LOG("memnode did not come up");
}

FIXTURE_TEARDOWN(memnode)
{
	client_close(&self->b);
	client_close(&self->a);
	/* A clean shutdown is part of the contract. */
	if (self->pid > 0)
		EXPECT_EQ(0, stop_daemon(self->pid, SIGTERM));
}

TEST_F(memnode, write_read_pattern)
{
	struct rmai_slab_desc d[2];
	int i;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_NE(0, le64toh(self->a.cm.token));
	ASSERT_EQ(SLAB, le64toh(self->a.cm.slab_size));
	ASSERT_EQ(NR_SLABS, le32toh(self->a.cm.nr_slabs));
	client_prepare(&self->a, RMAI_OP_HELLO);
	ASSERT_EQ(RMAI_OK, client_send_raw(&self->a, RMAI_MSG_SIZE));
	ASSERT_EQ(RMAI_OP_HELLO | RMAI_OP_REPLY, self->a.rep.hdr.opcode);
	ASSERT_EQ(self->a.seq, le32toh(self->a.rep.hdr.seq));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 2, d));
	for (i = 0; i < 2; i++) {
		fill(self->a.buf, BUF_SIZE, i + 1);
		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 1, &d[i], SLAB - BUF_SIZE, BUF_SIZE));
	}
	for (i = 0; i < 2; i++) {
		memset(self->a.buf, 0, BUF_SIZE);
		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 0, &d[i], SLAB - BUF_SIZE, BUF_SIZE));
		ASSERT_TRUE(check(self->a.buf, BUF_SIZE, i + 1));
	}
	/* Past the end of a slab is outside its registration. */
	ASSERT_NE(IBV_WC_SUCCESS, client_rdma(&self->a, 0, &d[0], SLAB - 4096, 8192));
}

/* B holds a lease too, yet A's address and key give B nothing. */
TEST_F(memnode, isolation)
{
	struct rmai_slab_desc da, db;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(0, client_open(&self->b, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 1, &da));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->b, 1, &db));
	fill(self->a.buf, 4096, 9);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 1, &da, 0, 4096));
	memset(self->b.buf, 0x5a, 4096);
	ASSERT_EQ(IBV_WC_REM_ACCESS_ERR, client_rdma(&self->b, 0, &da, 0, 4096));
	ASSERT_EQ((char)0x5a, self->b.buf[0]);
	ASSERT_EQ((char)0x5a, self->b.buf[4095]);
}

/* A disconnects and comes back with its token: same slabs, same bytes. */
TEST_F(memnode, resume_with_token)
{
	struct rmai_slab_desc d[2];
	uint64_t token;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 2, d));
	fill(self->a.buf, BUF_SIZE, 3);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 1, &d[1], 0, BUF_SIZE));
	token = le64toh(self->a.cm.token);
	client_close(&self->a);
	usleep(300000);

	/* A wrong token is refused; the right one resumes. */
	ASSERT_EQ(RMAI_E_TOKEN, client_open(&self->a, self->port, 0, token ^ 1));
	client_close(&self->a);
	ASSERT_EQ(0, client_open(&self->a, self->port, 0, token));
	ASSERT_EQ(2, le32toh(self->a.cm.nr_held));
	client_prepare(&self->a, RMAI_OP_LIST);
	ASSERT_EQ(RMAI_OK, client_send_raw(&self->a, RMAI_MSG_SIZE));
	ASSERT_EQ(2, le32toh(self->a.rep.slabs.count));
	/* Same slabs, same keys: the new queue is in the session's PD. */
	ASSERT_TRUE(!memcmp(&d[1], &self->a.rep.slabs.desc[0], sizeof(d[1])) ||
		    !memcmp(&d[1], &self->a.rep.slabs.desc[1], sizeof(d[1])));
	memset(self->a.buf, 0, BUF_SIZE);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 0, &d[1], 0, BUF_SIZE));
	ASSERT_TRUE(check(self->a.buf, BUF_SIZE, 3));
}

/* After the grace period, A's slabs come back zeroed to whoever asks. */
TEST_F(memnode, expiry_zeroes)
{
	struct rmai_slab_desc d[NR_SLABS];
	int i;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, NR_SLABS, d));
	for (i = 0; i < NR_SLABS; i++) {
		fill(self->a.buf, BUF_SIZE, 20 + i);
		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 1, &d[i], 0, BUF_SIZE));
	}
	client_close(&self->a);
	sleep(GRACE + 2);
	ASSERT_EQ(0, client_open(&self->b, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->b, NR_SLABS, d));
	for (i = 0; i < NR_SLABS; i++) {
		memset(self->b.buf, 0x77, BUF_SIZE);
		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->b, 0, &d[i], 0, BUF_SIZE));
		ASSERT_TRUE(all_zero(self->b.buf, BUF_SIZE));
	}
}

/* A full pool says NOSPC to everyone, and A keeps working. */
TEST_F(memnode, capacity_exhausted)
{
	struct rmai_slab_desc d[NR_SLABS], extra;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(0, client_open(&self->b, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, NR_SLABS, d));
	ASSERT_EQ(RMAI_E_NOSPC, client_alloc(&self->a, 1, &extra));
	ASSERT_EQ(RMAI_E_NOSPC, client_alloc(&self->b, 1, &extra));
	fill(self->a.buf, BUF_SIZE, 5);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 1, &d[3], 0, BUF_SIZE));
	memset(self->a.buf, 0, BUF_SIZE);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 0, &d[3], 0, BUF_SIZE));
	ASSERT_TRUE(check(self->a.buf, BUF_SIZE, 5));
	/* Releasing makes room again; a slab A does not hold is refused. */
	client_prepare(&self->a, RMAI_OP_RELEASE);
	self->a.req.release.count = htole32(1);
	self->a.req.release.index[0] = d[0].index;
	ASSERT_EQ(RMAI_OK, client_send_raw(&self->a, RMAI_MSG_SIZE));
	ASSERT_EQ(RMAI_E_NOENT, client_send_raw(&self->a, RMAI_MSG_SIZE));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->b, 1, &extra));
}

/*
 * In a child process: client @id leases a slab, then writes, reads back and
 * checks it, round after round, until a byte arrives on @stop; one byte goes
 * out on @started after the first round. Exits 0 when every round was exact.
 */
static void transfer_loop(int port, uint8_t id, int started, int stop)
{
	struct pollfd pfd = { .fd = stop, .events = POLLIN };
	struct client c = { 0 };
	struct rmai_slab_desc d;
	unsigned int round;

	memset(c.client_id, id, RMAI_CLIENT_ID_LEN);
	if (client_open(&c, port, 0, 0) || client_alloc(&c, 1, &d) != RMAI_OK)
		_exit(2);
	for (round = 0; ; round++) {
		fill(c.buf, BUF_SIZE, round);
		if (client_rdma(&c, 1, &d, 0, BUF_SIZE) != IBV_WC_SUCCESS)
			_exit(3);
		memset(c.buf, 0, BUF_SIZE);
		if (client_rdma(&c, 0, &d, 0, BUF_SIZE) != IBV_WC_SUCCESS)
			_exit(4);
		if (!check(c.buf, BUF_SIZE, round))
			_exit(5);
		if (!round && write(started, "", 1) != 1)
			_exit(6);
		if (poll(&pfd, 1, 0) == 1)
			break;
	}
	client_close(&c);
	_exit(round ? 0 : 7);
}

/* Fork transfer_loop() for client @id; returns its pid once it runs. */
static pid_t start_transfer(int port, uint8_t id, int *stop_fd)
{
	int started[2], stop[2];
	pid_t pid;
	char c;

	if (pipe(started) || pipe(stop))
		return -1;
	pid = fork();
	if (!pid) {
		close(started[0]);
		close(stop[1]);
		transfer_loop(port, id, started[1], stop[0]);
	}
	close(started[1]);
	close(stop[0]);
	*stop_fd = stop[1];
	if (pid < 0 || read(started[0], &c, 1) != 1) {
		close(started[0]);
		return -1;
	}
	close(started[0]);
	return pid;
}

/* Stop a transfer_loop(); its exit status (0: every byte was right). */
static int stop_transfer(pid_t pid, int stop_fd)
{
	int status;

	if (write(stop_fd, "", 1) != 1 || waitpid(pid, &status, 0) != pid)
		return -1;
	close(stop_fd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * B's malformed messages close B alone, while A's transfer runs on and
 * stays byte-exact.
 */
TEST_F(memnode, garbage_closes_only_sender)
{
	struct client *b = &self->b;
	char buf[4096];
	int stop;
	pid_t a;

	/* A runs in a child, started before this process touches RDMA. */
	a = start_transfer(self->port, 0xaa, &stop);
	ASSERT_LT(0, a);

	/*
	 * Wrong version, bad magic, a truncated and an over-long message, each
	 * from a new B: an error reply (none for the over-long one, which the
	 * receive itself refuses), then the memnode closes B's queue and its
	 * lease goes to grace.
	 */
	ASSERT_EQ(0, client_open(b, self->port, 0, 0));
	client_prepare(b, RMAI_OP_STATS);
	b->req.hdr.version = htole16(99);
	ASSERT_EQ(RMAI_E_VERSION, client_send_raw(b, RMAI_MSG_SIZE));
	ASSERT_TRUE(wait_lease_in_grace(self->sock, 0xbb));
	client_close(b);

	memset(b->client_id, 0xcc, RMAI_CLIENT_ID_LEN);
	ASSERT_EQ(0, client_open(b, self->port, 0, 0));
	client_prepare(b, RMAI_OP_ALLOC);
	b->req.hdr.magic = 0xdeadbeef;
	ASSERT_EQ(RMAI_E_INVAL, client_send_raw(b, RMAI_MSG_SIZE));
	ASSERT_TRUE(wait_lease_in_grace(self->sock, 0xcc));
	client_close(b);

	memset(b->client_id, 0xdd, RMAI_CLIENT_ID_LEN);
	ASSERT_EQ(0, client_open(b, self->port, 0, 0));
	client_prepare(b, RMAI_OP_STATS);
	ASSERT_EQ(RMAI_E_INVAL, client_send_raw(b, 100));
	ASSERT_TRUE(wait_lease_in_grace(self->sock, 0xdd));
	client_close(b);

	memset(b->client_id, 0xee, RMAI_CLIENT_ID_LEN);
	ASSERT_EQ(0, client_open(b, self->port, 0, 0));
	client_prepare(b, RMAI_OP_STATS);
	ASSERT_EQ(-1, client_send_raw(b, RMAI_MSG_SIZE + 64));	/* spills into rep */
	ASSERT_TRUE(wait_lease_in_grace(self->sock, 0xee));
	client_close(b);

	ASSERT_EQ(0, stop_transfer(a, stop));
	ASSERT_EQ(0, admin_status(self->sock, buf, sizeof(buf)));
	ASSERT_EQ(4, json_num(buf, "protocol_errors"));
}

static int next_event(struct rdma_event_channel *ch, enum rdma_cm_event_type type)
{
	struct rdma_cm_event *ev;
	int ok;

	if (rdma_get_cm_event(ch, &ev))
		return -1;
	ok = ev->event == type;
	rdma_ack_cm_event(ev);
	return ok ? 0 : -1;
}

/*
 * Connect queue @qid as client @id with @token, then refuse the memnode's
 * accept, as a client does whose queue pair failed or that dislikes the
 * reply (no queue pair here, so the CONNECT_RESPONSE comes to us). Returns
 * 0 once rejected.
 */
static int connect_and_reject(int port, uint8_t id, uint16_t qid, uint64_t token)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP }, *res = NULL;
	struct rmai_cm_req cr = {
		.magic = htole32(RMAI_PROTO_MAGIC),
		.version = htole16(RMAI_PROTO_VERSION),
		.qid = htole16(qid),
		.token = htole64(token),
	};
	struct rdma_conn_param param = {
		.private_data = &cr, .private_data_len = sizeof(cr),
		.initiator_depth = 1, .retry_count = 7, .rnr_retry_count = 3,
		.qp_num = 0x1234,	/* never used: we reject */
	};
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_id *id_ = NULL;
	char portstr[16];
	int ret = -1;

	memset(cr.client_id, id, sizeof(cr.client_id));
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (!ch || rdma_getaddrinfo(MN_ADDR, portstr, &hints, &res) ||
	    rdma_create_id(ch, &id_, NULL, RDMA_PS_TCP))
		goto out;
	if (rdma_resolve_addr(id_, res->ai_src_addr, res->ai_dst_addr, 2000) ||
	    next_event(ch, RDMA_CM_EVENT_ADDR_RESOLVED) ||
	    rdma_resolve_route(id_, 2000) ||
	    next_event(ch, RDMA_CM_EVENT_ROUTE_RESOLVED) ||
	    rdma_connect(id_, &param) ||
	    next_event(ch, RDMA_CM_EVENT_CONNECT_RESPONSE))
		goto out;
	ret = rdma_reject(id_, NULL, 0);
out:
	if (id_)
		rdma_destroy_id(id_);
	if (res)
		rdma_freeaddrinfo(res);
	if (ch)
		rdma_destroy_event_channel(ch);
	return ret;
}

/*
 * A client that refuses the accept leaves no queue behind: not a data queue
 * in a live session, and not a control queue, whose lease goes to grace.
 */
TEST_F(memnode, rejected_accept_leaves_nothing)
{
	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(0, connect_and_reject(self->port, 0xaa, 1, le64toh(self->a.cm.token)));
	ASSERT_EQ(0, connect_and_reject(self->port, 0xaa, 2, le64toh(self->a.cm.token)));
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, "\"queues\": 1,", 10));
	ASSERT_EQ(0, connect_and_reject(self->port, 0xee, 0, 0));
	ASSERT_TRUE(wait_lease(self->sock, 0xee, IN_GRACE, 10));
	ASSERT_TRUE(wait_lease(self->sock, 0xee, "\"queues\": 0,", 10));
	ASSERT_TRUE(wait_lease(self->sock, 0xee, NULL, GRACE + 10));
	client_prepare(&self->a, RMAI_OP_KEEPALIVE);
	ASSERT_EQ(RMAI_OK, client_send_raw(&self->a, RMAI_MSG_SIZE));
}

/*
 * A client whose node vanishes sends no disconnect: its queue pair is just
 * gone (here destroyed behind rdma_cm's back, so no DREQ goes out). The
 * memnode's probe notices, the lease goes to grace and then back to the
 * pool, while a healthy client, probed as often, stays.
 */
TEST_F_TIMEOUT(memnode, vanished_client_is_detected, 150)
{
	struct rmai_slab_desc d[NR_SLABS];

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, NR_SLABS, d));
	ASSERT_EQ(0, client_open(&self->b, self->port, 0, 0));
	rdma_destroy_qp(self->a.id);
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, IN_GRACE, PROBE_WAIT));
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, NULL, GRACE + 10));
	ASSERT_TRUE(wait_lease(self->sock, 0xbb, CONNECTED, 1));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->b, NR_SLABS, d));
	fill(self->b.buf, BUF_SIZE, 17);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->b, 1, &d[0], 0, BUF_SIZE));
}

/* A client that dies one way or another, after leasing and writing a slab. */
static void doomed_client(int port, int how, int ready)
{
	struct client c = { 0 };
	struct rmai_slab_desc d;
	int i;

	memset(c.client_id, 0x10 + how, RMAI_CLIENT_ID_LEN);
	if (client_open(&c, port, 0, 0) || client_alloc(&c, 1, &d) != RMAI_OK)
		_exit(2);
	fill(c.buf, BUF_SIZE, how);
	if (client_rdma(&c, 1, &d, 0, BUF_SIZE) != IBV_WC_SUCCESS ||
	    write(ready, "", 1) != 1)
		_exit(3);
	switch (how) {
	case 0:		/* exits with everything open */
		_exit(0);
	case 1:		/* killed with a request on the wire */
		client_prepare(&c, RMAI_OP_LIST);
		rdma_post_send(c.id, NULL, &c.req, RMAI_MSG_SIZE, c.msg_mr, 0);
		raise(SIGKILL);
		break;
	default:	/* killed amid RDMA WRITEs */
		for (i = 0; i < 4; i++)
			rdma_post_write(c.id, NULL, c.buf, BUF_SIZE, c.buf_mr, 0,
					le64toh(d.addr), le32toh(d.rkey));
		raise(SIGKILL);
		break;
	}
	_exit(4);
}

/*
 * Clients that exit with their queues open, or are killed mid-request or
 * amid RDMA WRITEs, lose their queues at once and their slabs after the
 * grace period; a client beside them goes on undisturbed. (It waits out the
 * grace, and under valgrind on a busy TCG guest it took more than
 * the harness's default 30 s.)
 */
TEST_F_TIMEOUT(memnode, clients_die, 120)
{
	int ready[2], stop, how, status;
	char buf[4096], c;
	pid_t a, pid;

	a = start_transfer(self->port, 0xaa, &stop);
	ASSERT_LT(0, a);
	for (how = 0; how < 3; how++) {
		ASSERT_EQ(0, pipe(ready));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			doomed_client(self->port, how, ready[1]);
		close(ready[1]);
		ASSERT_EQ(1, read(ready[0], &c, 1)) TH_LOG("client %d failed", how);
		close(ready[0]);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status) || WEXITSTATUS(status) == 0);
	}
	for (how = 0; how < 3; how++)
		ASSERT_TRUE(wait_lease(self->sock, 0x10 + how, IN_GRACE, 10));
	for (how = 0; how < 3; how++)
		ASSERT_TRUE(wait_lease(self->sock, 0x10 + how, NULL, GRACE + 10));
	ASSERT_EQ(0, admin_status(self->sock, buf, sizeof(buf)));
	ASSERT_EQ((NR_SLABS - 1) * SLAB, json_num(buf, "free"));
	ASSERT_EQ(0, stop_transfer(a, stop));
}

/* SIGHUP reopens the logs and nothing else; SIGINT drains and exits 0. */
TEST_F(memnode, signals)
{
	struct rmai_slab_desc d[2];
	char buf[4096];

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 2, d));
	ASSERT_EQ(0, kill(self->pid, SIGHUP));
	client_prepare(&self->a, RMAI_OP_KEEPALIVE);
	ASSERT_EQ(RMAI_OK, client_send_raw(&self->a, RMAI_MSG_SIZE));
	ASSERT_EQ(0, admin_status(self->sock, buf, sizeof(buf)));
	ASSERT_EQ(2 * SLAB, json_num(buf, "free"));
	ASSERT_EQ(0, waitpid(self->pid, NULL, WNOHANG));
	/* With a live client and a lease: every queue and slab goes, exit 0. */
	ASSERT_EQ(0, stop_daemon(self->pid, SIGINT));
	self->pid = 0;
	ASSERT_NE(0, access(self->sock, F_OK));	/* removed on the way out */
}

/* A status client that connects and says nothing does not stall the daemon. */
TEST_F(memnode, admin_socket_silent_peer)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct rmai_slab_desc d;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", self->sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&sun, sizeof(sun)));
	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 1, &d));
	close(fd);
}

/* `status` and `status --json`: capacity, free, each lease, errors. */
TEST_F(memnode, status_reports_leases)
{
	const char *const text[] = { "status", "--admin-socket", self->sock, NULL };
	const char *const json[] = { "status", "--json", "--admin-socket", self->sock, NULL };
	struct rmai_slab_desc d[2];
	char buf[4096];

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 2, d));
	ASSERT_EQ(0, client_open(&self->b, self->port, 0, 0));
	ASSERT_EQ(0, run_daemon(buf, sizeof(buf), NULL, json));
	TH_LOG("%s", buf);
	ASSERT_EQ(NR_SLABS * SLAB, json_num(buf, "capacity"));
	ASSERT_EQ((NR_SLABS - 2) * SLAB, json_num(buf, "free"));
	ASSERT_EQ(SLAB, json_num(buf, "slab_size"));
	ASSERT_EQ(0, json_num(buf, "protocol_errors"));
	ASSERT_TRUE(strstr(buf, "\"client\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"slabs\": 2, \"queues\": 1, ") != NULL);
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, CONNECTED, 1));
	ASSERT_TRUE(wait_lease(self->sock, 0xbb, CONNECTED, 1));
	ASSERT_EQ(0, run_daemon(buf, sizeof(buf), NULL, text));
	TH_LOG("%s", buf);
	ASSERT_TRUE(strstr(buf, "capacity 16 MiB, free 8 MiB, slab 4 MiB") != NULL);
	ASSERT_TRUE(strstr(buf, "lease aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: 2 slabs, 1 queues, age") != NULL);
	client_close(&self->a);
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, IN_GRACE, 5));
	ASSERT_EQ(0, run_daemon(buf, sizeof(buf), NULL, text));
	ASSERT_TRUE(strstr(buf, "2 slabs, 0 queues, age") != NULL && strstr(buf, "in grace") != NULL);
}

/* Data queues join with the token, share the keys, and need the token. */
TEST_F(memnode, data_queue_joins_session)
{
	struct rmai_slab_desc d;
	struct client *q = &self->b;
	uint64_t token;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 1, &d));
	token = le64toh(self->a.cm.token);
	memcpy(q->client_id, self->a.client_id, RMAI_CLIENT_ID_LEN);
	ASSERT_EQ(RMAI_E_TOKEN, client_open(q, self->port, 1, token + 1));
	client_close(q);
	ASSERT_EQ(0, client_open(q, self->port, 1, token));
	fill(q->buf, BUF_SIZE, 13);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(q, 1, &d, 0, BUF_SIZE));
	memset(self->a.buf, 0, BUF_SIZE);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 0, &d, 0, BUF_SIZE));
	ASSERT_TRUE(check(self->a.buf, BUF_SIZE, 13));
	/*
	 * A second control queue with the token takes the session over, as a
	 * client does that lost its queues without the memnode noticing: the
	 * old queue is closed, the slabs and their bytes stay.
	 */
	client_close(q);
	ASSERT_EQ(0, client_open(q, self->port, 0, token));
	ASSERT_EQ(1, le32toh(q->cm.nr_held));
	memset(q->buf, 0, BUF_SIZE);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(q, 0, &d, 0, BUF_SIZE));
	ASSERT_TRUE(check(q->buf, BUF_SIZE, 13));
	client_close(&self->a);		/* what remains of the old queue */
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, "\"queues\": 1,", 10));
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, CONNECTED, 1));
}

/* `rmai-memnoded disconnect ID` in the shell, from the selftests folder. */
static int admin_disconnect(const char *sock, const char *id)
{
	char cmd[512];
	int st;

	snprintf(cmd, sizeof(cmd), "%s disconnect %s --admin-socket %s 2>/dev/null",
		 daemon_path(), id, sock);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * The admin disconnects a client: its queues close, its lease waits in
 * grace, and it resumes with its token, data intact. Unknown and malformed
 * ids are errors.
 */
TEST_F(memnode, admin_disconnect)
{
	char id[2 * RMAI_CLIENT_ID_LEN + 1];
	struct rmai_slab_desc d;
	uint64_t token;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 1, &d));
	fill(self->a.buf, BUF_SIZE, 21);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 1, &d, 0, BUF_SIZE));
	token = le64toh(self->a.cm.token);

	memset(id, 'b', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	ASSERT_EQ(1, admin_disconnect(self->sock, id));	/* nobody */
	ASSERT_EQ(2, admin_disconnect(self->sock, "aaaa"));	/* not an id */
	memset(id, 'a', sizeof(id) - 1);
	ASSERT_EQ(0, admin_disconnect(self->sock, id));
	ASSERT_TRUE(wait_lease_in_grace(self->sock, 0xaa));

	client_close(&self->a);
	ASSERT_EQ(0, client_open(&self->a, self->port, 0, token));
	ASSERT_EQ(1, le32toh(self->a.cm.nr_held));
	memset(self->a.buf, 0, BUF_SIZE);
	ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 0, &d, 0, BUF_SIZE));
	ASSERT_TRUE(check(self->a.buf, BUF_SIZE, 21));
}

/* One request on the admin socket, as anything could send it; its answer. */
static int admin_raw(const char *sock, const char *req, char *buf, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	ssize_t n, got = 0;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	buf[got] = '\0';
	close(fd);
	return 0;
}

/*
 * The admin socket takes what the CLI would never send: a disconnect with
 * an empty id is an error, and the daemon (and every lease) lives on.
 */
TEST_F(memnode, admin_disconnect_empty_id)
{
	struct rmai_slab_desc d;
	char buf[4096];

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 1, &d));
	ASSERT_EQ(0, admin_raw(self->sock, "disconnect \n", buf, sizeof(buf)));
	ASSERT_TRUE(!strncmp(buf, "error:", 6)) TH_LOG("answer: %s", buf);
	ASSERT_EQ(0, admin_raw(self->sock, "disconnect ", buf, sizeof(buf)));
	ASSERT_TRUE(!strncmp(buf, "error:", 6)) TH_LOG("answer: %s", buf);
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, CONNECTED, 1));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 1, &d));
}

/* A second daemon on the same admin socket leaves the first one's alone. */
TEST_F(memnode, second_daemon_keeps_admin_socket)
{
	char port[64], out[4096];
	const char *const opts[] = {
		"--listen", port, "--size", "8M", "--slab", "4M", "--hugepages", "off",
		"--admin-socket", self->sock, "--foreground", NULL
	};

	snprintf(port, sizeof(port), "%s:%d", MN_ADDR, self->port + 400);
	ASSERT_EQ(1, run_daemon(out, sizeof(out), NULL, opts));
	ASSERT_TRUE(strstr(out, "another rmai-memnoded answers on") != NULL) TH_LOG("%s", out);
	ASSERT_EQ(0, admin_status(self->sock, out, sizeof(out)));
	ASSERT_EQ(16 << 20, json_num(out, "capacity"));
}

/*
 * Queue numbers stop at 64, and a session has one live queue per number:
 * a second one with the same number replaces the first (a client opens a
 * queue again only once it lost it), so a session never has more than 65.
 */
TEST_F(memnode, queue_limits)
{
	struct client *q = &self->b, r = { 0 };
	uint64_t token;

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	token = le64toh(self->a.cm.token);
	memcpy(q->client_id, self->a.client_id, RMAI_CLIENT_ID_LEN);
	ASSERT_EQ(RMAI_E_INVAL, client_open(q, self->port, 65, token));
	client_close(q);
	ASSERT_EQ(0, client_open(q, self->port, 64, token));
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, "\"queues\": 2,", 10)) {
		char buf[4096];

		admin_status(self->sock, buf, sizeof(buf));
		TH_LOG("status: %s", buf);
	}
	memcpy(r.client_id, self->a.client_id, RMAI_CLIENT_ID_LEN);
	ASSERT_EQ(0, client_open(&r, self->port, 64, token));
	ASSERT_TRUE(wait_lease(self->sock, 0xaa, "\"queues\": 2,", 10));
	client_close(&r);
}

/*
 * A large lease that expires is zeroed off the event loop: while it is
 * being zeroed, the daemon answers status and control requests.
 */
TEST_F_TIMEOUT(memnode, expiry_zeroes_off_the_loop, 300)
{
	static const char *const opts[] = {
		"--size", "1G", "--slab", "64M", "--lease-grace", "1",
		"--hugepages", "off", NULL
	};
	struct rmai_slab_desc d[RMAI_MSG_MAX_SLABS];
	char sock[80], buf[4096];
	int port = self->port + 400, i, seen = 0;
	pid_t pid;

	snprintf(sock, sizeof(sock), "/tmp/memnode-%d.sock", port);
	pid = start_daemon(port, sock, opts);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, client_open(&self->a, port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 8, d));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, 8, d));
	ASSERT_EQ(0, client_open(&self->b, port, 0, 0));
	client_close(&self->a);		/* 1 GiB to zero once its grace ends */
	for (i = 0; i < 3000 && !seen; i++) {
		ASSERT_EQ(0, admin_status(sock, buf, sizeof(buf)));
		ASSERT_LE(0, json_num(buf, "zeroing")) TH_LOG("no zeroing field: %s", buf);
		if (json_num(buf, "zeroing") > 0) {
			/* The loop answers a control request meanwhile. */
			client_prepare(&self->b, RMAI_OP_KEEPALIVE);
			ASSERT_EQ(RMAI_OK, client_send_raw(&self->b, RMAI_MSG_SIZE));
			seen = 1;
		}
		usleep(10000);
	}
	ASSERT_TRUE(seen) TH_LOG("never saw the lease being zeroed");
	client_close(&self->b);
	ASSERT_EQ(0, stop_daemon(pid, SIGTERM));
}

/* utime + stime of @pid, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');	/* comm may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return ut + st;
}

/* Nanoseconds @pid has run, from /proc/PID/schedstat; -1 without it. */
static long long cpu_ns(pid_t pid)
{
	char path[64];
	long long ns = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lld", &ns) != 1)
			ns = -1;
		fclose(f);
	}
	return ns;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#define LEASE_SAMPLES	9

/*
 * The memnode stays off the data path: moving data by RDMA costs its CPU
 * (nearly) nothing. Logs the connect-to-lease time (rdma_cm connect through
 * the first ALLOC reply; median of LEASE_SAMPLES) and the daemon's CPU time
 * while RMAI_MEMNODE_MOVE_MIB (default 128) MiB are written and read back,
 * then for RMAI_MEMNODE_IDLE_S (default 0) seconds of idleness to compare.
 */
TEST_F_TIMEOUT(memnode, cpu_idle_on_data_path, 900)
{
	const char *env = getenv("RMAI_MEMNODE_MOVE_MIB");
	const char *env_idle = getenv("RMAI_MEMNODE_IDLE_S");
	unsigned long i, mib = env ? strtoul(env, NULL, 10) : 128;
	struct rmai_slab_desc d[NR_SLABS];
	double lease_ms[LEASE_SAMPLES], secs;
	long long ns_before, ns_after;
	long before, after;
	struct timespec t0;
	int idle;

	for (i = 0; i < LEASE_SAMPLES; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ASSERT_EQ(0, client_open(&self->b, self->port, 0, 0));
		ASSERT_EQ(RMAI_OK, client_alloc(&self->b, 1, d));
		lease_ms[i] = ms_since(&t0);
		client_prepare(&self->b, RMAI_OP_RELEASE);
		self->b.req.release.count = htole32(1);
		self->b.req.release.index[0] = d[0].index;
		ASSERT_EQ(RMAI_OK, client_send_raw(&self->b, RMAI_MSG_SIZE));
		client_close(&self->b);
	}
	qsort(lease_ms, LEASE_SAMPLES, sizeof(lease_ms[0]), cmp_double);
	TH_LOG("connect to lease of 1 slab: median %.1f ms, min %.1f, max %.1f (%d samples)",
	       lease_ms[LEASE_SAMPLES / 2], lease_ms[0], lease_ms[LEASE_SAMPLES - 1],
	       LEASE_SAMPLES);

	ASSERT_EQ(0, client_open(&self->a, self->port, 0, 0));
	ASSERT_EQ(RMAI_OK, client_alloc(&self->a, NR_SLABS, d));
	fill(self->a.buf, BUF_SIZE, 7);
	before = cpu_ticks(self->pid);
	ns_before = cpu_ns(self->pid);
	ASSERT_LE(0, before);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < mib; i++) {
		const struct rmai_slab_desc *s = &d[i % NR_SLABS];
		uint64_t off = (i / NR_SLABS % (SLAB / BUF_SIZE)) * BUF_SIZE;

		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 1, s, off, BUF_SIZE));
		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&self->a, 0, s, off, BUF_SIZE));
	}
	secs = ms_since(&t0) / 1e3;
	after = cpu_ticks(self->pid);
	ns_after = cpu_ns(self->pid);
	ASSERT_TRUE(check(self->a.buf, BUF_SIZE, 7));
	TH_LOG("%lu MiB written and %lu MiB read back in %.2f s (%.0f MiB/s each way)",
	       mib, mib, secs, mib / secs);
	TH_LOG("memnode CPU meanwhile: %ld ticks at %ld Hz (utime+stime), %.3f ms (schedstat)",
	       after - before, sysconf(_SC_CLK_TCK),
	       ns_before < 0 ? -1.0 : (ns_after - ns_before) / 1e6);
	/*
	 * Its housekeeping (a 1 s timer tick, a probe every 5 s) costs the same
	 * per second however much data moves, while serving the data would
	 * cost per byte: allow 1% of the elapsed time, plus 5 ticks.
	 */
	ASSERT_GE(5 + (long)(secs * sysconf(_SC_CLK_TCK) / 100), after - before);

	/* For the notes: the same daemon's cost per second when idle. */
	idle = env_idle ? atoi(env_idle) : 0;
	if (idle > 0) {
		before = cpu_ticks(self->pid);
		ns_before = cpu_ns(self->pid);
		sleep(idle);
		after = cpu_ticks(self->pid);
		ns_after = cpu_ns(self->pid);
		TH_LOG("memnode CPU idle for %d s: %ld ticks, %.3f ms (schedstat)", idle,
		       after - before, ns_before < 0 ? -1.0 : (ns_after - ns_before) / 1e6);
	}
}

/* --- the command line, daemon mode, hugetlb and THP ------------------------ */

FIXTURE(cli) {
	int port;			/* for the daemons of this test */
	char sock[64];			/* their admin socket */
	pid_t pid;			/* a daemon still to stop, or 0 */
};

FIXTURE_SETUP(cli)
{
	if (!have_rdma_device())
		SKIP(return, "no RDMA device (run in the test VM with --net)");
	ASSERT_EQ(0, access(daemon_path(), X_OK)) TH_LOG("%s not built", daemon_path());
	self->port = pick_port() + 400;
	snprintf(self->sock, sizeof(self->sock), "/tmp/memnode-%d.sock", self->port);
}

FIXTURE_TEARDOWN(cli)
{
	if (self->pid > 0)
		stop_daemon(self->pid, SIGKILL);
}

/* A private mount namespace where /dev/infiniband is empty: no device. */
static void hide_rdma_devices(void)
{
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("none", "/dev/infiniband", "tmpfs", 0, NULL))
		_exit(126);
}

/* 1 MiB of RLIMIT_MEMLOCK, and no CAP_IPC_LOCK to ignore it. */
static void limit_memlock(void)
{
	struct rlimit r = { 1 << 20, 1 << 20 };

	if (setrlimit(RLIMIT_MEMLOCK, &r) ||
	    prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0))
		_exit(126);
}

/* A "Field:   N kB" line of a /proc/PID file; -1 when absent. */
static long proc_kb(pid_t pid, const char *file, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			kb = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* Run the daemon with the given options; expect @code and @says in its output. */
#define EXPECT_RUN(code, says, pre, ...) do {					\
	const char *const opts_[] = { __VA_ARGS__, NULL };			\
	char out_[4096];							\
										\
	EXPECT_EQ(code, run_daemon(out_, sizeof(out_), pre, opts_))		\
		TH_LOG("%s", out_);						\
	EXPECT_TRUE(strstr(out_, says) != NULL) TH_LOG("said: %s", out_);	\
} while (0)

/* Every refusal: one clear line, status 2 for usage and 1 for the rest. */
TEST_F_TIMEOUT(cli, errors, 120)
{
	static const char *const opts[] = {
		"--size", "16M", "--slab", "4M", "--hugepages", "off", NULL
	};
	char listen[64], elsewhere[64], size[32];
	long total_kb = proc_kb(getpid(), "../meminfo", "MemTotal");
	const char *sock = self->sock;

	snprintf(listen, sizeof(listen), "%s:%d", MN_ADDR, self->port);
	snprintf(elsewhere, sizeof(elsewhere), "198.51.100.7:%d", self->port);
	/* All of this node's memory, in whole slabs: more than is available. */
	ASSERT_LT(0, total_kb);
	snprintf(size, sizeof(size), "%ldM", (total_kb / 1024 + 3) / 4 * 4);

	EXPECT_RUN(2, "bad --size", NULL, "--listen", listen, "--size", "12Q");
	EXPECT_RUN(2, "multiple of the slab size", NULL, "--listen", listen,
		   "--size", "10M", "--slab", "4M");
	EXPECT_RUN(2, "power of two", NULL, "--listen", listen, "--size", "12M",
		   "--slab", "3M");
	EXPECT_RUN(2, "bad --listen", NULL, "--listen", "192.0.2.300", "--size", "16M");
	EXPECT_RUN(2, "bad --listen", NULL, "--listen", "192.0.2.1:http", "--size", "16M");
	EXPECT_RUN(2, "bad --lease-grace", NULL, "--listen", listen, "--size", "16M",
		   "--lease-grace", "-1");
	EXPECT_RUN(1, "no RDMA device has that address", NULL, "--listen", elsewhere,
		   "--size", "16M", "--slab", "4M", "--foreground", "--admin-socket", sock);
	EXPECT_RUN(1, "no RDMA device found", hide_rdma_devices, "--listen", listen,
		   "--size", "16M", "--slab", "4M", "--foreground", "--admin-socket", sock);
	EXPECT_RUN(1, "cannot lock", limit_memlock, "--listen", listen, "--size", "16M",
		   "--slab", "4M", "--hugepages", "off", "--foreground",
		   "--admin-socket", sock);
	EXPECT_RUN(1, "of memory available", NULL, "--listen", listen, "--size", size,
		   "--slab", "4M", "--foreground", "--admin-socket", sock);
	/* Not detached yet when it fails: the same message, the same status. */
	EXPECT_RUN(1, "no RDMA device has that address", NULL, "--listen", elsewhere,
		   "--size", "16M", "--slab", "4M", "--admin-socket", sock);

	self->pid = start_daemon(self->port, sock, opts);
	ASSERT_LT(0, self->pid);
	EXPECT_RUN(1, "port in use", NULL, "--listen", listen, "--size", "16M",
		   "--slab", "4M", "--foreground", "--admin-socket", "/tmp/memnode-other.sock");
	ASSERT_EQ(0, stop_daemon(self->pid, SIGTERM));
	self->pid = 0;
}

/* The pid of the daemon serving admin socket @sock. */
static pid_t admin_peer(const char *sock)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		cred.pid = -1;
	close(fd);
	return cred.pid;
}

/*
 * Without --foreground the daemon detaches only once it is up, and its pool
 * is still locked (memory locks do not survive a fork).
 */
TEST_F(cli, daemon_mode_stays_locked)
{
	char listen[64], out[4096];
	const char *const opts[] = {
		"--listen", listen, "--size", "16M", "--slab", "4M",
		"--hugepages", "off", "--admin-socket", self->sock, NULL
	};

	snprintf(listen, sizeof(listen), "%s:%d", MN_ADDR, self->port);
	/* The daemon, orphaned by the command, becomes our child. */
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	ASSERT_EQ(0, run_daemon(out, sizeof(out), NULL, opts)) TH_LOG("%s", out);
	self->pid = admin_peer(self->sock);
	ASSERT_LT(0, self->pid);
	ASSERT_LE(16 << 10, proc_kb(self->pid, "status", "VmLck"));
	ASSERT_EQ(0, stop_daemon(self->pid, SIGTERM));
	self->pid = 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -1;
}

static long read_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

#define NR_HUGEPAGES	"/proc/sys/vm/nr_hugepages"
#define THP_ENABLED	"/sys/kernel/mm/transparent_hugepage/enabled"

/*
 * --hugepages on takes hugetlb pages or fails; auto falls back to THP, asked
 * for before the pages are touched, so that it works with THP in "madvise"
 * mode too. Either way clients move data as usual.
 */
TEST_F_TIMEOUT(cli, hugepages_and_thp, 120)
{
	static const char *const on[] = {
		"--size", "16M", "--slab", "4M", "--hugepages", "on", NULL
	};
	static const char *const automatic[] = {
		"--size", "16M", "--slab", "4M", "--hugepages", "auto", NULL
	};
	char listen[64], buf[4096], thp[128] = "";
	struct client c = { .client_id = { 0x42 } };
	struct rmai_slab_desc d;
	FILE *f;

	if (access(NR_HUGEPAGES, W_OK))
		SKIP(return, "cannot set %s", NR_HUGEPAGES);
	snprintf(listen, sizeof(listen), "%s:%d", MN_ADDR, self->port);

	ASSERT_EQ(0, write_file(NR_HUGEPAGES, "0"));
	EXPECT_RUN(1, "hugetlb pages", NULL, "--listen", listen, "--size", "16M",
		   "--slab", "4M", "--hugepages", "on", "--foreground",
		   "--admin-socket", self->sock);

	ASSERT_EQ(0, write_file(NR_HUGEPAGES, "8"));
	if (read_long(NR_HUGEPAGES) == 8) {
		self->pid = start_daemon(self->port, self->sock, on);
		ASSERT_LT(0, self->pid);
		ASSERT_EQ(0, admin_status(self->sock, buf, sizeof(buf)));
		ASSERT_TRUE(strstr(buf, "\"backing\": \"hugetlb\"") != NULL) TH_LOG("%s", buf);
		ASSERT_EQ(0, client_open(&c, self->port, 0, 0));
		ASSERT_EQ(RMAI_OK, client_alloc(&c, 1, &d));
		fill(c.buf, BUF_SIZE, 42);
		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&c, 1, &d, SLAB - BUF_SIZE, BUF_SIZE));
		memset(c.buf, 0, BUF_SIZE);
		ASSERT_EQ(IBV_WC_SUCCESS, client_rdma(&c, 0, &d, SLAB - BUF_SIZE, BUF_SIZE));
		ASSERT_TRUE(check(c.buf, BUF_SIZE, 42));
		client_close(&c);
		ASSERT_EQ(0, stop_daemon(self->pid, SIGTERM));
		self->pid = 0;
	} else {
		TH_LOG("no 8 hugetlb pages to be had: hugetlb backing not tried");
	}
	ASSERT_EQ(0, write_file(NR_HUGEPAGES, "0"));

	f = fopen(THP_ENABLED, "r");
	if (!f)
		SKIP(return, "no THP");
	if (!fgets(thp, sizeof(thp), f))
		thp[0] = '\0';
	fclose(f);
	ASSERT_EQ(0, write_file(THP_ENABLED, "madvise"));
	self->pid = start_daemon(self->port, self->sock, automatic);
	EXPECT_LT(0, self->pid);
	if (self->pid > 0) {
		EXPECT_EQ(0, admin_status(self->sock, buf, sizeof(buf)));
		EXPECT_TRUE(strstr(buf, "\"backing\": \"thp\"") != NULL) TH_LOG("%s", buf);
		EXPECT_LE(2048, proc_kb(self->pid, "smaps_rollup", "AnonHugePages"));
		EXPECT_LE(16 << 10, proc_kb(self->pid, "status", "VmLck"));
		EXPECT_EQ(0, stop_daemon(self->pid, SIGTERM));
		self->pid = 0;
	}
	/* Back to what it was: the mode in brackets. */
	if (strchr(thp, '[')) {
		*strchr(thp, ']') = '\0';
		write_file(THP_ENABLED, strchr(thp, '[') + 1);
	}
}

TEST_HARNESS_MAIN
