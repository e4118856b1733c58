/* lifecycle.c — what every command shares about starting and stopping:
 * the exit code of a failed start, and the long-running commands' signal
 * wait and drain outcome (cli.h). One copy, so that serve, dispatch and the
 * commands to come stop the same way and exit with the same codes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <pthread.h>

#include "cli/cli.h"

int osp_cli_start_failed(const char *cmd, const osp_err_t *err) {
    fprintf(stderr, "%s: %s\n", cmd, err->msg);
    return err->code == OSP_EINVAL || err->code == OSP_EUNSUPPORTED
               ? OSP_CLI_EXIT_USAGE
               : OSP_CLI_EXIT_FAIL;
}

static void stop_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void osp_cli_signals_block(void) {
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

const char *osp_cli_signal_wait(void) {
    sigset_t set;
    stop_signals(&set);
    int sig = 0;
    sigwait(&set, &sig); /* fails only for a bad set */
    return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

int osp_cli_drained(int drain_rc) {
    if (drain_rc == 0)
        return OSP_CLI_EXIT_OK;
    /* Not everything finished in time: exit without waiting for it. */
    fflush(NULL);
    _Exit(OSP_CLI_EXIT_FAIL);
}
