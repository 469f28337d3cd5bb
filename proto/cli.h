/* cli.h: command-line and environment options for the daemons.
 *
 * Each option is a row: a long flag, the environment variable that sets it
 * when the flag is absent, a default, and one line of help. Flags win over
 * the environment, the environment over defaults, so a container can be
 * configured entirely by variables. --help prints the table.
 */
#ifndef PROFILE_CLI_H
#define PROFILE_CLI_H

#include <stddef.h>

typedef enum { CLI_STRING, CLI_INT, CLI_LIST, CLI_FLAG } cli_type;

typedef struct cli_option {
	const char *flag; /* "listen" for --listen */
	char short_flag;  /* 0 for none */
	const char *env;  /* "PROFILED_LISTEN", or NULL */
	cli_type type;
	const char *def; /* default as text, or NULL */
	const char *arg; /* name of the value in --help, e.g. "URL" */
	const char *help;
	void *value; /* const char ** / long * / const char *** / int * */
} cli_option;

/* Parses argv against opts[0..n). Lists (CLI_LIST) collect every use of the
 * flag; from the environment they are split on whitespace. Returns 0 to go
 * on, 1 when --help or --version was printed (exit 0), 2 on a usage error
 * (printed to stderr; exit 2). */
int cli_parse(int argc, char **argv, const char *usage, const char *about, cli_option *opts, size_t n);

#endif
