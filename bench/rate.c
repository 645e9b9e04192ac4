// Open-loop load at a fixed rate, for the benchmark's latency rows (SPEC §7), in C so that the client's
// own timing stays far below the quantity it measures. Requests leave on a fixed schedule (a timerfd
// armed for each send time), each on an idle keep-alive connection, or on a new one when all are busy;
// latency runs from the scheduled time, so a stalled server cannot hide its queueing (no coordinated
// omission). Prints one JSON object: the latencies as bench/stats.ts's percentiles() reports them
// (nearest rank), and how late the client itself sent.
//   cc -O2 -o rate bench/rate.c
//   ./rate <http://host:port/path> <rps> <seconds> <authorization> <body>
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PRECONNECT 16
#define MAX_CONNS 1024
#define BUF 65536
#define DRAIN_MS 10000.0

enum state { IDLE, CONNECTING, BUSY };

struct conn {
  int fd;
  enum state state;
  int asked;        // a request is under way (or waits for the connection)
  double scheduled; // its send time
  size_t sent;      // bytes of the request written
  size_t len;       // bytes of the response read
  char buf[BUF];
};

static struct conn *conns[MAX_CONNS];
static int nconns;
static struct sockaddr_in addr;
static char *request;
static size_t request_len;
static double *latencies, *lateness, *sent_at;
static long answered, sent_n, errors, inflight;
static int ep;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

/** A new connection, registered with epoll; NULL when MAX_CONNS are open. */
static struct conn *open_conn(void) {
  if (nconns == MAX_CONNS) return NULL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct conn *c = calloc(1, sizeof *c);
  if (!c) die("calloc");
  c->fd = fd;
  c->state = IDLE;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    if (errno != EINPROGRESS) die("connect");
    c->state = CONNECTING;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  conns[nconns++] = c;
  return c;
}

/** Writes what is left of the request; false when the connection failed. */
static int flush(struct conn *c) {
  while (c->sent < request_len) {
    ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
    if (n < 0) return errno == EAGAIN;
    c->sent += (size_t)n;
  }
  return 1;
}

static void finish(struct conn *c, int ok) {
  if (ok) sent_at[answered] = c->scheduled, latencies[answered++] = now_ms() - c->scheduled;
  else errors++;
  inflight--;
  c->asked = 0;
  c->state = IDLE;
  c->sent = 0;
  c->len = 0;
}

/** Closes a connection that broke or that the server closed; a request under way on it failed. New
 * connections open on demand. */
static void drop(struct conn *c) {
  if (c->asked) finish(c, 0);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  for (int i = 0; i < nconns; i++)
    if (conns[i] == c) conns[i] = conns[--nconns];
  free(c);
}

static void send_on(struct conn *c, double scheduled) {
  double t = now_ms();
  lateness[sent_n++] = t - scheduled;
  inflight++;
  c->asked = 1;
  c->scheduled = scheduled;
  c->sent = 0;
  c->len = 0;
  if (c->state == CONNECTING) return; // written once connected
  c->state = BUSY;
  if (!flush(c)) drop(c);
}

/** Where the header ends, or 0 when it has not all come. */
static size_t header_end(const struct conn *c) {
  for (size_t i = 3; i < c->len; i++)
    if (c->buf[i] == '\n' && c->buf[i - 1] == '\r' && c->buf[i - 2] == '\n' && c->buf[i - 3] == '\r') return i + 1;
  return 0;
}

/** The value of a header (case-insensitive name), or NULL. */
static const char *header(const struct conn *c, size_t end, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i + n + 1 < end; i++)
    if ((i == 0 || c->buf[i - 1] == '\n') && strncasecmp(c->buf + i, name, n) == 0 && c->buf[i + n] == ':') {
      const char *v = c->buf + i + n + 1;
      while (*v == ' ') v++;
      return v;
    }
  return NULL;
}

/** 1 when the chunked body starting at `at` is complete, 0 when more must come, -1 when malformed. */
static int chunked_done(const struct conn *c, size_t at) {
  for (;;) {
    char *line_end = memmem(c->buf + at, c->len - at, "\r\n", 2);
    if (!line_end) return 0;
    char *stop;
    unsigned long size = strtoul(c->buf + at, &stop, 16);
    if (stop == c->buf + at) return -1;
    at = (size_t)(line_end - c->buf) + 2;
    if (size == 0) return c->len >= at + 2 ? 1 : 0; // no trailers expected
    if (c->len < at + size + 2) return 0;
    at += size + 2;
  }
}

/** Reads what has come; finishes the request when its answer is complete. */
static void on_readable(struct conn *c) {
  for (;;) {
    if (c->len == BUF) {
      drop(c);
      return;
    }
    ssize_t n = read(c->fd, c->buf + c->len, BUF - c->len);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      drop(c);
      return;
    }
    if (n < 0) return;
    c->len += (size_t)n;
    if (c->state != BUSY) continue; // nothing asked: drained, and a close shows up as above
    size_t end = header_end(c);
    if (!end) continue;
    int ok = c->len >= 12 && strncmp(c->buf + 9, "200", 3) == 0;
    const char *length = header(c, end, "content-length");
    const char *encoding = header(c, end, "transfer-encoding");
    int complete;
    if (length) complete = c->len >= end + strtoul(length, NULL, 10);
    else if (encoding && strncasecmp(encoding, "chunked", 7) == 0) complete = chunked_done(c, end);
    else complete = -1; // neither: the answer runs to the close, not what this client measures
    if (complete < 0) {
      drop(c);
      return;
    }
    if (complete) {
      const char *connection = header(c, end, "connection");
      int closing = connection && strncasecmp(connection, "close", 5) == 0;
      finish(c, ok);
      if (closing) drop(c);
      return;
    }
  }
}

static void arm(int tfd, double at_ms) {
  struct itimerspec its = {0};
  its.it_value.tv_sec = (time_t)(at_ms / 1e3);
  its.it_value.tv_nsec = (long)((at_ms - (double)its.it_value.tv_sec * 1e3) * 1e6);
  if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void print_percentiles(const char *name, double *v, long n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
#define AT(p) (n ? v[(long)((p) / 100.0 * n) < n - 1 ? (long)((p) / 100.0 * n) : n - 1] : 0)
  printf("\"%s\":{\"n\":%ld,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f}", name, n, AT(50), AT(90), AT(99),
         n ? v[n - 1] : 0);
#undef AT
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s <http://host:port/path> <rps> <seconds> <authorization> <body>\n", argv[0]);
    return 2;
  }
  char host[256], path[1024];
  int port;
  if (sscanf(argv[1], "http://%255[^:]:%d%1023s", host, &port, path) != 3) {
    fprintf(stderr, "the url must be http://host:port/path\n");
    return 2;
  }
  double rps = atof(argv[2]), seconds = atof(argv[3]);
  const char *authorization = argv[4], *body = argv[5];
  long total = (long)(rps * seconds + 0.5);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "the host must be an IPv4 address\n");
    return 2;
  }
  request = malloc(4096 + strlen(body));
  request_len = (size_t)sprintf(request,
                                "POST %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: nnz-bench-rate\r\nAccept: */*\r\n"
                                "Content-Type: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
                                path, host, port, *authorization ? "Authorization: " : "", authorization,
                                *authorization ? "\r\n" : "", strlen(body), body);
  latencies = malloc(sizeof(double) * (size_t)(total + 1));
  lateness = malloc(sizeof(double) * (size_t)(total + 1));
  sent_at = malloc(sizeof(double) * (size_t)(total + 1));
  ep = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  if (ep < 0 || tfd < 0) die("epoll/timerfd");
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
  for (int i = 0; i < PRECONNECT; i++) open_conn();

  double start = now_ms() + 50, deadline = 0;
  long next = 0;
  arm(tfd, start);
  struct epoll_event events[256];
  while (next < total || (inflight > 0 && now_ms() < deadline)) {
    int n = epoll_wait(ep, events, 256, next < total ? -1 : 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (!c) continue;
      if (c->state == CONNECTING && (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          drop(c);
          continue;
        }
        c->state = c->asked ? BUSY : IDLE;
        if (c->asked && !flush(c)) {
          drop(c);
          continue;
        }
      }
      if (c->state == BUSY && (events[i].events & EPOLLOUT) && c->sent < request_len && !flush(c)) {
        drop(c);
        continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
    uint64_t expirations;
    while (read(tfd, &expirations, sizeof expirations) > 0) {
    }
    double t = now_ms();
    while (next < total && start + (double)next * 1e3 / rps <= t) {
      double scheduled = start + (double)next * 1e3 / rps;
      next++;
      struct conn *idle = NULL;
      for (int k = 0; k < nconns && !idle; k++)
        if (conns[k]->state == IDLE) idle = conns[k];
      if (!idle) idle = open_conn();
      if (!idle) {
        errors++;
        continue;
      }
      send_on(idle, scheduled);
    }
    if (next < total) arm(tfd, start + (double)next * 1e3 / rps);
    else if (deadline == 0) deadline = now_ms() + DRAIN_MS;
  }
  errors += inflight;
  const char *dump = getenv("RATE_SAMPLES"); // each answered request's send time (ms from the start) and latency
  if (dump) {
    FILE *f = fopen(dump, "w");
    if (!f) die("RATE_SAMPLES");
    for (long i = 0; i < answered; i++) fprintf(f, "%.3f %.4f\n", sent_at[i] - start, latencies[i]);
    fclose(f);
  }
  printf("{\"start_ms\":%.3f,\"rps\":%g,\"seconds\":%g,\"sent\":%ld,\"errors\":%ld,\"connections\":%d,", start,
         rps, seconds, sent_n, errors, nconns);
  print_percentiles("latency_ms", latencies, answered);
  printf(",");
  print_percentiles("late_ms", lateness, sent_n);
  printf("}\n");
  return 0;
}
