/* tuning.h — the engine's tuning knobs (osp_engine_tuning_t) as settings
 * rows, so that every command that runs the engine takes them the same
 * way: `osprey serve`, `osprey bench` and `osprey classify` in their
 * settings tables (flags, OSPREY_* environment, config file) and the test
 * tools (tests/tools/osp_run_model.c, getopt_long).
 *
 * A knob is named once: --engine-winograd is OSPREY_ENGINE_WINOGRAD in the
 * environment (settings.h's rule) and "engine-winograd" in a config file;
 * the older spelling OSP_ENGINE_WINOGRAD is still read when the new one is
 * unset. The engine itself reads no environment (docs/engine.md, "Tuning
 * knobs", has the table). */
#ifndef OSPREY_CLI_TUNING_H
#define OSPREY_CLI_TUNING_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "cli/settings.h"
#include "osprey/engine.h"

/* getopt_long values of the knobs: OSP_CLI_TUNING_OPT + row. */
#define OSP_CLI_TUNING_OPT 0x1000
/* Rows a caller makes room for (asserted against the table's size). */
#define OSP_CLI_TUNING_MAX 32

/* A command's settings table: its own rows (n_own), then the knobs with
 * their offsets moved by base_off (where osp_engine_tuning_t sits in the
 * command's settings struct) and their environment prefix OSPREY_ whatever
 * the command's; the first knob starts --help's "engine tuning" section.
 * out has room for n_own + OSP_CLI_TUNING_MAX. Returns the rows in out. */
size_t osp_cli_tuning_table(const osp_setting_t *own, size_t n_own,
                            size_t base_off, osp_setting_t *out);
/* Prints the knobs' --help lines under their heading. */
void osp_cli_tuning_usage(FILE *f);

/* The defaults that are not zero: the cache directory of the measured
 * choices ($XDG_CACHE_HOME/osprey, else $HOME/.cache/osprey, else none).
 * Call before applying the environment, flags or a config file. */
void osp_cli_tuning_defaults(osp_engine_tuning_t *t);

/* For the test tools, which parse their argv with getopt_long. */
/* out = the command's own long options (n_own, no terminator), then the
 * knobs' (required_argument, val OSP_CLI_TUNING_OPT + row), then the
 * terminating zero entry. out has room for n_own + OSP_CLI_TUNING_MAX + 1. */
void osp_cli_tuning_longopts(const struct option *own, size_t n_own,
                             struct option *out);
/* Applies getopt's (val, optarg) when val is a knob: 0 applied, -1 after a
 * message, 1 when val is not a knob. */
int osp_cli_tuning_flag(const char *cmd, int val, const char *arg,
                        osp_engine_tuning_t *t);

#endif
