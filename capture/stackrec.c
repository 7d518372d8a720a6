/* capture --stack, user side (see stackrec.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "../lib/u64map.h"
#include "../lib/util.h"
#include "stackrec.h"

struct pair {
	int32_t u, k;    /* kernel stack ids, negative = none */
	uint64_t caller; /* return address into the wrapper's caller, 0 = none */
	uint32_t next;   /* log id of another pair with the same u, k; 0 = none */
};

/* Call targets already resolved: a return address -> what its call
 * leads to, for one pid at a time (a word seen again in another process
 * is resolved again). */
struct target {
	uint32_t pid;
	uint64_t ret, fn;
};

struct tj_stackrec {
	struct tj_u64map ids;   /* (u, k) -> log id of the first pair with them */
	struct tj_u64map tix;   /* return address -> index + 1 in targets */
	struct target *targets;
	size_t ntargets, captargets;
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
		tj_u64map_init(&sr->tix);
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
	tj_u64map_free(&sr->tix);
	tj_u64map_free(&sr->seen);
	free(sr->targets);
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
	if (tj_grow((void **)&sr->live, &sr->caplive, sr->nlive + 1, sizeof(*sr->live)) < 0)
		return;
	sr->live[sr->nlive++] = pid;
}

static int read_mem(uint32_t pid, uint64_t addr, void *buf, size_t n)
{
	struct iovec l = { buf, n }, r = { (void *)(uintptr_t)addr, n };
	return process_vm_readv((pid_t)pid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -1;
}

static int32_t rel32(const uint8_t *b)
{
	int32_t v;
	memcpy(&v, b, 4);
	return v;
}

/* Where the call that returns to ret leads, in pid: the function
 * (through a PLT stub or a GOT slot), or 0 when the bytes before ret are
 * no call we can follow. */
static uint64_t call_target(uint32_t pid, uint64_t ret)
{
	uint8_t b[8], plt[16];
	uint64_t got = 0, fn = 0;

	if (ret < 8 || read_mem(pid, ret - 8, b, sizeof(b)))
		return 0;
	if (b[2] == 0xff && b[3] == 0x15) {          /* call *disp32(%rip) */
		got = ret + (int64_t)rel32(b + 4);
	} else if (b[3] == 0xe8) {                   /* call rel32 */
		uint64_t t = ret + (int64_t)rel32(b + 4);
		size_t k = 0;
		if (read_mem(pid, t, plt, sizeof(plt)))
			return 0;
		if (memcmp(plt, "\xf3\x0f\x1e\xfa", 4) == 0) /* endbr64 */
			k = 4;
		if (plt[k] == 0xf2 && plt[k + 1] == 0xff && plt[k + 2] == 0x25) /* bnd jmp *GOT */
			got = t + k + 7 + (int64_t)rel32(plt + k + 3);
		else if (plt[k] == 0xff && plt[k + 1] == 0x25) /* jmp *GOT */
			got = t + k + 6 + (int64_t)rel32(plt + k + 2);
		else
			return t; /* the function itself */
	} else {
		return 0;
	}
	if (read_mem(pid, got, &fn, sizeof(fn)))
		return 0;
	return fn;
}

/* A wrapper is short: the syscall lies within this many bytes of the
 * function's start (glibc's are under 200). */
#define WRAPPER_MAX 4096

/* The word whose call leads to the function holding ip: of those whose
 * target starts at or before ip (within WRAPPER_MAX), the one with the
 * nearest start, since a call to a function just before the wrapper
 * also lands below ip; of equals, the lowest on the stack. */
static uint64_t choose(const struct tjc_caller *c, const uint64_t fn[TJC_CALLER_WORDS])
{
	uint64_t best = 0, best_fn = 0;

	for (int i = 0; i < TJC_CALLER_WORDS; i++)
		if (fn[i] && fn[i] <= c->ip && c->ip - fn[i] < WRAPPER_MAX && fn[i] > best_fn) {
			best = c->word[i];
			best_fn = fn[i];
		}
	return best;
}

uint64_t tj_stackrec_caller(uint32_t pid, const struct tjc_caller *c)
{
	uint64_t fn[TJC_CALLER_WORDS];

	if (!c || !c->ip)
		return 0;
	for (int i = 0; i < TJC_CALLER_WORDS; i++)
		fn[i] = c->word[i] >= 8 ? call_target(pid, c->word[i]) : 0;
	return choose(c, fn);
}

/* Call targets kept at most (24 bytes each, and the index). */
#define TARGETS_MAX (1u << 16)

/* tj_stackrec_caller, with the call targets of return addresses cached. */
static uint64_t find_caller(struct tj_stackrec *sr, uint32_t pid, const struct tjc_caller *c)
{
	uint64_t fn[TJC_CALLER_WORDS];

	if (!c || !c->ip)
		return 0;
	/* Most words are data (buffers, counts, saved registers) that differ
	 * from call to call: the cache starts over rather than grow without
	 * end on a long capture. */
	if (sr->ntargets >= TARGETS_MAX) {
		tj_u64map_free(&sr->tix);
		tj_u64map_init(&sr->tix);
		sr->ntargets = 0;
	}
	for (int i = 0; i < TJC_CALLER_WORDS; i++) {
		uint64_t w = c->word[i], *ix;
		struct target *t = NULL;
		int added = 0;
		fn[i] = 0;
		if (w < 8)
			continue;
		if ((ix = tj_u64map_upsert(&sr->tix, w, &added)) && !added)
			t = &sr->targets[*ix - 1];
		if (t && t->pid == pid) {
			fn[i] = t->fn;
			continue;
		}
		fn[i] = call_target(pid, w);
		if (ix && !t) {
			if (tj_grow((void **)&sr->targets, &sr->captargets, sr->ntargets + 1,
				    sizeof(*sr->targets)) < 0) {
				tj_u64map_del(&sr->tix, w);
				continue;
			}
			t = &sr->targets[sr->ntargets++];
			*ix = sr->ntargets;
		}
		*t = (struct target){ pid, w, fn[i] };
	}
	return choose(c, fn);
}

static uint32_t new_pair(struct tj_stackrec *sr, struct pair p)
{
	if (tj_grow((void **)&sr->pairs, &sr->cap, sr->npairs + 1, sizeof(*sr->pairs)) < 0)
		return 0;
	sr->pairs[sr->npairs++] = p;
	return (uint32_t)sr->npairs;
}

uint32_t tj_stackrec_note(struct tj_stackrec *sr, uint32_t pid, int32_t ustack,
			  int32_t kstack, const struct tjc_caller *c)
{
	struct pair p = { ustack < 0 ? -1 : ustack, kstack < 0 ? -1 : kstack, 0, 0 };
	uint64_t key = (uint64_t)(uint32_t)p.u << 32 | (uint32_t)p.k, *v;
	uint32_t id;
	int added = 0;

	if (p.u < 0 && p.k < 0) {
		sr->missing++;
		return 0;
	}
	if (p.u >= 0) {
		note_pid(sr, pid);
		p.caller = find_caller(sr, pid, c);
	}
	if (!(v = tj_u64map_upsert(&sr->ids, key, &added)))
		return 0;
	if (added) {
		if (!(id = new_pair(sr, p)))
			tj_u64map_del(&sr->ids, key);
		else
			*v = id;
		return id;
	}
	/* The same kernel stacks with another caller: a pair of its own,
	 * chained to the first. */
	for (id = (uint32_t)*v;; id = sr->pairs[id - 1].next) {
		if (sr->pairs[id - 1].caller == p.caller)
			return id;
		if (!sr->pairs[id - 1].next)
			break;
	}
	{
		uint32_t last = id;
		if ((id = new_pair(sr, p)))
			sr->pairs[last - 1].next = id;
	}
	return id;
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
		int nu = tj_capture_stack(cap, 1, sr->pairs[i].u, user, err);
		int nk = nu < 0 ? 0 : tj_capture_stack(cap, 0, sr->pairs[i].k, kern, err);
		if (nu < 0 || nk < 0) {
			rc = nu < 0 ? nu : nk;
			break;
		}
		if (nk > 0 && !ks)
			ks = load_kallsyms(&nks);
		for (int j = 0; j < nk; j++)
			names[j] = ksym_of(ks, nks, kern[j]);
		/* The wrapper's caller, which the unwinder skipped, after the
		 * wrapper (the deepest caller goes if the stack is full). */
		if (sr->pairs[i].caller && nu >= 1 && (nu < 2 || user[1] != sr->pairs[i].caller)) {
			if (nu == TJC_STACK_DEPTH)
				nu--;
			memmove(user + 2, user + 1, (size_t)(nu - 1) * sizeof(user[0]));
			user[1] = sr->pairs[i].caller;
			nu++;
		}
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
