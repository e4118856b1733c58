/* main.c — entry point of the multi-call `osprey` binary: dispatches
 * `osprey <subcommand> ...` to the subcommand's main. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "osprey/common.h"

static int cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("osprey %s\n", OSP_VERSION);
    return 0;
}

static const osp_cli_cmd_t commands[] = {
    {"classify", "classify image files with a model", osp_cli_classify},
    {"bench", "measure a model's speed (optionally vs ONNX Runtime)", osp_cli_bench},
    {"serve", "run the worker: HTTP classification server (REST + KServe V2)", osp_cli_serve},
    {"dispatch", "run the dispatcher: model-aware balancing proxy in front of workers", osp_cli_dispatch},
    {"load", "load-test an HTTP endpoint (open/closed loop, latency percentiles)", osp_cli_load},
    {"autoscale", "scale the workers with the load (HPA algorithm + panic mode), or simulate it", osp_cli_autoscale},
    {"up", "run the whole local stack: dispatcher, autoscaler + workers, Prometheus", osp_cli_up},
    {"models", "list the known models; fetch and verify them into a directory", osp_cli_models},
    {"report", "the evidence of a load run: HTML + Markdown report, recorder, snapshots", osp_cli_report},
    {"health", "check a server's health endpoint (exit 0 when ready)", osp_cli_health},
    {"version", "print the version", cmd_version},
};

static void usage(FILE *f) {
    fprintf(f, "usage: osprey <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < OSP_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`osprey <command> --help` describes a command's options.\n");
}

/* oneDNN here runs on GNU OpenMP, whose threads spin after each parallel
 * region by default (300k iterations, ~3 ms). On CPUs shared with anything
 * else (our own HTTP threads decoding images, a neighbour's process) a
 * spinning thread steals the core a preempted one needs: ResNet50 batch 1
 * on 2 shared cores took 442 ms with the default and 97 ms with
 * OMP_WAIT_POLICY=passive, measured in the same minute (docs/decisions.md).
 * But never spinning has its own cost: every parallel region then ends in
 * a futex sleep, the CPU goes idle between regions, and on a virtual
 * machine that has been idle for a while (a server under light load) the
 * wake-ups are slow — ResNet50 bf16 batch 1 on 2 threads ran in 22 ms back
 * to back and in 39 ms (the one-thread time) after 50+ ms of idleness. A
 * short spin, GOMP_SPINCOUNT 100000 (~1 ms, libgomp's own estimate), keeps
 * the threads awake between the regions of one run and lets them sleep
 * between requests: 20.5 ms after idleness (docs/decisions.md, "OpenMP
 * waiting under light load"). libgomp reads both variables once, before
 * main, so when the user has chosen neither we set them and re-execute
 * ourselves; a user's own setting of either is kept as is. */
#define OSP_GOMP_SPINCOUNT "100000"
static void ensure_omp_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0 ||
        setenv("GOMP_SPINCOUNT", OSP_GOMP_SPINCOUNT, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the default policy. */
}

const char *osp_cli_omp_waiting(void) {
    static char text[160]; /* main's thread, before any subcommand starts threads */
    const char *wait = getenv("OMP_WAIT_POLICY");
    const char *spin = getenv("GOMP_SPINCOUNT");
    snprintf(text, sizeof text, "%s%s%s%s",
             wait ? "OMP_WAIT_POLICY=" : "spinning (OMP_WAIT_POLICY unset; ",
             wait ? wait : "use passive on shared CPUs, see docs/engine.md)",
             spin ? ", GOMP_SPINCOUNT=" : "", spin ? spin : "");
    return text;
}

int main(int argc, char **argv) {
    ensure_omp_wait_policy(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(0, NULL);
    for (size_t i = 0; i < OSP_ARRAY_LEN(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "osprey: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
