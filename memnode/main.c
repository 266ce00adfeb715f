// SPDX-License-Identifier: GPL-2.0
/*
 * rmai-memnoded: command line, logging, the event loop and the admin socket.
 *
 *   rmai-memnoded --listen ADDR[:PORT] --size SIZE [--slab SIZE]
 *                 [--hugepages auto|on|off] [--lease-grace SECONDS]
 *                 [--admin-socket PATH] [--foreground]
 *   rmai-memnoded status [--json] [--admin-socket PATH]
 *   rmai-memnoded disconnect CLIENT [--admin-socket PATH]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "memnode.h"

static bool log_to_stderr = true;

void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (log_to_stderr) {
		fprintf(stderr, "rmai-memnoded: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(prio, fmt, ap);
	}
	va_end(ap);
}

static void log_open(void)
{
	openlog("rmai-memnoded", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* SIGHUP: reconnect to syslog (restarted, rotated); stderr is the caller's. */
static void log_reopen(void)
{
	if (log_to_stderr) {
		logmsg(LOG_INFO, "SIGHUP: logging to stderr, nothing to reopen");
		return;
	}
	closelog();
	log_open();
	logmsg(LOG_INFO, "SIGHUP: logs reopened");
}

int loop_add(struct memnode *mn, int fd, void *ptr)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ptr };

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		return -1;
	return epoll_ctl(mn->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

void loop_del(struct memnode *mn, int fd)
{
	epoll_ctl(mn->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* "64M", "4G", "1048576": bytes; 0 when malformed or zero. */
static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);
	int shift = 0;

	if (end == s || *s == '-')
		return 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || v > (UINT64_MAX >> shift))
		return 0;
	return v << shift;
}

/* --- admin socket ---------------------------------------------------------- */

static void write_status(struct memnode *mn, FILE *f, bool json)
{
	struct timespec now;
	struct session *s;
	time_t t = time(NULL);
	const char *sep = "";
	int i;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (json)
		fprintf(f, "{\"capacity\": %llu, \"free\": %llu, \"slab_size\": %llu, "
			"\"backing\": \"%s\", \"protocol_errors\": %llu, \"zeroing\": %llu, "
			"\"leases\": [",
			(unsigned long long)mn->pool.size,
			(unsigned long long)mn->pool.nr_free * mn->pool.slab_size,
			(unsigned long long)mn->pool.slab_size, mn->pool.backing,
			(unsigned long long)mn->proto_errors,
			(unsigned long long)__atomic_load_n(&mn->pool.nr_zeroing, __ATOMIC_RELAXED) * mn->pool.slab_size);
	else
		fprintf(f, "capacity %llu MiB, free %llu MiB, slab %llu MiB (%s), protocol errors %llu, zeroing %llu MiB\n",
			(unsigned long long)mn->pool.size >> 20,
			(unsigned long long)(mn->pool.nr_free * mn->pool.slab_size) >> 20,
			(unsigned long long)mn->pool.slab_size >> 20, mn->pool.backing,
			(unsigned long long)mn->proto_errors,
			(unsigned long long)(__atomic_load_n(&mn->pool.nr_zeroing, __ATOMIC_RELAXED) * mn->pool.slab_size) >> 20);
	for (s = mn->sessions; s; s = s->next) {
		char id[2 * RMAI_CLIENT_ID_LEN + 1];
		long left = s->grace_end.tv_sec - now.tv_sec;
		unsigned int queues = 0;
		struct conn *c;

		for (c = s->conns; c; c = c->next)
			queues += !c->closed;	/* closed ones wait for their CM event */
		for (i = 0; i < RMAI_CLIENT_ID_LEN; i++)
			sprintf(id + 2 * i, "%02x", s->client_id[i]);
		if (json)
			fprintf(f, "%s{\"client\": \"%s\", \"slabs\": %u, \"queues\": %u, "
				"\"age\": %ld, \"state\": \"%s\", \"grace_left\": %ld}", sep, id,
				s->nr_held, queues, (long)(t - s->created),
				s->state == SESSION_CONNECTED ? "connected" : "grace",
				s->state == SESSION_GRACE ? left : 0);
		else if (s->state == SESSION_CONNECTED)
			fprintf(f, "lease %s: %u slabs, %u queues, age %lds, connected\n", id,
				s->nr_held, queues, (long)(t - s->created));
		else
			fprintf(f, "lease %s: %u slabs, %u queues, age %lds, in grace (%lds left)\n",
				id, s->nr_held, queues, (long)(t - s->created), left);
		sep = ", ";
	}
	if (json)
		fprintf(f, "]}\n");
}

/* One request per connection: "status", "status json" or "disconnect ID". */
static void admin_serve(struct memnode *mn)
{
	struct timeval tv = { .tv_sec = 1 };
	char req[64] = "";
	ssize_t n;
	FILE *f;
	int fd;

	fd = accept4(mn->admin_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* This runs in the event loop: a silent or stuck peer must not hold it. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		close(fd);
		return;
	}
	n = read(fd, req, sizeof(req) - 1);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return;
	}
	if (n > 0 && !strncmp(req, "status", 6))
		write_status(mn, f, strstr(req, "json") != NULL);
	else if (n > 0 && !strncmp(req, "disconnect ", 11))
		/* strtok() gives NULL for an empty id: session_disconnect() refuses it. */
		fprintf(f, "%s\n", session_disconnect(mn, strtok(req + 11, "\n")) ?
			"error: no connected client with that id" : "ok");
	else
		fprintf(f, "error: unknown request\n");
	fclose(f);
}

static int admin_listen(struct memnode *mn)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(mn->admin_path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, mn->admin_path);
	mn->admin_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (mn->admin_fd < 0)
		return -1;
	/* A socket someone answers on is another daemon's: never take it over. */
	if (!connect(mn->admin_fd, (struct sockaddr *)&sun, sizeof(sun))) {
		errno = EADDRINUSE;
		return -1;
	}
	close(mn->admin_fd);
	mn->admin_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (mn->admin_fd < 0)
		return -1;
	unlink(mn->admin_path);	/* a stale socket of a daemon gone */
	if (bind(mn->admin_fd, (struct sockaddr *)&sun, sizeof(sun)))
		return -1;
	mn->admin_bound = true;
	if (listen(mn->admin_fd, 8))
		return -1;
	return loop_add(mn, mn->admin_fd, &mn->admin_fd);
}

/*
 * Send @request to the daemon's admin socket and print its answer. Return:
 * 0, or 1 when the daemon cannot be reached or answers "error: ...".
 */
static int admin_client(const char *path, const char *request)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[4096];
	bool error = false, first = true;
	ssize_t n;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		fprintf(stderr, "rmai-memnoded: cannot reach the daemon at %s: %s\n",
			path, strerror(errno));
		return 1;
	}
	if (dprintf(fd, "%s\n", request) < 0)
		return 1;
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (first && !strncmp(buf, "error:", n < 6 ? n : 6))
			error = true;
		first = false;
		fwrite(buf, 1, n, error ? stderr : stdout);
	}
	close(fd);
	return error;
}

/* --- the loop -------------------------------------------------------------- */

static void sd_notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (!path || strlen(path) >= sizeof(sun.sun_path))
		return;
	strcpy(sun.sun_path, path);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
}

static int setup_loop(struct memnode *mn)
{
	struct itimerspec tick = { { 1, 0 }, { 1, 0 } };
	sigset_t mask;

	mn->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (mn->epoll_fd < 0)
		return -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	mn->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	mn->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (mn->signal_fd < 0 || mn->timer_fd < 0 ||
	    timerfd_settime(mn->timer_fd, 0, &tick, NULL) ||
	    loop_add(mn, mn->signal_fd, &mn->signal_fd) ||
	    loop_add(mn, mn->timer_fd, &mn->timer_fd) ||
	    loop_add(mn, mn->cm_channel->fd, mn->cm_channel))
		return -1;
	return 0;
}

static void run(struct memnode *mn)
{
	/*
	 * One event per wait: a handler may free a conn that another event of
	 * the same batch points to (a DISCONNECTED beside its CQ's event).
	 */
	struct epoll_event evs[1];
	int i, n;

	while (!mn->stop) {
		n = epoll_wait(mn->epoll_fd, evs, 1, -1);
		if (n < 0 && errno != EINTR) {
			logmsg(LOG_ERR, "epoll_wait: %s", strerror(errno));
			return;
		}
		for (i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &mn->signal_fd) {
				struct signalfd_siginfo si;

				if (read(mn->signal_fd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					log_reopen();
					continue;
				}
				logmsg(LOG_INFO, "signal %u: shutting down", si.ssi_signo);
				mn->stop = true;
			} else if (p == &mn->timer_fd) {
				uint64_t ticks;

				if (read(mn->timer_fd, &ticks, sizeof(ticks)) > 0)
					sessions_tick(mn);
			} else if (p == &mn->admin_fd) {
				admin_serve(mn);
			} else if (p == mn->cm_channel) {
				cm_handle_events(mn);
			} else {
				conn_handle_cq(p);
			}
		}
	}
}

/*
 * detach() - become a daemon before anything is set up (memory locks and
 * RDMA resources do not survive a fork), but keep the caller waiting: the
 * parent exits 0 once the child writes a byte on *@ready_fd, or with the
 * child's own exit status when its setup failed (and said why on stderr).
 * Returns in the child only.
 */
static int detach(int *ready_fd)
{
	int p[2], status;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		_exit(1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

/* The daemon is up: leave the terminal to the parent, which now exits. */
static void detached(int ready_fd)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	log_to_stderr = false;
	log_open();
	if (chdir("/"))
		logmsg(LOG_WARNING, "chdir /: %s", strerror(errno));
	if (write(ready_fd, "", 1) != 1)
		logmsg(LOG_WARNING, "cannot tell the parent that the daemon is up");
	close(ready_fd);
}

/* --- command line ---------------------------------------------------------- */

/*
 * "192.0.2.1", "192.0.2.1:7470", "fe80::1", "[fe80::1]:7470": a numeric
 * address and a port into @addr and @port. Returns 0, or -1 when malformed.
 */
static int parse_listen(const char *arg, char *addr, size_t addrlen,
			char *port, size_t portlen)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST }, *res;
	const char *p = NULL, *end;
	unsigned long n;
	char *e;
	size_t len;

	if (arg[0] == '[') {
		end = strchr(arg, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -1;
		arg++;
		len = end - arg;
		p = end[1] ? end + 2 : NULL;
	} else {
		end = strchr(arg, ':');
		if (end && !strchr(end + 1, ':'))	/* one colon: a port */
			p = end + 1;
		else
			end = NULL;			/* none, or IPv6 */
		len = end ? (size_t)(end - arg) : strlen(arg);
	}
	if (!len || len >= addrlen)
		return -1;
	memcpy(addr, arg, len);
	addr[len] = '\0';
	if (p) {
		n = strtoul(p, &e, 10);
		if (e == p || *e || n > 65535 || *p == '-' || *p == '+')
			return -1;
		snprintf(port, portlen, "%lu", n);
	}
	if (getaddrinfo(addr, NULL, &hints, &res))
		return -1;
	freeaddrinfo(res);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rmai-memnoded --listen ADDR[:PORT] --size SIZE [options]\n"
		"       rmai-memnoded status [--json] [--admin-socket PATH]\n"
		"       rmai-memnoded disconnect CLIENT [--admin-socket PATH]\n"
		"Donate SIZE bytes of locked memory to RMAI compute nodes over RDMA.\n"
		"  --listen ADDR[:PORT]     RDMA address to listen on, [IPv6]:PORT too\n"
		"                           (default port %d)\n"
		"  --size SIZE              memory to donate: K, M, G, T suffixes\n"
		"  --slab SIZE              lease unit, a power of two (default 64M)\n"
		"  --hugepages auto|on|off  hugetlb pages (auto: else THP)\n"
		"  --lease-grace SECONDS    how long a disconnected client's lease is kept (default 30)\n"
		"  --admin-socket PATH      admin socket (default %s)\n"
		"status prints the pool and its leases; disconnect closes a client's\n"
		"queues (its lease waits --lease-grace seconds for it to reconnect).\n"
		"  --foreground             log to stderr and do not detach\n"
		"  --help, --version\n", RMAI_DEFAULT_PORT, MEMNODE_ADMIN_SOCKET);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "size", required_argument, NULL, 's' },
		{ "slab", required_argument, NULL, 'b' },
		{ "hugepages", required_argument, NULL, 'H' },
		{ "lease-grace", required_argument, NULL, 'g' },
		{ "admin-socket", required_argument, NULL, 'a' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ }
	};
	struct memnode mn = { .lease_grace = 30, .admin_path = MEMNODE_ADMIN_SOCKET,
			      .admin_fd = -1 };
	enum hugepages_mode huge = HUGEPAGES_AUTO;
	uint64_t size = 0, slab = 64ull << 20;
	char addr[INET6_ADDRSTRLEN + 8] = "", port[16], err[256], *end;
	char cwd[PATH_MAX], admin_abs[PATH_MAX + 108];
	bool foreground = false, json = false;
	const char *command = NULL;
	char request[64];
	int c, ready_fd = -1, ret = 1;
	unsigned long grace;

	snprintf(port, sizeof(port), "%d", RMAI_DEFAULT_PORT);
	if (argc > 1 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "disconnect"))) {
		command = argv[1];
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (parse_listen(optarg, addr, sizeof(addr), port, sizeof(port))) {
				fprintf(stderr, "rmai-memnoded: bad --listen '%s': want a numeric IPv4 or IPv6 address, optionally with :PORT ([ADDR]:PORT for IPv6)\n",
					optarg);
				return 2;
			}
			break;
		case 's':
			size = parse_size(optarg);
			if (!size) {
				fprintf(stderr, "rmai-memnoded: bad --size '%s'\n", optarg);
				return 2;
			}
			break;
		case 'b':
			slab = parse_size(optarg);
			if (!slab) {
				fprintf(stderr, "rmai-memnoded: bad --slab '%s'\n", optarg);
				return 2;
			}
			break;
		case 'H':
			if (!strcmp(optarg, "auto"))
				huge = HUGEPAGES_AUTO;
			else if (!strcmp(optarg, "on"))
				huge = HUGEPAGES_ON;
			else if (!strcmp(optarg, "off"))
				huge = HUGEPAGES_OFF;
			else {
				fprintf(stderr, "rmai-memnoded: --hugepages takes auto, on or off\n");
				return 2;
			}
			break;
		case 'g':
			grace = strtoul(optarg, &end, 10);
			mn.lease_grace = grace;
			if (*end || end == optarg || *optarg == '-' || grace > INT_MAX) {
				fprintf(stderr, "rmai-memnoded: bad --lease-grace '%s'\n", optarg);
				return 2;
			}
			break;
		case 'a':
			mn.admin_path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("rmai-memnoded %s, protocol %d\n", MEMNODE_VERSION,
			       RMAI_PROTO_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (command && !strcmp(command, "disconnect")) {
		if (optind != argc - 1 || strlen(argv[optind]) != 2 * RMAI_CLIENT_ID_LEN ||
		    strspn(argv[optind], "0123456789abcdef") != 2 * RMAI_CLIENT_ID_LEN) {
			fprintf(stderr, "rmai-memnoded: disconnect wants a client id: 32 hex digits, as status shows\n");
			return 2;
		}
		snprintf(request, sizeof(request), "disconnect %s", argv[optind]);
		return admin_client(mn.admin_path, request);
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (command)
		return admin_client(mn.admin_path, json ? "status json" : "status");
	if (mn.admin_path[0] != '/') {	/* the daemon works from / */
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(admin_abs, sizeof(admin_abs), "%s/%s", cwd,
			     mn.admin_path) >= (int)sizeof(admin_abs)) {
			fprintf(stderr, "rmai-memnoded: --admin-socket path too long\n");
			return 2;
		}
		mn.admin_path = admin_abs;
	}
	if (!*addr || !size) {
		fprintf(stderr, "rmai-memnoded: --listen and --size are required\n");
		usage(stderr);
		return 2;
	}
	if (pool_check(size, slab, err, sizeof(err))) {
		fprintf(stderr, "rmai-memnoded: bad --size or --slab: %s\n", err);
		return 2;
	}
	if (!foreground && detach(&ready_fd)) {
		fprintf(stderr, "rmai-memnoded: cannot detach: %s\n", strerror(errno));
		return 1;
	}

	/* Cheap checks first: the pool may take seconds to lock. */
	if (cm_listen(&mn, addr, port, err, sizeof(err))) {
		fprintf(stderr, "rmai-memnoded: %s\n", err);
		return 1;
	}
	if (pool_init(&mn.pool, size, slab, huge, err, sizeof(err))) {
		fprintf(stderr, "rmai-memnoded: %s\n", err);
		goto out_loop;
	}
	/*
	 * The daemon's own memory too: on a node that also swaps (to rmai or
	 * anything else), a page of ours out on swap would wait for the very
	 * reconnect it is needed for.
	 */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		logmsg(LOG_WARNING, "cannot lock the daemon's own memory (%s): it may be swapped out",
		       strerror(errno));
	if (setup_loop(&mn)) {
		fprintf(stderr, "rmai-memnoded: event loop: %s\n", strerror(errno));
		goto out_loop;
	}
	if (admin_listen(&mn)) {
		if (errno == EADDRINUSE)
			fprintf(stderr, "rmai-memnoded: another rmai-memnoded answers on %s\n",
				mn.admin_path);
		else
			fprintf(stderr, "rmai-memnoded: admin socket %s: %s\n",
				mn.admin_path, strerror(errno));
		goto out_loop;
	}
	if (!foreground)
		detached(ready_fd);
	logmsg(LOG_INFO, "listening on %s:%s, %llu MiB in %u slabs of %llu MiB (%s, locked)",
	       addr, port, (unsigned long long)size >> 20, mn.pool.nr_slabs,
	       (unsigned long long)slab >> 20, mn.pool.backing);
	sd_notify_ready();
	run(&mn);
	ret = mn.failed ? 1 : 0;

out_loop:
	if (mn.admin_fd >= 0)
		close(mn.admin_fd);
	if (mn.admin_bound)
		unlink(mn.admin_path);
	cm_shutdown(&mn);	/* sessions and queues, then the listener */
	if (mn.timer_fd > 0)
		close(mn.timer_fd);
	if (mn.signal_fd > 0)
		close(mn.signal_fd);
	if (mn.epoll_fd > 0)
		close(mn.epoll_fd);
	pool_destroy(&mn.pool);
	return ret;
}
