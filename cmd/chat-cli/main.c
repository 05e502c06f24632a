/*
 * chat-cli: the command-line client of the chat toolkit. One program with
 * four commands: connect (interactive, JSON lines both ways), send (one
 * message, one ack), token (HS256, RS256 and ES256 tokens for tests and
 * development) and bench (many connections, fixed publish rate, latency
 * and exact loss).
 * main() only picks the command; each lives in its own file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"
#include "log.h"

const char cli_usage_connect[] =
	"usage: chat-cli connect URL (--user U | --token T | --token-file F)\n"
	"           [--room R]... [--since SEQ] [--text] [--no-stdin]\n"
	"           [--window N] [--timeout D] [--token-in-url] [--ca F | --insecure]\n"
	"           [-v N]\n";
const char cli_usage_send[] =
	"usage: chat-cli send URL (--user U | --token T | --token-file F)\n"
	"           --room R [--json] [--timeout D] [--token-in-url]\n"
	"           [--ca F | --insecure] [-v N] MESSAGE\n";
const char cli_usage_token[] =
	"usage: chat-cli token (--secret-file F | --key-file F --alg RS256|ES256) --sub U\n"
	"           [--ttl D] [--nbf D] [--kid K] [--iss I] [--aud A]\n"
	"           [--rooms JSON_ARRAY] [--publish JSON_ARRAY] [-v N]\n";
const char cli_usage_bench[] =
	"usage: chat-cli bench URL[,URL...] [--conns N] [--rooms K] [--publishers P]\n"
	"           [--rate MSGS_PER_S] [--duration D] [--warmup D] [--size BYTES]\n"
	"           [--reconnect] [--churn PER_S] [--timeout D] [--json] [--hold]\n"
	"           [-v N]\n";

static const char help_text[] =
	"Commands:\n"
	"  connect   print every frame from the server as a JSON line; publish\n"
	"            each stdin line to the first --room (JSON objects with a\n"
	"            \"type\" are sent as they are); at end of input wait for the\n"
	"            acks and close\n"
	"  send      publish one message, print its ack\n"
	"  token     print a token: HS256 signed with the secret in a file, or\n"
	"            RS256/ES256 signed with a PEM private key\n"
	"  bench     many connections, fixed publish rate: latency percentiles,\n"
	"            throughput and an exact count of lost messages\n"
	"\n"
	"Run 'chat-cli COMMAND --help' for the options of a command, or see\n"
	"chat-cli(1).\n";

static int print_help(void)
{
	fputs("usage: chat-cli COMMAND [options]\n", stdout);
	fputs(cli_usage_connect, stdout);
	fputs(cli_usage_send, stdout);
	fputs(cli_usage_token, stdout);
	fputs(cli_usage_bench, stdout);
	fputs("       chat-cli --help | --version\n\n", stdout);
	fputs(help_text, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int rc;

	log_init("chat-cli", LOG_WARN);
	if (argc < 2)
		return cli_usage_error(NULL, "missing command");
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		rc = print_help();
	} else if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("chat-cli %s\n", CHAT_VERSION);
		rc = 0;
	} else if (!strcmp(cmd, "connect")) {
		rc = cli_connect_main(argc - 1, argv + 1);
	} else if (!strcmp(cmd, "send")) {
		rc = cli_send_main(argc - 1, argv + 1);
	} else if (!strcmp(cmd, "token")) {
		rc = cli_token_main(argc - 1, argv + 1);
	} else if (!strcmp(cmd, "bench")) {
		rc = cli_bench_main(argc - 1, argv + 1);
	} else {
		return cli_usage_error(NULL, "unknown command '%s'", cmd);
	}
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		if (rc == 0) /* else the failure was reported already */
			log_write(LOG_FATAL, "unable to write to stdout", "err=%s",
				  log_q(strerror(errno)));
		return rc ? rc : EX_IOERR;
	}
	return rc;
}
