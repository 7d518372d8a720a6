/* The subcommands of the tracejoin binary.  Each is `int cmd_X(int argc,
 * char **argv)` with argv[0] the command's name, returning an exit code
 * (lib/error.h, enum tj_exit), and `void cmd_X_help(void)`, which prints
 * its help on stdout.  The dispatcher (cli/main.c) answers -h/--help for
 * every command, so cmd_X never sees them. */
#ifndef TJ_COMMANDS_H
#define TJ_COMMANDS_H

int cmd_capture(int argc, char **argv);
void cmd_capture_help(void);
int cmd_info(int argc, char **argv);
void cmd_info_help(void);
int cmd_dump(int argc, char **argv);
void cmd_dump_help(void);
int cmd_gen(int argc, char **argv);
void cmd_gen_help(void);
int cmd_import(int argc, char **argv);
void cmd_import_help(void);
int cmd_label(int argc, char **argv);
void cmd_label_help(void);
int cmd_correlate(int argc, char **argv);
void cmd_correlate_help(void);
int cmd_score(int argc, char **argv);
void cmd_score_help(void);
int cmd_train(int argc, char **argv);
void cmd_train_help(void);
int cmd_features(int argc, char **argv);
void cmd_features_help(void);
int cmd_bench(int argc, char **argv);
void cmd_bench_help(void);
int cmd_export(int argc, char **argv);
void cmd_export_help(void);

#endif
