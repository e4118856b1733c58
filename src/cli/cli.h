/* cli.h — the subcommands of the multi-call `osprey` binary and what they
 * share: exit codes, the start-failure rule, and the signal wait of the
 * long-running commands (lifecycle.c). Each subcommand takes the arguments
 * after its name (argv[0] = subcommand) and returns the process exit code. */
#ifndef OSPREY_CLI_H
#define OSPREY_CLI_H

#include "osprey/common.h"

typedef struct osp_cli_cmd_s {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
} osp_cli_cmd_t;

/* osprey classify: classify image files (text or JSON lines). */
int osp_cli_classify(int argc, char **argv);
/* osprey bench: engine throughput/latency, optionally vs ONNX Runtime. */
int osp_cli_bench(int argc, char **argv);
/* osprey serve: the worker (HTTP classification server). */
int osp_cli_serve(int argc, char **argv);
/* osprey dispatch: the dispatcher (balancing proxy in front of workers). */
int osp_cli_dispatch(int argc, char **argv);
/* osprey load: the load generator (open/closed loop, time series). */
int osp_cli_load(int argc, char **argv);
/* osprey autoscale: the autoscaler (control loop, or `simulate`). */
int osp_cli_autoscale(int argc, char **argv);
/* osprey up: the whole local stack (dispatcher, autoscaler, Prometheus). */
int osp_cli_up(int argc, char **argv);

/* osprey models: list the model catalogue, fetch and verify models. */
int osp_cli_models(int argc, char **argv);
/* osprey report: a load run's report; `record` and `snapshot` feed it. */
int osp_cli_report(int argc, char **argv);
/* osprey health: GET a health endpoint, exit 0 on 200 (HEALTHCHECK). */
int osp_cli_health(int argc, char **argv);

/* mkdir -p: creates dir and its missing parents; 0, or -1 with errno. */
int osp_cli_mkdir_p(const char *dir);

/* Exit codes of every command (README, "Exit codes"). */
enum {
    OSP_CLI_EXIT_OK = 0,     /* done (a server: drained after SIGTERM) */
    OSP_CLI_EXIT_FAIL = 1,   /* runtime failure, including a failed start:
                                port in use, model missing, drain timeout */
    OSP_CLI_EXIT_USAGE = 2,  /* bad flag, value, environment or config */
    OSP_CLI_EXIT_ERRORS = 3, /* osprey load: errors above --max-error-rate */
};

/* Prints "cmd: err->msg" and returns the exit code of a failed start: a
 * value the library rejected (OSP_EINVAL, OSP_EUNSUPPORTED: a bad --host, a
 * malformed --backend) is a usage error, anything else (port in use, model
 * missing, unreachable) a runtime failure. */
int osp_cli_start_failed(const char *cmd, const osp_err_t *err);

/* For the long-running commands (serve, dispatch; autoscale, up): blocks
 * SIGTERM and SIGINT in the calling thread, so that every thread started
 * afterwards inherits the mask and the signals wait for
 * osp_cli_signal_wait, and ignores SIGPIPE (a client that goes away is an
 * error return, not a death). Call before starting any thread. */
void osp_cli_signals_block(void);
/* Waits for SIGTERM or SIGINT; returns "SIGTERM" or "SIGINT". */
const char *osp_cli_signal_wait(void);
/* The exit code after a drain that returned drain_rc: 0 after a clean
 * drain; when requests were still in flight at the timeout the process
 * ends here with OSP_CLI_EXIT_FAIL, without waiting for them (destroying
 * the server would). */
int osp_cli_drained(int drain_rc);

/* How libgomp waits at barriers in this process, for --verbose output:
 * "OMP_WAIT_POLICY=passive, GOMP_SPINCOUNT=100000" (main() sets both unless
 * the user chose; libgomp reads them at start, and the engine, a library,
 * reads no environment). Valid until the next call. */
const char *osp_cli_omp_waiting(void);

#endif
