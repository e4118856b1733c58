/* up_stack.h — the processes of `osprey up` (cmd_up.c): start a child in
 * its own process group with its output in a log file, tied to us by
 * PR_SET_PDEATHSIG; stop it (SIGTERM, then SIGKILL after a time); reap
 * whatever is left; check ports before anything starts; small HTTP GETs to
 * wait for readiness and read the autoscaler's /status. Kept apart from the
 * command so that the command reads as the order of things. */
#ifndef OSPREY_CLI_UP_STACK_H
#define OSPREY_CLI_UP_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct osp_up_proc_s {
    const char *name;   /* "dispatcher", "autoscaler", "prometheus", ... */
    char log[4096 + 64]; /* its stdout and stderr (state dir + name) */
    pid_t pid;          /* 0: not started or reaped */
    int status;         /* wait status once reaped */
} osp_up_proc_t;

/* Makes this process the reaper of its orphaned descendants (a worker
 * whose autoscaler died reparents to us, so nothing escapes the stop). */
void osp_up_subreaper(void);

/* Starts argv (argv[0] a path) as p: a process group of its own, SIGTERM
 * when we die (even by SIGKILL), stdin /dev/null, output appended to
 * p->log, environment plus OSPREY_STACK=stack (what every process of the
 * stack, workers included, carries: how a test finds them). 0, or -1 with
 * a message on stderr. Call from the thread that will outlive it. */
int osp_up_spawn(osp_up_proc_t *p, char *const argv[], const char *stack);

/* Reaps every child that exited (ours or adopted) without blocking; marks
 * the osp_up_proc_t among procs[0..n) whose pid it was. Returns the first
 * of procs that died in this call, or NULL. */
osp_up_proc_t *osp_up_reap(osp_up_proc_t *procs, size_t n);

/* SIGTERM to p's group, waits up to timeout_s, then SIGKILL and waits.
 * Returns true when it stopped on SIGTERM. */
bool osp_up_stop(osp_up_proc_t *p, double timeout_s);

/* Stops (SIGTERM, then SIGKILL after timeout_s) every remaining child of
 * this process: adopted workers and anything else. */
void osp_up_stop_rest(double timeout_s);

/* Checks that host:port can be bound (SO_REUSEADDR, as the servers do).
 * *port 0 is replaced by a free port. 0, or -1 (in use, or a bad host). */
int osp_up_port_check(const char *host, int *port);

/* GET url within timeout_ms: the status (0 when unreachable) and, when
 * body is not NULL, the body (caller frees; NUL-terminated). */
long osp_up_get(const char *url, int timeout_ms, char **body);

/* The last lines of a log file to stderr, indented (after a failure). */
void osp_up_log_tail(const char *path, int lines);

#endif
