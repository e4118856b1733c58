/* osp_k8s_scale.c — test helper: the autoscaler's Kubernetes actuator
 * (osp_autoscale_k8s_create) driven by hand, one call per run, so that
 * tests/integration/autoscale_k8s.sh can check observe and scale against a
 * real API server (RBAC, conflicts, a server that goes away) without the
 * control loop deciding anything.
 *
 *   osp_k8s_scale (--kubeconfig FILE [--context NAME] |
 *                  --api URL [--token FILE] [--ca FILE])
 *                 --deployment NS/NAME [--timeout-ms MS] observe | scale N
 *
 * observe prints {"current":N,"ready":R}; scale N prints {"scaled":N}.
 * On failure: the actuator's message on stderr, exit 1 (2 for usage). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/autoscale.h"

typedef struct args_s {
    const char *kubeconfig, *context, *api, *token, *ca, *deployment;
    long timeout_ms;
    const char *action;
    int n;
} args_t;

static int usage(void) {
    fprintf(stderr,
            "usage: osp_k8s_scale (--kubeconfig FILE [--context NAME] | "
            "--api URL [--token FILE] [--ca FILE])\n"
            "                     --deployment NS/NAME [--timeout-ms MS] "
            "observe | scale N\n");
    return 2;
}

/* The value flags, by name. */
static const struct {
    const char *flag;
    size_t off;
} FLAGS[] = {
    {"--kubeconfig", offsetof(args_t, kubeconfig)},
    {"--context", offsetof(args_t, context)},
    {"--api", offsetof(args_t, api)},
    {"--token", offsetof(args_t, token)},
    {"--ca", offsetof(args_t, ca)},
    {"--deployment", offsetof(args_t, deployment)},
};

static int parse_args(int argc, char **argv, args_t *a) {
    int i = 1;
    for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
        if (!strcmp(argv[i], "--timeout-ms")) {
            a->timeout_ms = atol(argv[i + 1]);
            continue;
        }
        size_t f = 0;
        while (f < OSP_ARRAY_LEN(FLAGS) && strcmp(argv[i], FLAGS[f].flag))
            f++;
        if (f == OSP_ARRAY_LEN(FLAGS))
            return usage();
        *(const char **)((char *)a + FLAGS[f].off) = argv[i + 1];
    }
    if (i >= argc || !a->deployment || (!a->kubeconfig == !a->api))
        return usage();
    a->action = argv[i];
    if (!strcmp(a->action, "scale") && i + 1 < argc)
        a->n = atoi(argv[i + 1]);
    else if (strcmp(a->action, "observe"))
        return usage();
    return 0;
}

static int act(osp_autoscale_actuator_t *act, const args_t *a,
               osp_err_t *err) {
    if (!strcmp(a->action, "observe")) {
        int cur, ready;
        int rc = act->observe(act, &cur, &ready, err);
        if (rc == 0)
            printf("{\"current\":%d,\"ready\":%d}\n", cur, ready);
        return rc;
    }
    int rc = act->scale(act, a->n, err);
    if (rc == 0)
        printf("{\"scaled\":%d}\n", a->n);
    return rc;
}

int main(int argc, char **argv) {
    args_t a = {0};
    if (parse_args(argc, argv, &a))
        return 2;
    osp_err_t err = {0};
    osp_kube_config_t c;
    int rc = a.kubeconfig
                 ? osp_kube_config_from_kubeconfig(&c, a.kubeconfig, a.context,
                                                   &err)
                 : osp_kube_config_in_cluster(&c, a.api, a.token, a.ca, &err);
    if (rc < 0) {
        fprintf(stderr, "osp_k8s_scale: %s\n", err.msg);
        return 1;
    }
    osp_autoscale_k8s_opts_t o = {.deployment = a.deployment, .kube = &c,
                                  .timeout_ms = a.timeout_ms};
    osp_autoscale_actuator_t *k = osp_autoscale_k8s_create(&o, &err);
    osp_kube_config_fini(&c);
    if (!k) {
        fprintf(stderr, "osp_k8s_scale: %s\n", err.msg);
        return 1;
    }
    rc = act(k, &a, &err);
    if (rc < 0)
        fprintf(stderr, "osp_k8s_scale: %s (%s)\n", err.msg,
                osp_errname(rc));
    k->destroy(k);
    return rc < 0 ? 1 : 0;
}
