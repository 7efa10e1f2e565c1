/*
 * login_storm: many concurrent login attempts, each one logged with its
 * wall-clock start and end, for the lockout test (test/t/007_lockout.pl).
 *
 *   login_storm CLIENTS ATTEMPTS GOOD_EVERY BAD_CONNINFO GOOD_CONNINFO
 *
 * CLIENTS processes each make ATTEMPTS connection attempts, one after the
 * other; attempt i of a client uses GOOD_CONNINFO when (i + 1) % GOOD_EVERY
 * == 0 (GOOD_EVERY 0: never, 1: always) and BAD_CONNINFO otherwise.  One line
 * per attempt on stdout:
 *
 *   client attempt good|bad start_us end_us ok|fail
 *
 * Times are microseconds since the Unix epoch (CLOCK_REALTIME, the clock the
 * server stamps locks with).  Lines are written with one write() each, so
 * the processes' lines do not interleave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long) ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void
run_client(int client, int attempts, int good_every, const char *bad, const char *good)
{
	int			i;

	for (i = 0; i < attempts; i++)
	{
		int			use_good = good_every > 0 && (i + 1) % good_every == 0;
		long long	start = now_us();
		PGconn	   *conn = PQconnectdb(use_good ? good : bad);
		int			ok = PQstatus(conn) == CONNECTION_OK;
		long long	end = now_us();
		char		line[160];
		int			len;

		PQfinish(conn);
		len = snprintf(line, sizeof(line), "%d %d %s %lld %lld %s\n",
					   client, i, use_good ? "good" : "bad", start, end, ok ? "ok" : "fail");
		if (write(STDOUT_FILENO, line, len) != len)
			_exit(2);
	}
}

int
main(int argc, char **argv)
{
	int			clients,
				attempts,
				good_every,
				c,
				status,
				failed = 0;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s CLIENTS ATTEMPTS GOOD_EVERY BAD_CONNINFO GOOD_CONNINFO\n", argv[0]);
		return 1;
	}
	clients = atoi(argv[1]);
	attempts = atoi(argv[2]);
	good_every = atoi(argv[3]);
	if (clients < 1 || clients > 200 || attempts < 1)
	{
		fprintf(stderr, "login_storm: bad CLIENTS or ATTEMPTS\n");
		return 1;
	}
	for (c = 0; c < clients; c++)
	{
		pid_t		pid = fork();

		if (pid < 0)
		{
			perror("fork");
			return 1;
		}
		if (pid == 0)
		{
			run_client(c, attempts, good_every, argv[4], argv[5]);
			_exit(0);
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	return failed ? 1 : 0;
}
