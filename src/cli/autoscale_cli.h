/* autoscale_cli.h — what the autoscaler's two commands (cmd_autoscale.c:
 * simulate; autoscale_loop.c: the control loop) share: the policy options'
 * rows for the settings layer and their final check. */
#ifndef OSPREY_CLI_AUTOSCALE_H
#define OSPREY_CLI_AUTOSCALE_H

#include "cli/settings.h"
#include "osprey/autoscale.h"

/* The policy options as the settings layer fills them; a command's own
 * struct starts with one (the rows' offsets are from its start). */
typedef struct osp_cli_policy_s {
    osp_autoscale_opts_t o;
    double target;              /* --target (0: each metric's default) */
} osp_cli_policy_t;

#define OSP_CLI_POLICY_ROWS 14
/* Copies the policy rows into tab at index at; returns the new count. */
size_t osp_cli_policy_rows(osp_setting_t *tab, size_t at);
/* osprey's defaults, before the settings layer runs. */
void osp_cli_policy_init(osp_cli_policy_t *p);
/* After loading: the default metric when none was given, --target, and the
 * options' check; an exit code (usage errors printed through st). */
int osp_cli_policy_finish(osp_cli_policy_t *p, const osp_settings_t *st,
                          osp_autoscale_metric_t default_metric);

/* `osprey autoscale` without `simulate`: the control loop. */
int osp_cli_autoscale_run(int argc, char **argv);

#endif
