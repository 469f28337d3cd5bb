/* log.c: see log.h. One fprintf per line, so lines from threads never mix. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int log_level = PROFILE_LOG_INFO;
static const char *log_name = "profile";

void
log_set_level(int level)
{
	log_level = level;
}

void
log_set_name(const char *name)
{
	log_name = name;
}

void
log_write(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char msg[1024], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, ts.tv_nsec / 1000000, log_name, names[level], msg);
}
