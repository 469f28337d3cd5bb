/* bounded.h: a closing step with a time bound.
 *
 * nng 1.5.2's socket close sometimes never returns (upstream #1543,
 * #1813, fixed later). A process that has already made safe what
 * matters (Kafka flushed, stores closed) must still stop: it runs such a
 * step here and moves on when the step overruns.
 */
#ifndef PROFILE_BOUNDED_H
#define PROFILE_BOUNDED_H

/* Runs fn(arg) on a thread of its own and waits for it at most timeout_ms.
 * 1 when it finished (or ran on this thread, when no thread could be
 * made); 0 when it overran: it is left running (its arg stays referenced,
 * so nothing it holds is reported as leaked) and what is left to it is the
 * process's exit. what names the step in the warning logged then. */
int bounded_run(void (*fn)(void *arg), void *arg, int timeout_ms, const char *what);

#endif
