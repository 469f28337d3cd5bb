/* cli.c: option parsing for the daemons (cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PROFILE_VERSION
#define PROFILE_VERSION "0"
#endif

static int
list_add(const char ***list, const char *item)
{
	size_t n = 0;
	const char **grown;

	while (*list && (*list)[n])
		n++;
	if ((grown = realloc(*list, (n + 2) * sizeof *grown)) == NULL)
		return -1;
	grown[n] = item;
	grown[n + 1] = NULL;
	*list = grown;
	return 0;
}

static int
set_value(const cli_option *o, const char *text, const char *from, int split)
{
	char *end;
	long v;

	switch (o->type) {
	case CLI_STRING:
		*(const char **)o->value = text;
		return 0;
	case CLI_FLAG:
		*(int *)o->value = text == NULL || strcmp(text, "0") != 0;
		return 0;
	case CLI_INT:
		errno = 0;
		v = strtol(text, &end, 10);
		if (errno || end == text || *end != '\0' || v < 0) {
			fprintf(stderr, "%s --%s wants a non-negative integer, not '%s'\n", from, o->flag,
			        text);
			return -1;
		}
		*(long *)o->value = v;
		return 0;
	case CLI_LIST: {
		/* From the environment: whitespace-separated items. */
		char *copy, *tok, *save;
		if (!split)
			return list_add((const char ***)o->value, text);
		if ((copy = strdup(text)) == NULL)
			return -1;
		for (tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
			if (list_add((const char ***)o->value, tok) != 0)
				return -1;
		return 0; /* copy stays alive: the list points into it */
	}
	}
	return -1;
}

static void
print_help(const char *usage, const char *about, const cli_option *opts, size_t n)
{
	printf("usage: %s\n\n%s\n\noptions (environment variable in brackets):\n", usage, about);
	for (size_t i = 0; i < n; i++) {
		char left[64];
		const cli_option *o = &opts[i];

		if (o->short_flag)
			snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_flag, o->flag,
			         o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", o->flag, o->arg ? " " : "",
			         o->arg ? o->arg : "");
		printf("  %-30s %s", left, o->help);
		if (o->def)
			printf(" (default: %s)", o->def);
		if (o->env)
			printf(" [%s]", o->env);
		printf("\n");
	}
	printf("  %-30s %s\n  %-30s %s\n", "-h, --help", "print this help and exit", "    --version",
	       "print the version and exit");
}

int
cli_parse(int argc, char **argv, const char *usage, const char *about, cli_option *opts, size_t n)
{
	struct option *lo = calloc(n + 3, sizeof *lo);
	char shorts[128] = "h";
	size_t sl = 1;
	int c, idx, rc = 0;

	if (lo == NULL)
		return 2;
	for (size_t i = 0; i < n; i++) {
		const char *env = opts[i].env ? getenv(opts[i].env) : NULL;
		if (opts[i].def && set_value(&opts[i], opts[i].def, "default", 1) != 0)
			rc = 2;
		if (env && *env && set_value(&opts[i], env, opts[i].env, 1) != 0)
			rc = 2;
		lo[i].name = opts[i].flag;
		lo[i].has_arg = opts[i].type == CLI_FLAG ? no_argument : required_argument;
		lo[i].val = 256 + (int)i;
		if (opts[i].short_flag && sl + 2 < sizeof shorts) {
			shorts[sl++] = opts[i].short_flag;
			if (opts[i].type != CLI_FLAG)
				shorts[sl++] = ':';
		}
	}
	shorts[sl] = '\0';
	lo[n].name = "help";
	lo[n].val = 'h';
	lo[n + 1].name = "version";
	lo[n + 1].val = 'V';
	if (rc) {
		free(lo);
		return rc;
	}
	opterr = 1;
	while ((c = getopt_long(argc, argv, shorts, lo, &idx)) != -1) {
		size_t i;

		if (c == 'h') {
			print_help(usage, about, opts, n);
			rc = 1;
			break;
		}
		if (c == 'V') {
			printf("%s %s\n", argv[0], PROFILE_VERSION);
			rc = 1;
			break;
		}
		if (c == '?') {
			fprintf(stderr, "try '%s --help'\n", argv[0]);
			rc = 2;
			break;
		}
		for (i = 0; i < n; i++)
			if (c == 256 + (int)i || (opts[i].short_flag && c == opts[i].short_flag))
				break;
		if (i == n || set_value(&opts[i], optarg, "option", 0) != 0) {
			rc = 2;
			break;
		}
	}
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'; try --help\n", argv[0], argv[optind]);
		rc = 2;
	}
	free(lo);
	return rc;
}
