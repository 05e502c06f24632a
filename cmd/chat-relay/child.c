/*
 * child: CMD ARGS... as the relay's child, its stdin and stdout on pipes and
 * its stderr shared with the relay (so its log lines reach the same
 * supervisor log), with what the relay tells it in its environment
 * (CHAT_NODE, CHAT_INGEST_SHARDS). The relay owns the pipes' other ends.
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sig.h"

pid_t relay_child_spawn(char **argv, char *const *env, int *to_child,
			int *from_child)
{
	int in[2], out[2], saved;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) < 0)
		goto out_close_in;
	pid = fork();
	if (pid < 0)
		goto out_close_out;
	if (pid == 0) {
		sig_reset();
		if (dup2(in[0], STDIN_FILENO) < 0 ||
		    dup2(out[1], STDOUT_FILENO) < 0)
			_exit(127);
		/* Only the child's copy of the environment changes; the
		 * strings stay valid until exec (they are the parent's, and
		 * the parent's memory is the child's until then). */
		for (; env && *env; env++)
			if (putenv(*env) < 0)
				_exit(126);
		execvp(argv[0], argv);
		saved = errno;
		log_write(LOG_FATAL, "unable to run child", "cmd=%s err=%s",
			  log_q(argv[0]), log_q(strerror(saved)));
		_exit(saved == ENOENT ? 127 : 126);
	}
	close(in[0]);
	close(out[1]);
	fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
	*to_child = in[1];
	*from_child = out[0];
	return pid;
out_close_out:
	saved = errno;
	close(out[0]);
	close(out[1]);
	errno = saved;
out_close_in:
	saved = errno;
	close(in[0]);
	close(in[1]);
	errno = saved;
	return -1;
}

int relay_child_exit_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 70;
}
