/* log.h: one-line log messages on stderr, with time and level.
 * The level is set once at start-up (log_set_level) before threads start. */
#ifndef PROFILE_LOG_H
#define PROFILE_LOG_H

enum { PROFILE_LOG_ERROR, PROFILE_LOG_WARN, PROFILE_LOG_INFO, PROFILE_LOG_DEBUG };

void log_set_level(int level);
void log_set_name(const char *name);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(PROFILE_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(PROFILE_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(PROFILE_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(PROFILE_LOG_DEBUG, __VA_ARGS__)

#endif
