/*
 * sig: signals through a self-pipe (skalibs selfpipe). The handler only
 * writes the signal number to a non-blocking pipe; the event loop polls the
 * read end and handles the signal in normal context. SIGPIPE is ignored.
 */
#ifndef CHAT_SIG_H
#define CHAT_SIG_H

/* Catch the signals in the 0-terminated list. Returns the read end of the
 * self-pipe (non-blocking, close-on-exec), or -1 with errno set. */
int sig_init(const int *sigs);
/* The next pending signal number, or 0 when none is pending. */
int sig_next(void);
/* Restore default dispositions for the caught signals (in a child after
 * fork, before exec). */
void sig_reset(void);

#endif
