/* profilectl.h: the commands of profilectl that live in their own files. */
#ifndef PROFILECTL_H
#define PROFILECTL_H

#include <stdint.h>
#include <stdio.h>

#include "profile/client.h"

/* Each returns the process exit status: 0 success, 1 failure, 2 usage. */
int watch_main(int argc, char **argv);
int bench_main(profile_client *c, int argc, char **argv);

/* Prints a profile as one JSON line on stdout; 0, or -1 when a string is
 * not valid UTF-8 (nothing is printed then). */
int print_profile(const profile_info *p);

/* jsonl.c: writes s as a JSON string; -1 (nothing written) when s is not
 * valid UTF-8. */
int jsonl_string(FILE *out, const char *s);
/* Writes a profile's fields as the start of a JSON object (the caller
 * adds what else it wants and the closing brace), with "position" when
 * position is neither NULL nor ""; -1 (nothing written) when a string is
 * not valid UTF-8. */
int jsonl_profile_fields(FILE *out, const char *uid, const char *username, const char *email, uint64_t version,
                         int64_t created_at, int64_t updated_at, const char *position);

#endif
