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

/* Where commands keep per-machine caches (the engine's measured choices):
 * $XDG_CACHE_HOME/osprey, else $HOME/.cache/osprey; NULL when neither is
 * set, or when OSPREY_CACHE_DIR is "off". OSPREY_CACHE_DIR overrides. The
 * string lives for the process. */
const char *osp_cli_cache_dir(void);

#endif
