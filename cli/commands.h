/* The subcommands of the tracejoin binary.  Each is `int cmd_X(int argc,
 * char **argv)` with argv[0] the command's name; it returns an exit code
 * (lib/error.h, enum tj_exit) and prints its own --help. */
#ifndef TJ_COMMANDS_H
#define TJ_COMMANDS_H

int cmd_capture(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_correlate(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* True if argv holds -h or --help before any "--". */
int tj_wants_help(int argc, char **argv);

#endif
