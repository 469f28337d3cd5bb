/* profilectl.h: the commands of profilectl that live in their own files. */
#ifndef PROFILECTL_H
#define PROFILECTL_H

#include "profile/client.h"

/* Each returns the process exit status: 0 success, 1 failure, 2 usage. */
int watch_main(int argc, char **argv);
int bench_main(profile_client *c, int argc, char **argv);

/* Prints a profile as one JSON line on stdout; 0 or -1 (out of memory). */
int print_profile(const profile_info *p);

#endif
