/* Simulation core: the timed-event queue (a binary heap ordered by time,
 * then by insertion, so ties resolve the same way every run), node clocks,
 * processes with Linux-like fd and tid allocation, and executors. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "gen_sim.h"

void *sim_alloc(struct sim *s, size_t n)
{
	void *p = calloc(1, n);
	if (!p && !s->failed) {
		s->failed = 1;
		tj_errf(s->err, TJ_E_NOMEM, "gen: out of memory");
	}
	return p;
}

struct sim_obj {
	struct sim_obj *next, **pprev;
};
_Static_assert(sizeof(struct sim_obj) % _Alignof(max_align_t) == 0,
	       "a live object's link must keep the object aligned");

void *sim_obj_new(struct sim *s, size_t n)
{
	struct sim_obj *o = sim_alloc(s, sizeof(*o) + n);

	if (!o)
		return NULL;
	o->next = s->live;
	o->pprev = &s->live;
	if (s->live)
		s->live->pprev = &o->next;
	s->live = o;
	return o + 1;
}

void sim_obj_free(void *p)
{
	struct sim_obj *o;

	if (!p)
		return;
	o = (struct sim_obj *)p - 1;
	*o->pprev = o->next;
	if (o->next)
		o->next->pprev = o->pprev;
	free(o);
}

void sim_obj_free_all(struct sim *s)
{
	while (s->live)
		sim_obj_free(s->live + 1);
}

static int ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void sim_at(struct sim *s, uint64_t t, sim_fn fn, void *obj, uint64_t arg)
{
	if (s->nheap == s->capheap) {
		size_t nc = s->capheap ? s->capheap * 2 : 4096;
		struct sim_ev *nh = realloc(s->heap, nc * sizeof(*nh));
		if (!nh) {
			if (!s->failed)
				tj_errf(s->err, TJ_E_NOMEM, "gen: out of memory (event queue)");
			s->failed = 1;
			return;
		}
		s->heap = nh;
		s->capheap = nc;
	}
	if (t < s->now)
		t = s->now;
	struct sim_ev ev = { t, s->seq++, fn, obj, arg };
	size_t i = s->nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!ev_less(&ev, &s->heap[up]))
			break;
		s->heap[i] = s->heap[up];
		i = up;
	}
	s->heap[i] = ev;
	if (s->nheap > s->st->peak_inflight)
		s->st->peak_inflight = s->nheap;
}

int sim_pop(struct sim *s, struct sim_ev *out)
{
	if (s->nheap == 0)
		return 0;
	*out = s->heap[0];
	struct sim_ev last = s->heap[--s->nheap];
	size_t i = 0, n = s->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ev_less(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_less(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n)
		s->heap[i] = last;
	s->now = out->t;
	return 1;
}

double sim_uniform(struct sim *s, double lo, double hi)
{
	return lo + (hi - lo) * gsl_rng_uniform(s->rng);
}

/* A syscall's own cost: entry/exit plus copying the bytes (~4 GB/s). */
uint64_t sim_syscall_ns(struct sim *s, uint64_t bytes)
{
	return (uint64_t)sim_uniform(s, 1500, 6000) + bytes / 4;
}

/* From "data is there" to "the blocked thread runs": a scheduler wakeup,
 * plus the node's own scheduling latency when its spec sets one (busy
 * cores, timer slack): the draws are made only then, so a spec without
 * `wake` gives the same bytes as before the option existed. */
uint64_t sim_wake_ns(struct sim *s, const struct noderun *n)
{
	uint64_t t = (uint64_t)sim_uniform(s, 4000, 25000);
	return t + sim_sched_ns(s, n);
}

uint64_t sim_sched_ns(struct sim *s, const struct noderun *n)
{
	const struct gen_node_spec *ns = n ? n->spec : NULL;
	if (!ns || !ns->has_wake)
		return 0;
	const struct gen_dist *d = &ns->wake;
	if (ns->wake_tail_p > 0 && gsl_rng_uniform(s->rng) < ns->wake_tail_p)
		d = &ns->wake_tail;
	double x = gen_dist_sample(d, s->rng);
	return (uint64_t)(x < GEN_MAX_WAKE_NS ? x : GEN_MAX_WAKE_NS);
}

uint64_t sim_local_ts(const struct noderun *n, uint64_t now)
{
	return (uint64_t)(n->mono_base + (double)now * n->rate);
}

uint32_t node_tid(struct noderun *n)
{
	uint32_t t = n->next_pid++;
	if (n->next_pid > 4194303) /* pid_max: wrap like Linux */
		n->next_pid = 300;
	return t;
}

struct proc *proc_new(struct sim *s, struct noderun *n)
{
	struct proc *p = sim_alloc(s, sizeof(*p));
	if (!p)
		return NULL;
	p->node = n;
	p->pid = node_tid(n);
	p->fdwords = 4;
	p->fdbits = sim_alloc(s, p->fdwords * sizeof(uint64_t));
	if (!p->fdbits) {
		free(p);
		return NULL;
	}
	/* stdio, the listening socket, an epoll fd, a log file... */
	p->fdbits[0] = 0xff;
	return p;
}

void proc_free(struct proc *p)
{
	if (p) {
		free(p->fdbits);
		free(p);
	}
}

/* Linux hands out the lowest free descriptor, so fds are reused at once. */
int32_t proc_fd_alloc(struct sim *s, struct proc *p)
{
	for (uint32_t w = 0; w < p->fdwords; w++) {
		if (p->fdbits[w] != UINT64_MAX) {
			int b = __builtin_ctzll(~p->fdbits[w]);
			p->fdbits[w] |= 1ull << b;
			return (int32_t)(w * 64 + (uint32_t)b);
		}
	}
	uint32_t nw = p->fdwords * 2;
	uint64_t *nb = realloc(p->fdbits, nw * sizeof(uint64_t));
	if (!nb) {
		if (!s->failed)
			tj_errf(s->err, TJ_E_NOMEM, "gen: out of memory (fd table)");
		s->failed = 1;
		return -1;
	}
	memset(nb + p->fdwords, 0, (nw - p->fdwords) * sizeof(uint64_t));
	int32_t fd = (int32_t)(p->fdwords * 64);
	nb[p->fdwords] = 1;
	p->fdbits = nb;
	p->fdwords = nw;
	return fd;
}

void proc_fd_free(struct proc *p, int32_t fd)
{
	if (fd >= 0 && (uint32_t)fd / 64 < p->fdwords)
		p->fdbits[fd / 64] &= ~(1ull << (fd % 64));
}

/* main_thread: the first thread is the process's own (tid == pid). */
struct exec *exec_new(struct sim *s, struct proc *p, int nthreads, int main_thread)
{
	struct exec *ex = sim_alloc(s, sizeof(*ex));
	if (!ex)
		return NULL;
	ex->thr = sim_alloc(s, (size_t)nthreads * sizeof(*ex->thr));
	ex->free = sim_alloc(s, (size_t)nthreads * sizeof(*ex->free));
	if (!ex->thr || !ex->free) {
		exec_free(ex);
		return NULL;
	}
	ex->proc = p;
	ex->n = nthreads;
	for (int i = 0; i < nthreads; i++) {
		ex->thr[i].tid = (i == 0 && main_thread) ? p->pid : node_tid(p->node);
		ex->thr[i].ex = ex;
	}
	/* the free stack pops thread 0 first */
	for (int i = 0; i < nthreads; i++)
		ex->free[i] = &ex->thr[nthreads - 1 - i];
	ex->nfree = nthreads;
	return ex;
}

void exec_free(struct exec *ex)
{
	if (!ex)
		return;
	while (ex->head) {
		struct task *t = ex->head;
		ex->head = t->next;
		free(t);
	}
	free(ex->thr);
	free(ex->free);
	free(ex);
}

void exec_submit(struct sim *s, struct exec *ex, sim_fn fn, void *obj)
{
	if (ex->nfree) {
		if (ex->pick_random && ex->nfree > 1) {
			unsigned long i = gsl_rng_uniform_int(s->rng, (unsigned long)ex->nfree);
			struct thr *pick = ex->free[i];
			ex->free[i] = ex->free[ex->nfree - 1];
			ex->free[ex->nfree - 1] = pick;
		}
		struct thr *t = ex->free[--ex->nfree];
		sim_at(s, s->now + sim_wake_ns(s, ex->proc->node), fn, obj, thr_arg(t));
		return;
	}
	struct task *tk = sim_alloc(s, sizeof(*tk));
	if (!tk)
		return;
	tk->fn = fn;
	tk->obj = obj;
	if (ex->tail)
		ex->tail->next = tk;
	else
		ex->head = tk;
	ex->tail = tk;
}

void exec_push_front(struct sim *s, struct exec *ex, sim_fn fn, void *obj)
{
	struct task *tk = sim_alloc(s, sizeof(*tk));
	if (!tk)
		return;
	tk->fn = fn;
	tk->obj = obj;
	tk->next = ex->head;
	ex->head = tk;
	if (!ex->tail)
		ex->tail = tk;
}

/* The thread finished its task: run the next queued one, or go idle. */
void exec_release(struct sim *s, struct thr *t)
{
	struct exec *ex = t->ex;
	struct task *tk = ex->head;
	if (tk) {
		ex->head = tk->next;
		if (!ex->head)
			ex->tail = NULL;
		sim_at(s, s->now + (uint64_t)sim_uniform(s, 500, 3000), tk->fn,
		       tk->obj, thr_arg(t));
		free(tk);
		return;
	}
	ex->free[ex->nfree++] = t;
}
