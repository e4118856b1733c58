/* cli.h — the subcommands of the multi-call `osprey` binary. Each takes the
 * arguments after the subcommand name (argv[0] = subcommand) and returns the
 * process exit code. */
#ifndef OSPREY_CLI_H
#define OSPREY_CLI_H

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

/* How libgomp waits at barriers in this process, for --verbose output:
 * "OMP_WAIT_POLICY=passive, GOMP_SPINCOUNT=100000" (main() sets both unless
 * the user chose; libgomp reads them at start, and the engine, a library,
 * reads no environment). Valid until the next call. */
const char *osp_cli_omp_waiting(void);

#endif
