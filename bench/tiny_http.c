/* tiny_http.c — a minimal single-threaded epoll HTTP/1.1 server for
 * benchmarking load generators (bench/load_vs_wrk.sh), not for serving: it
 * answers every request (any method, no body expected) with a fixed
 * keep-alive "200 ok". It is fast enough that the client, not the server,
 * limits the request rate — which is what comparing `osprey load` with
 * `wrk` needs.
 *
 * usage: bench_tiny_http [PORT]   (127.0.0.1 only; 0 or none = any free
 * port); prints the port on stdout, runs until killed. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUF_BYTES 65536

static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 3\r\n\r\nok\n";

/* Per connection: the last 3 bytes seen, to find "\r\n\r\n" across
 * reads. */
typedef struct conn_s {
    int fd;
    char tail[3];
    int tail_len;
} conn_t;

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(ls, 1024) < 0) {
        perror("tiny_http: listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    static char buf[BUF_BYTES];
    static char out[BUF_BYTES];
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *k = calloc(1, sizeof *k);
                    if (!k) {
                        close(fd);
                        continue;
                    }
                    k->fd = fd;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = k};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(c->fd);
                free(c);
                continue;
            }
            /* Count request ends ("\r\n\r\n"), including across reads. */
            int reqs = 0;
            char win[4];
            memcpy(win, c->tail, (size_t)c->tail_len);
            int wl = c->tail_len;
            for (ssize_t k = 0; k < r; k++) {
                if (wl == 4) {
                    memmove(win, win + 1, 3);
                    wl = 3;
                }
                win[wl++] = buf[k];
                if (wl == 4 && !memcmp(win, "\r\n\r\n", 4)) {
                    reqs++;
                    wl = 0;
                }
            }
            c->tail_len = wl > 3 ? 3 : wl;
            memcpy(c->tail, win + (wl > 3 ? wl - 3 : 0), (size_t)c->tail_len);
            size_t len = 0;
            for (int q = 0; q < reqs && len + sizeof resp <= sizeof out; q++) {
                memcpy(out + len, resp, sizeof resp - 1);
                len += sizeof resp - 1;
            }
            if (len && write(c->fd, out, len) < 0) {
                close(c->fd);
                free(c);
            }
        }
    }
}
