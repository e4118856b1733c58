/* up_stack.c — the processes of `osprey up` (up_stack.h): children in
 * their own process groups tied to us by PR_SET_PDEATHSIG, as the local
 * autoscaler ties its workers (src/autoscale/local.c), so that even a
 * `kill -9` of `osprey up` leaves nothing running: the kernel SIGTERMs the
 * dispatcher, the autoscaler and Prometheus, and the autoscaler's own
 * workers follow it the same way. We are also the subreaper of our
 * descendants, so a worker orphaned by a dead autoscaler is ours to stop. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/up_stack.h"
#include "osprey/common.h"
#include "osprey/http.h"


static double now_s(void) { return osp_now_ns() / 1e9; }

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void osp_up_subreaper(void) { prctl(PR_SET_CHILD_SUBREAPER, 1); }

int osp_up_spawn(osp_up_proc_t *p, char *const argv[], const char *stack) {
    int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "osprey up: %s: %s\n", p->log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "osprey up: fork: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        setenv("OSPREY_STACK", stack, 1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        dprintf(2, "osprey up: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with a kill right after */
    close(fd);
    p->pid = pid;
    return 0;
}

osp_up_proc_t *osp_up_reap(osp_up_proc_t *procs, size_t n) {
    osp_up_proc_t *first = NULL;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (size_t i = 0; i < n; i++)
            if (procs[i].pid == pid) {
                procs[i].pid = 0;
                procs[i].status = st;
                if (!first)
                    first = &procs[i];
            }
    return first;
}

/* Waits up to timeout_s for p to be reaped; true when it was. */
static bool wait_gone(osp_up_proc_t *p, double timeout_s) {
    double end = now_s() + timeout_s;
    while (p->pid > 0) {
        int st = 0; /* ECHILD: reaped elsewhere, status unknown */
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->status = st;
            p->pid = 0;
            break;
        }
        if (now_s() > end)
            return false;
        sleep_ms(50);
    }
    return true;
}

bool osp_up_stop(osp_up_proc_t *p, double timeout_s) {
    if (p->pid <= 0)
        return true;
    pid_t pg = p->pid;
    kill(-pg, SIGTERM);
    if (wait_gone(p, timeout_s)) {
        kill(-pg, SIGKILL); /* anything of its group still there */
        return true;
    }
    fprintf(stderr, "osprey up: %s did not stop within %.0f s of SIGTERM; "
                    "killing it\n", p->name, timeout_s);
    kill(-pg, SIGKILL);
    wait_gone(p, 5);
    return false;
}

/* Our remaining children's pids (from /proc: adopted ones are not known
 * otherwise); returns how many were put in out[0..cap). */
static size_t children(pid_t *out, size_t cap) {
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t n = 0;
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        /* pid (comm) state ppid: comm may hold spaces, so after the last ')' */
        char *rp = strrchr(buf, ')');
        int ppid;
        char state;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == self)
            out[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return n;
}

void osp_up_stop_rest(double timeout_s) {
    pid_t pids[256];
    size_t n = children(pids, OSP_ARRAY_LEN(pids));
    for (size_t i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (children(pids, OSP_ARRAY_LEN(pids)) == 0)
            return;
        sleep_ms(100);
    }
    n = children(pids, OSP_ARRAY_LEN(pids));
    for (size_t i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    while (waitpid(-1, NULL, 0) > 0) {
    }
}

int osp_up_port_check(const char *host, int *port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", *port);
    if (getaddrinfo(host, ps, &hints, &ai) || !ai)
        return -1;
    int rc = -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_storage a;
        socklen_t len = sizeof a;
        if (!bind(fd, ai->ai_addr, ai->ai_addrlen) &&
            !getsockname(fd, (struct sockaddr *)&a, &len)) {
            rc = 0;
            *port = ntohs(a.ss_family == AF_INET6
                              ? ((struct sockaddr_in6 *)&a)->sin6_port
                              : ((struct sockaddr_in *)&a)->sin_port);
        }
        close(fd);
    }
    freeaddrinfo(ai);
    return rc;
}

long osp_up_get(const char *url, int timeout_ms, char **body) {
    long status = 0;
    size_t n = 0;
    if (osp_http_fetch("GET", url, NULL, timeout_ms, &status, body, &n, NULL))
        return 0;
    /* An empty answer is "" for the caller, not NULL. */
    if (body && !*body && !(*body = strdup("")))
        return 0;
    return status;
}

void osp_up_log_tail(const char *path, int lines) {
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *ring[64] = {0};
    if (lines > 64)
        lines = 64;
    char buf[1024];
    int n = 0;
    while (fgets(buf, sizeof buf, f)) {
        free(ring[n % lines]);
        ring[n % lines] = strdup(buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "--- the last lines of %s:\n", path);
    for (int i = n > lines ? n - lines : 0; i < n; i++)
        fprintf(stderr, "    %s", ring[i % lines] ? ring[i % lines] : "\n");
    for (int i = 0; i < lines; i++)
        free(ring[i]);
}
