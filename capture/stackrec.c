/* capture --stack, user side (see stackrec.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../lib/u64map.h"
#include "stackrec.h"

struct pair {
	int32_t u, k; /* kernel stack ids, negative = none */
};

struct tj_stackrec {
	struct tj_u64map ids;   /* (u, k) -> log id */
	struct pair *pairs;     /* by log id - 1 */
	size_t npairs, cap;
	struct tj_u64map seen;  /* pids whose maps were read */
	uint32_t *live;         /* pids to re-read */
	size_t nlive, caplive;
	struct tj_stacks st;
	uint64_t missing;       /* events that asked for a stack and got none */
};

struct tj_stackrec *tj_stackrec_new(void)
{
	struct tj_stackrec *sr = calloc(1, sizeof(*sr));
	if (sr) {
		tj_u64map_init(&sr->ids);
		tj_u64map_init(&sr->seen);
		tj_stacks_init(&sr->st);
	}
	return sr;
}

void tj_stackrec_free(struct tj_stackrec *sr)
{
	if (!sr)
		return;
	tj_u64map_free(&sr->ids);
	tj_u64map_free(&sr->seen);
	tj_stacks_free(&sr->st);
	free(sr->pairs);
	free(sr->live);
	free(sr);
}

static void note_pid(struct tj_stackrec *sr, uint32_t pid)
{
	int added = 0;

	if (pid == 0 || !tj_u64map_upsert(&sr->seen, pid, &added) || !added)
		return;
	if (tj_stacks_read_proc_maps(&sr->st, pid) < 0)
		return; /* gone already: its frames stay addresses */
	if (sr->nlive == sr->caplive) {
		size_t cap = sr->caplive ? 2 * sr->caplive : 16;
		uint32_t *n = realloc(sr->live, cap * sizeof(*n));
		if (!n)
			return;
		sr->live = n;
		sr->caplive = cap;
	}
	sr->live[sr->nlive++] = pid;
}

uint32_t tj_stackrec_note(struct tj_stackrec *sr, uint32_t pid, int32_t ustack,
			  int32_t kstack)
{
	struct pair p = { ustack < 0 ? -1 : ustack, kstack < 0 ? -1 : kstack };
	uint64_t key = (uint64_t)(uint32_t)p.u << 32 | (uint32_t)p.k, *v;
	int added = 0;

	if (p.u < 0 && p.k < 0) {
		sr->missing++;
		return 0;
	}
	if (p.u >= 0)
		note_pid(sr, pid);
	if (!(v = tj_u64map_upsert(&sr->ids, key, &added)))
		return 0;
	if (added) {
		if (sr->npairs == sr->cap) {
			size_t cap = sr->cap ? 2 * sr->cap : 256;
			struct pair *n = realloc(sr->pairs, cap * sizeof(*n));
			if (!n) {
				tj_u64map_del(&sr->ids, key);
				return 0;
			}
			sr->pairs = n;
			sr->cap = cap;
		}
		sr->pairs[sr->npairs++] = p;
		*v = sr->npairs;
	}
	return (uint32_t)*v;
}

uint64_t tj_stackrec_missing(const struct tj_stackrec *sr)
{
	return sr->missing;
}

void tj_stackrec_refresh(struct tj_stackrec *sr)
{
	size_t j = 0;

	for (size_t i = 0; i < sr->nlive; i++)
		if (tj_stacks_read_proc_maps(&sr->st, sr->live[i]) >= 0)
			sr->live[j++] = sr->live[i];
	sr->nlive = j;
}

/* /proc/kallsyms, sorted by address: names for kernel frames. */
struct ksym {
	uint64_t addr;
	char *name;
};

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static struct ksym *load_kallsyms(size_t *n)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	struct ksym *v = NULL;
	size_t cap = 0;
	char line[512], name[256], type;
	uint64_t addr;

	*n = 0;
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNx64 " %c %255s", &addr, &type, name) != 3 || addr == 0)
			continue;
		if (type != 't' && type != 'T')
			continue;
		if (*n == cap) {
			size_t c = cap ? 2 * cap : 65536;
			struct ksym *nv = realloc(v, c * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
			cap = c;
		}
		if (!(v[*n].name = strdup(name)))
			break;
		v[(*n)++].addr = addr;
	}
	fclose(f);
	if (*n)
		qsort(v, *n, sizeof(*v), ksym_cmp);
	return v;
}

static const char *ksym_of(const struct ksym *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? v[lo - 1].name : "";
}

int tj_stackrec_finish(struct tj_stackrec *sr, struct tj_capture *cap,
		       const struct tj_stacks **out, struct tj_err *err)
{
	uint64_t user[TJC_STACK_DEPTH], kern[TJC_STACK_DEPTH];
	const char *names[TJC_STACK_DEPTH];
	struct ksym *ks = NULL;
	size_t nks = 0;
	int rc = TJ_OK;

	tj_stackrec_refresh(sr);
	for (size_t i = 0; i < sr->npairs && rc == TJ_OK; i++) {
		int nu = tj_capture_stack(cap, sr->pairs[i].u, user, err);
		int nk = nu < 0 ? 0 : tj_capture_stack(cap, sr->pairs[i].k, kern, err);
		if (nu < 0 || nk < 0) {
			rc = nu < 0 ? nu : nk;
			break;
		}
		if (nk > 0 && !ks)
			ks = load_kallsyms(&nks);
		for (int j = 0; j < nk; j++)
			names[j] = ksym_of(ks, nks, kern[j]);
		if (tj_stacks_add(&sr->st, (uint32_t)(i + 1), user, (unsigned)nu, kern,
				  names, (unsigned)nk) < 0)
			rc = tj_errf(err, TJ_E_NOMEM, "capture: out of memory for stacks");
	}
	for (size_t i = 0; i < nks; i++)
		free(ks[i].name);
	free(ks);
	tj_stacks_sort(&sr->st);
	*out = &sr->st;
	return rc;
}
