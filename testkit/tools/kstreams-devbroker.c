/*
 * kstreams-devbroker: librdkafka's mock cluster as a stand-alone process, a
 * Kafka "broker" in a few milliseconds and a few MiB for development and
 * tests. Other processes (kcat, our apps, Java clients) reach it over TCP on
 * 127.0.0.1. What the mock does and does not do: testkit/tools/DEVBROKER.md.
 *
 * Uses only librdkafka's public API (rdkafka.h, rdkafka_mock.h).
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_TOPICS      64
#define MAX_PROXY_CONNS 128
#define PROXY_BUF_SIZE  (256 * 1024)

struct topic_spec {
        const char *name;
        int partitions;
        int replication_factor;
};

struct options {
        int brokers;
        int port; /* 0: no fixed bootstrap port */
        struct topic_spec topics[MAX_TOPICS];
        int topic_cnt;
        int quiet;
};

/* One direction of a proxied connection: bytes read from one socket and not
 * yet written to the other. */
struct pipe_buf {
        char *data;
        size_t len, off;
};

struct proxy_conn {
        int client_fd, broker_fd;
        struct pipe_buf to_broker, to_client;
        int client_eof, broker_eof;
};

static const char *progname = "kstreams-devbroker";

static void usage(FILE *out) {
        fprintf(out,
                "usage: %s [options]\n"
                "\n"
                "Runs librdkafka's mock Kafka cluster (librdkafka %s) until "
                "SIGINT or SIGTERM,\n"
                "listening on 127.0.0.1, and prints KS_BOOTSTRAP=<address> "
                "on stdout once ready.\n"
                "\n"
                "options:\n"
                "  --brokers N              mock brokers (default 1)\n"
                "  --topic NAME:PARTS[:RF]  create a topic (repeatable); RF "
                "defaults to min(3, brokers)\n"
                "  --port P                 also accept bootstrap connections "
                "on 127.0.0.1:P and\n"
                "                           print that as KS_BOOTSTRAP "
                "(a forwarding proxy to broker 1:\n"
                "                           librdkafka 2.0.2's mock binds "
                "kernel-chosen ports only)\n"
                "  --quiet                  no progress messages on stderr\n"
                "  -h, --help               this help\n"
                "\n"
                "Auto-created topics (a produce or metadata request naming an "
                "unknown topic)\n"
                "get 4 partitions. See testkit/tools/DEVBROKER.md for what "
                "the mock cluster\n"
                "supports (and what it does not: e.g. real exactly-once "
                "semantics).\n",
                progname, rd_kafka_version_str());
}

/* A progress message on stderr, unless --quiet. */
__attribute__((format(printf, 2, 3))) static void
note(const struct options *opts, const char *fmt, ...) {
        va_list ap;

        if (opts->quiet)
                return;
        fprintf(stderr, "%s: ", progname);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static int parse_int(const char *s, int min, int max, int *out) {
        char *end;
        long v;

        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -1;
        *out = (int)v;
        return 0;
}

/* NAME:PARTS[:RF]; modifies arg in place. */
static int parse_topic(char *arg, struct topic_spec *t) {
        char *colon = strchr(arg, ':'), *colon2;

        if (!colon || colon == arg)
                return -1;
        *colon  = '\0';
        t->name = arg;
        colon2  = strchr(colon + 1, ':');
        if (colon2)
                *colon2 = '\0';
        if (parse_int(colon + 1, 1, 100000, &t->partitions))
                return -1;
        t->replication_factor = 0;
        if (colon2 && parse_int(colon2 + 1, 1, 1000, &t->replication_factor))
                return -1;
        return 0;
}

static int parse_args(int argc, char **argv, struct options *opts) {
        int i;

        memset(opts, 0, sizeof(*opts));
        opts->brokers = 1;
        for (i = 1; i < argc; i++) {
                const char *a   = argv[i];
                const char *val = i + 1 < argc ? argv[i + 1] : NULL;

                if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                        usage(stdout);
                        exit(0);
                } else if (!strcmp(a, "--quiet")) {
                        opts->quiet = 1;
                } else if (!strcmp(a, "--brokers") && val) {
                        if (parse_int(val, 1, 64, &opts->brokers)) {
                                fprintf(stderr,
                                        "%s: --brokers: want 1..64, got '%s'\n",
                                        progname, val);
                                return -1;
                        }
                        i++;
                } else if (!strcmp(a, "--port") && val) {
                        if (parse_int(val, 1, 65535, &opts->port)) {
                                fprintf(stderr,
                                        "%s: --port: want 1..65535, got '%s'\n",
                                        progname, val);
                                return -1;
                        }
                        i++;
                } else if (!strcmp(a, "--topic") && val) {
                        if (opts->topic_cnt == MAX_TOPICS) {
                                fprintf(stderr, "%s: at most %d --topic\n",
                                        progname, MAX_TOPICS);
                                return -1;
                        }
                        /* A copy: parse_topic() cuts it up, and argv shows
                         * in ps. Freed at exit. */
                        char *spec = strdup(val);
                        if (!spec ||
                            parse_topic(spec,
                                        &opts->topics[opts->topic_cnt++])) {
                                fprintf(stderr,
                                        "%s: --topic: want "
                                        "NAME:PARTITIONS[:RF], got '%s'\n",
                                        progname, val);
                                return -1;
                        }
                        i++;
                } else {
                        fprintf(stderr,
                                "%s: unknown or incomplete option '%s'\n",
                                progname, a);
                        usage(stderr);
                        return -1;
                }
        }
        return 0;
}

/* --- bootstrap proxy (for --port) --------------------------------------- */

static int set_nonblocking(int fd) {
        int flags = fcntl(fd, F_GETFL);

        return flags == -1 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int listen_on(int port) {
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port   = htons((uint16_t)port),
                                  .sin_addr   = {htonl(INADDR_LOOPBACK)}};
        int on                 = 1;
        int fd                 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd == -1)
                return -1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
            bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 64) ||
            set_nonblocking(fd)) {
                int saved = errno;
                close(fd);
                errno = saved;
                return -1;
        }
        return fd;
}

/* Parses "127.0.0.1:1234[,...]" (the first address) into sin. */
static int parse_first_address(const char *bootstraps,
                               struct sockaddr_in *sin) {
        char host[64];
        const char *colon = strchr(bootstraps, ':');
        int port;
        size_t hlen;
        char portbuf[16];
        size_t plen;

        if (!colon)
                return -1;
        hlen = (size_t)(colon - bootstraps);
        if (hlen >= sizeof(host))
                return -1;
        memcpy(host, bootstraps, hlen);
        host[hlen] = '\0';
        plen       = strcspn(colon + 1, ",");
        if (plen == 0 || plen >= sizeof(portbuf))
                return -1;
        memcpy(portbuf, colon + 1, plen);
        portbuf[plen] = '\0';
        if (parse_int(portbuf, 1, 65535, &port))
                return -1;
        memset(sin, 0, sizeof(*sin));
        sin->sin_family = AF_INET;
        sin->sin_port   = htons((uint16_t)port);
        return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static void conn_close(struct proxy_conn *c) {
        if (c->client_fd != -1)
                close(c->client_fd);
        if (c->broker_fd != -1)
                close(c->broker_fd);
        free(c->to_broker.data);
        free(c->to_client.data);
        memset(c, 0, sizeof(*c));
        c->client_fd = c->broker_fd = -1;
}

static void proxy_accept(int listen_fd,
                         const struct sockaddr_in *target,
                         struct proxy_conn *conns) {
        for (;;) {
                int cfd = accept4(listen_fd, NULL, NULL,
                                  SOCK_NONBLOCK | SOCK_CLOEXEC);
                int bfd, i, on = 1;

                if (cfd == -1)
                        return; /* EAGAIN or a transient error */
                for (i = 0; i < MAX_PROXY_CONNS; i++)
                        if (conns[i].client_fd == -1)
                                break;
                /* Connecting to 127.0.0.1 completes at once, so a blocking
                 * connect is fine here. */
                bfd = i < MAX_PROXY_CONNS
                              ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)
                              : -1;
                if (bfd == -1 ||
                    connect(bfd, (const struct sockaddr *)target,
                            sizeof(*target)) ||
                    set_nonblocking(bfd)) {
                        if (bfd != -1)
                                close(bfd);
                        close(cfd);
                        continue;
                }
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
                setsockopt(bfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
                conns[i].client_fd      = cfd;
                conns[i].broker_fd      = bfd;
                conns[i].to_broker.data = malloc(PROXY_BUF_SIZE);
                conns[i].to_client.data = malloc(PROXY_BUF_SIZE);
                if (!conns[i].to_broker.data || !conns[i].to_client.data)
                        conn_close(&conns[i]);
        }
}

/* Moves bytes from fd `from` into buf (when empty) and from buf to fd `to`.
 * @returns -1 when the connection is finished. */
static int pump(int from, int to, struct pipe_buf *buf, int *eof) {
        if (buf->len == buf->off && !*eof) {
                ssize_t r = read(from, buf->data, PROXY_BUF_SIZE);
                if (r == 0)
                        *eof = 1;
                else if (r < 0 && errno != EAGAIN && errno != EINTR)
                        return -1;
                else if (r > 0) {
                        buf->len = (size_t)r;
                        buf->off = 0;
                }
        }
        while (buf->off < buf->len) {
                ssize_t w =
                        write(to, buf->data + buf->off, buf->len - buf->off);
                if (w < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return -1;
                }
                buf->off += (size_t)w;
        }
        if (*eof && buf->off == buf->len)
                return -1;
        return 0;
}

/* --- main loop ----------------------------------------------------------- */

/* Waits for SIGINT/SIGTERM on sfd, forwarding proxy traffic meanwhile. */
static int serve(int sfd, int listen_fd, const struct sockaddr_in *target) {
        static struct proxy_conn conns[MAX_PROXY_CONNS];
        struct pollfd pfds[2 + 2 * MAX_PROXY_CONNS];
        int i;

        for (i = 0; i < MAX_PROXY_CONNS; i++) {
                memset(&conns[i], 0, sizeof(conns[i]));
                conns[i].client_fd = conns[i].broker_fd = -1;
        }
        for (;;) {
                nfds_t n = 0;
                struct signalfd_siginfo si;

                pfds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
                if (listen_fd != -1)
                        pfds[n++] = (struct pollfd){.fd     = listen_fd,
                                                    .events = POLLIN};
                for (i = 0; i < MAX_PROXY_CONNS; i++) {
                        struct proxy_conn *c = &conns[i];
                        if (c->client_fd == -1)
                                continue;
                        pfds[n++] = (struct pollfd){
                                .fd = c->client_fd,
                                .events =
                                        (short)((c->to_broker.off ==
                                                                 c->to_broker
                                                                         .len
                                                         ? POLLIN
                                                         : 0) |
                                                (c->to_client.off < c->to_client
                                                                            .len
                                                         ? POLLOUT
                                                         : 0))};
                        pfds[n++] = (struct pollfd){
                                .fd = c->broker_fd,
                                .events =
                                        (short)((c->to_client.off ==
                                                                 c->to_client
                                                                         .len
                                                         ? POLLIN
                                                         : 0) |
                                                (c->to_broker.off < c->to_broker
                                                                            .len
                                                         ? POLLOUT
                                                         : 0))};
                }
                if (poll(pfds, n, -1) == -1) {
                        if (errno == EINTR)
                                continue;
                        perror("kstreams-devbroker: poll");
                        break;
                }
                if (pfds[0].revents & POLLIN) {
                        if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                                break;
                }
                if (listen_fd != -1 && (pfds[1].revents & POLLIN))
                        proxy_accept(listen_fd, target, conns);
                for (i = 0; i < MAX_PROXY_CONNS; i++) {
                        struct proxy_conn *c = &conns[i];
                        if (c->client_fd == -1)
                                continue;
                        if (pump(c->client_fd, c->broker_fd, &c->to_broker,
                                 &c->client_eof) ||
                            pump(c->broker_fd, c->client_fd, &c->to_client,
                                 &c->broker_eof))
                                conn_close(c);
                }
        }
        for (i = 0; i < MAX_PROXY_CONNS; i++)
                if (conns[i].client_fd != -1)
                        conn_close(&conns[i]);
        return 0;
}

int main(int argc, char **argv) {
        struct options opts;
        char errstr[512];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk                    = NULL;
        rd_kafka_mock_cluster_t *mcluster = NULL;
        const char *bootstraps;
        struct sockaddr_in target;
        int listen_fd = -1, sfd = -1, i, rc = 1;
        sigset_t sigs;

        if (parse_args(argc, argv, &opts))
                return 2;

        /* Block the stop signals before librdkafka starts its threads, so
         * that they inherit the mask and only our signalfd sees them. */
        /* A shell starts background jobs with SIGINT ignored; we want it. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGHUP);
        if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) ||
            (sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) == -1) {
                perror("kstreams-devbroker: signalfd");
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);

        /* The mock cluster lives inside a client instance: a producer that
         * never produces hosts it. */
        conf = rd_kafka_conf_new();
        /* log_level 4: not the host client's notice that it has no
         * bootstrap.servers (it needs none); the mock's errors still show. */
        if (rd_kafka_conf_set(conf, "client.id", "kstreams-devbroker", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) !=
                    RD_KAFKA_CONF_OK) {
                fprintf(stderr, "%s: %s\n", progname, errstr);
                rd_kafka_conf_destroy(conf);
                goto out;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "%s: creating the host client failed: %s\n",
                        progname, errstr);
                rd_kafka_conf_destroy(conf);
                goto out;
        }
        mcluster = rd_kafka_mock_cluster_new(rk, opts.brokers);
        if (!mcluster) {
                fprintf(stderr, "%s: rd_kafka_mock_cluster_new failed\n",
                        progname);
                goto out;
        }
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);

        for (i = 0; i < opts.topic_cnt; i++) {
                struct topic_spec *t = &opts.topics[i];
                int rf               = t->replication_factor
                                               ? t->replication_factor
                                               : (opts.brokers < 3 ? opts.brokers : 3);
                rd_kafka_resp_err_t err;

                if (rf > opts.brokers) {
                        fprintf(stderr,
                                "%s: topic %s: replication factor %d > %d "
                                "brokers\n",
                                progname, t->name, rf, opts.brokers);
                        goto out;
                }
                err = rd_kafka_mock_topic_create(mcluster, t->name,
                                                 t->partitions, rf);
                if (err) {
                        fprintf(stderr, "%s: creating topic %s failed: %s\n",
                                progname, t->name, rd_kafka_err2str(err));
                        goto out;
                }
                note(&opts, "topic %s: %d partitions, replication factor %d",
                     t->name, t->partitions, rf);
        }

        if (opts.port) {
                if (parse_first_address(bootstraps, &target)) {
                        fprintf(stderr,
                                "%s: cannot parse mock bootstrap '%s'\n",
                                progname, bootstraps);
                        goto out;
                }
                listen_fd = listen_on(opts.port);
                if (listen_fd == -1) {
                        fprintf(stderr,
                                "%s: cannot listen on 127.0.0.1:%d: %s\n",
                                progname, opts.port, strerror(errno));
                        goto out;
                }
                note(&opts, "bootstrap proxy on 127.0.0.1:%d -> %s", opts.port,
                     bootstraps);
                printf("KS_BOOTSTRAP=127.0.0.1:%d\n", opts.port);
        } else {
                printf("KS_BOOTSTRAP=%s\n", bootstraps);
        }
        fflush(stdout);
        note(&opts, "%d mock broker(s) at %s; stop with SIGINT or SIGTERM",
             opts.brokers, bootstraps);

        rc = serve(sfd, listen_fd, &target);
        note(&opts, "stopping");

out:
        if (listen_fd != -1)
                close(listen_fd);
        if (mcluster)
                rd_kafka_mock_cluster_destroy(mcluster);
        if (rk)
                rd_kafka_destroy(rk);
        if (sfd != -1)
                close(sfd);
        /* Each name starts the strdup()ed --topic argument (parse_args). */
        for (int i = 0; i < opts.topic_cnt; i++)
                free((char *)opts.topics[i].name);
        return rc;
}
