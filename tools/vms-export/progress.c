/*
 * progress.c: a one-line progress bar on stderr: label, bar, bytes done of
 * the total, percentage, ETA; redrawn at most 4 times a second.  Off unless
 * main.c turned it on (stderr a terminal, or --progress; never with --quiet).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <time.h>

#include "export.h"

#define BAR_WIDTH	24
#define MIN_REDRAW	0.25		/* seconds */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
human(double bytes, char *out, size_t outlen)
{
	const char *units[] = {"B", "kB", "MB", "GB", "TB"};
	int			u = 0;

	while (bytes >= 1000.0 && u < 4)
	{
		bytes /= 1000.0;
		u++;
	}
	snprintf(out, outlen, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

static void
draw(Progress *p, double t)
{
	char		bar[BAR_WIDTH + 1], done[32], total[32], eta[32];
	double		frac = p->total > 0 ? (double) p->done / (double) p->total : 0.0;
	double		el = t - p->start;
	int			i, fill;

	if (frac > 1.0)
		frac = 1.0;
	fill = (int) (frac * BAR_WIDTH);
	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	human((double) p->done, done, sizeof(done));
	human((double) p->total, total, sizeof(total));
	if (frac > 0.0 && el > 0.5)
	{
		long		left = (long) (el / frac - el + 0.5);

		snprintf(eta, sizeof(eta), "ETA %ld:%02ld", left / 60, left % 60);
	}
	else
		snprintf(eta, sizeof(eta), "ETA -:--");
	fprintf(stderr, "\r%-10s [%s] %s / %s %3d%% %s   ", p->label, bar, done, total, (int) (frac * 100), eta);
	fflush(stderr);
	p->drawn = 1;
	p->last = t;
}

void
progress_begin(Progress *p, const char *label, int64_t total)
{
	p->label = label;
	p->total = total;
	p->done = 0;
	p->start = now_s();
	p->last = 0.0;
	p->drawn = 0;
	if (p->on)
		draw(p, p->start);
}

void
progress_set(Progress *p, int64_t done)
{
	double		t;

	p->done = done;
	if (!p->on)
		return;
	t = now_s();
	if (t - p->last >= MIN_REDRAW)
		draw(p, t);
}

void
progress_add(Progress *p, int64_t bytes)
{
	progress_set(p, p->done + bytes);
}

void
progress_end(Progress *p)
{
	if (!p->on)
		return;
	if (p->total > 0)
		p->done = p->total;
	draw(p, now_s());
	fputc('\n', stderr);
	fflush(stderr);
	p->drawn = 0;
}

void
progress_abort(Progress *p)
{
	if (p->on && p->drawn)
	{
		fputc('\n', stderr);
		fflush(stderr);
	}
	p->drawn = 0;
}
