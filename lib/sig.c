/*
 * sig: self-pipe signal delivery (see sig.h). Handlers do nothing but one
 * write(2), which is async-signal-safe; everything else happens in the loop.
 */
#include "sig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int sig_pipe[2] = { -1, -1 };
static int sig_list[16];
static int sig_count;

static void sig_handler(int signo)
{
	unsigned char c = (unsigned char)signo;
	int saved = errno;

	(void)!write(sig_pipe[1], &c, 1);
	errno = saved;
}

int sig_init(const int *sigs)
{
	struct sigaction sa;
	int i;

	if (sig_pipe[0] < 0) {
		if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
			return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = sig_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; sigs[i] && sig_count < 16; i++) {
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -1;
		sig_list[sig_count++] = sigs[i];
	}
	return sig_pipe[0];
}

int sig_next(void)
{
	unsigned char c;

	if (sig_pipe[0] < 0 || read(sig_pipe[0], &c, 1) != 1)
		return 0;
	return c;
}

void sig_reset(void)
{
	int i;

	for (i = 0; i < sig_count; i++)
		signal(sig_list[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
}
