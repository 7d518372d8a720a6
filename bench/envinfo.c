/* What a results folder records so that a run can be redone and its
 * speed figures read in context. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include "../lib/version.h"

static void cpu_model(char *buf, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");
	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon) {
			snprintf(buf, len, "%s", colon + 2);
			buf[strcspn(buf, "\n")] = '\0';
			break;
		}
	}
	fclose(f);
}

json_t *bench_envinfo(void)
{
	char cpu[256], date[32], host[256] = "";
	struct utsname u;
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cpu_model(cpu, sizeof(cpu));
	gethostname(host, sizeof(host) - 1);
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	char kernel[sizeof(u.release) + sizeof(u.machine) + 2];
	snprintf(kernel, sizeof(kernel), "%s %s", u.release, u.machine);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
			 "version", tj_version,
			 "compiler", "cc " __VERSION__,
			 "cpu", cpu,
			 "kernel", kernel,
			 "cores", (json_int_t)sysconf(_SC_NPROCESSORS_ONLN),
			 "date_utc", date,
			 "host", host);
}
