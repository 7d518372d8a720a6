/* The evlog writer and reader: round trips, damage salvage, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>
#include "lib/evlog.h"
#include "test_util.h"

struct tmp {
	char dir[64];
	char path[128];
};

static void tmp_make(struct tmp *t)
{
	strcpy(t->dir, "/tmp/test_evlog.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/a.evlog", t->dir);
}

static void tmp_drop(struct tmp *t)
{
	unlink(t->path);
	rmdir(t->dir);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static size_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (size_t)p[3] << 24;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Events with storage for their payloads. */
struct evset {
	struct tj_event *ev;
	uint8_t (*pay)[TJ_PAYLOAD_MAX];
	size_t n;
};

static void evset_alloc(struct evset *s, size_t n)
{
	s->ev = calloc(n, sizeof(*s->ev));
	s->pay = calloc(n, sizeof(*s->pay));
	s->n = n;
	assert_non_null(s->ev);
	assert_non_null(s->pay);
}

static void evset_free(struct evset *s)
{
	free(s->ev);
	free(s->pay);
}

static void set_payload(struct evset *s, size_t i, unsigned len)
{
	for (unsigned k = 0; k < len; k++)
		s->pay[i][k] = (uint8_t)rnd();
	s->ev[i].payload = len ? s->pay[i] : NULL;
	s->ev[i].payload_len = (uint16_t)len;
}

/* Realistic-ish: a few sockets, sends and receives with offsets. */
static void make_plain(struct evset *s, size_t n, uint64_t seed)
{
	rng_state = seed;
	evset_alloc(s, n);
	uint64_t ts = 1000000000ULL, off[8][2] = { { 0 } };
	for (size_t i = 0; i < n; i++) {
		struct tj_event *e = &s->ev[i];
		unsigned k = (unsigned)(rnd() % 8);
		ts += rnd() % 100000;
		e->ts_ns = ts;
		e->node = 3;
		e->sock = 40000 + k;
		e->pid = 100 + k % 3;
		e->tid = e->pid + k % 2;
		e->fd = 5 + (int)k;
		e->type = rnd() % 2 ? TJ_EV_SEND : TJ_EV_RECV;
		e->family = k % 2 ? AF_INET6 : AF_INET;
		e->laddr[0] = 10;
		e->laddr[3] = 1;
		e->raddr[0] = 10;
		e->raddr[3] = (uint8_t)(2 + k);
		if (e->family == AF_INET6)
			e->raddr[15] = 1;
		e->lport = 8080;
		e->rport = (uint16_t)(50000 + k);
		e->bytes = (int64_t)(rnd() % 2000) + 1;
		int d = e->type == TJ_EV_RECV;
		e->offset = off[k][d];
		off[k][d] += (uint64_t)e->bytes;
	}
}

/* Every field anywhere in its range, every type, odd payload sizes. */
static void make_wild(struct evset *s, size_t n, uint64_t seed)
{
	rng_state = seed;
	evset_alloc(s, n);
	static const unsigned plen[] = { 0, 1, 256, 17, 0, 255 };
	for (size_t i = 0; i < n; i++) {
		struct tj_event *e = &s->ev[i];
		uint64_t r = rnd();
		switch (r % 4) {
		case 0: e->ts_ns = rnd(); break;
		case 1: e->ts_ns = UINT64_MAX; break;
		case 2: e->ts_ns = 0; break;
		default: e->ts_ns = i > 0 ? s->ev[i - 1].ts_ns + 1 : 1; break;
		}
		e->sock = r % 3 ? rnd() % 16 : (r % 5 ? UINT64_MAX : rnd());
		e->bytes = (r >> 8) % 3 == 0 ? INT64_MIN :
			   (r >> 8) % 3 == 1 ? INT64_MAX : (int64_t)rnd();
		e->offset = (r >> 12) % 2 ? UINT64_MAX : rnd();
		e->node = (r >> 16) % 2 ? UINT32_MAX : (uint32_t)rnd();
		e->pid = (r >> 17) % 2 ? UINT32_MAX : (uint32_t)rnd() % 3;
		e->tid = (r >> 18) % 2 ? 0 : (uint32_t)rnd();
		e->fd = (r >> 19) % 3 == 0 ? INT32_MIN :
			(r >> 19) % 3 == 1 ? INT32_MAX : -1;
		e->type = (uint8_t)(i % (TJ_EV__COUNT + 2));
		e->family = (r >> 21) % 3 == 0 ? 0 :
			    (r >> 21) % 3 == 1 ? AF_INET : AF_INET6;
		e->lport = (uint16_t)rnd();
		e->rport = (r >> 23) % 2 ? UINT16_MAX : 0;
		e->flags = (uint32_t)rnd();
		e->arg = (r >> 24) % 2 ? UINT32_MAX : 0;
		e->stack_id = (uint32_t)rnd();
		e->tcp_seq = (r >> 25) % 2 ? UINT32_MAX : (uint32_t)rnd();
		for (int k = 0; k < 16; k++) {
			e->laddr[k] = (r >> 26) % 2 ? 0xff : (uint8_t)rnd();
			e->raddr[k] = k < 4 ? (uint8_t)rnd() : 0;
		}
		set_payload(s, i, plen[i % 6]);
	}
}

static struct tj_evlog_header test_header(void)
{
	struct tj_evlog_header h;
	memset(&h, 0, sizeof(h));
	h.node = 3;
	strcpy(h.hostname, "node-three");
	strcpy(h.kernel, "6.1.0-test");
	h.clock_mono_ns = 123456789;
	h.clock_real_ns = 1700000000123456789ULL;
	h.capture_flags = TJ_CAP_PAYLOAD | TJ_CAP_SYNTHETIC;
	h.payload_max = 256;
	strcpy(h.options, "test_evlog --seed 1");
	return h;
}

static void write_log(const char *path, const struct evset *s,
		      unsigned block_events)
{
	struct tj_evlog_header h = test_header();
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_create(&w, path, &h, 0, &err), 0);
	if (block_events)
		assert_int_equal(tj_evlog_set_block_events(w, block_events), 0);
	for (size_t i = 0; i < s->n; i++)
		assert_int_equal(tj_evlog_write(w, &s->ev[i], &err), 0);
	tj_evlog_add_drops(w, TJ_DROP_RINGBUF, 7);
	assert_int_equal(tj_evlog_close(w, &err), 0);
}

static void assert_event_equal(const struct tj_event *a, const struct tj_event *b)
{
	assert_int_equal(a->ts_ns, b->ts_ns);
	assert_int_equal(a->sock, b->sock);
	assert_true(a->bytes == b->bytes);
	assert_int_equal(a->offset, b->offset);
	assert_int_equal(a->node, b->node);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->tid, b->tid);
	assert_int_equal(a->fd, b->fd);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->family, b->family);
	assert_int_equal(a->lport, b->lport);
	assert_int_equal(a->rport, b->rport);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->arg, b->arg);
	assert_int_equal(a->stack_id, b->stack_id);
	assert_int_equal(a->tcp_seq, b->tcp_seq);
	assert_memory_equal(a->laddr, b->laddr, 16);
	assert_memory_equal(a->raddr, b->raddr, 16);
	assert_int_equal(a->payload_len, b->payload_len);
	if (a->payload_len)
		assert_memory_equal(a->payload, b->payload, a->payload_len);
	else
		assert_null(b->payload);
}

/* Read every event of a reader, checking each against s in order;
 * returns how many. */
static size_t read_check(struct tj_evlog_reader *r, const struct evset *s)
{
	const struct tj_event *ev;
	struct tj_err err = { 0 };
	size_t n = 0;
	int rc;
	while ((rc = tj_evlog_next(r, &ev, &err)) == 1) {
		assert_true(n < s->n);
		assert_event_equal(&s->ev[n], ev);
		n++;
	}
	assert_int_equal(rc, 0);
	return n;
}

static void round_trip(struct evset *s, unsigned block_events)
{
	struct tmp t;
	tmp_make(&t);
	write_log(t.path, s, block_events);
	struct stat st;
	assert_int_equal(stat(t.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_open(&r, t.path, &err), 0);
	const struct tj_evlog_header *h = tj_evlog_header(r);
	assert_int_equal(h->version_major, TJ_EVENT_VERSION_MAJOR);
	assert_int_equal(h->node, 3);
	assert_string_equal(h->hostname, "node-three");
	assert_string_equal(h->kernel, "6.1.0-test");
	assert_string_equal(h->options, "test_evlog --seed 1");
	assert_int_equal(h->clock_real_ns, 1700000000123456789ULL);
	assert_int_equal(h->capture_flags, TJ_CAP_PAYLOAD | TJ_CAP_SYNTHETIC);
	assert_int_equal(read_check(r, s), s->n);
	const struct tj_evlog_footer *f = tj_evlog_footer(r);
	assert_non_null(f);
	assert_int_equal(f->events, s->n);
	assert_int_equal(f->drops[TJ_DROP_RINGBUF], 7);
	assert_int_equal(tj_evlog_damage(r)->damaged, 0);
	tj_evlog_close_reader(r);
	tmp_drop(&t);
}

static void test_round_trip_plain(void **state)
{
	struct evset s;
	make_plain(&s, 5000, 1);
	round_trip(&s, 0);
	round_trip(&s, 97);
	evset_free(&s);
}

static void test_round_trip_wild(void **state)
{
	struct evset s;
	make_wild(&s, 3000, 2);
	round_trip(&s, 0);
	round_trip(&s, 1);
	round_trip(&s, 250);
	evset_free(&s);
}

/* What coding 2 predicts, and where its predictions fail: every type
 * (15 and up are escaped), sockets that churn (new ones start from the
 * last socket of their first event's type; references count back from
 * the newest, past one byte), ports and fds that jump across their whole
 * range, flags that differ by direction, time going backwards. */
static void make_churn(struct evset *s, size_t n, uint64_t seed)
{
	rng_state = seed;
	evset_alloc(s, n);
	uint64_t ts = 5000;
	for (size_t i = 0; i < n; i++) {
		struct tj_event *e = &s->ev[i];
		uint64_t r = rnd();
		ts = r % 97 == 0 ? ts - rnd() % 1000 : ts + rnd() % 70000;
		e->ts_ns = ts;
		e->node = 1;
		/* Mostly recent sockets, now and then one from long ago. */
		e->sock = r % 5 == 0 ? i : i - (r >> 8) % (r % 7 == 0 ? 400 : 8);
		e->type = (uint8_t)(r % 11 == 0 ? rnd() % 256 : 1 + (r >> 3) % 5);
		e->pid = 300 + (uint32_t)(e->sock % 3);
		e->tid = (r >> 20) % 4 == 0 ? e->pid : e->pid + 1 + (uint32_t)(rnd() % 40);
		e->fd = (r >> 22) % 13 == 0 ? ((r >> 30) % 2 ? INT32_MIN : INT32_MAX)
					    : 3 + (int32_t)(e->sock % 50);
		e->family = e->sock % 4 == 0 ? AF_INET6 : AF_INET;
		e->laddr[0] = 10;
		e->laddr[3] = 1;
		e->raddr[0] = 10;
		e->raddr[3] = (uint8_t)(e->sock % 3);
		e->lport = (r >> 26) % 9 == 0 ? (uint16_t)((r >> 40) % 2 ? 0 : 65535)
					      : (uint16_t)(e->type == TJ_EV_ACCEPT ? 8080 : 40000 + e->sock);
		e->rport = (uint16_t)(e->type == TJ_EV_CONNECT ? 5432 : 50000 + e->sock % 15000);
		e->flags = e->type == TJ_EV_RECV ? TJ_EVF_PARTIAL : (r >> 33) % 7 == 0 ? TJ_EVF_ERROR : 0;
		e->bytes = e->flags & TJ_EVF_ERROR ? -104 : (int64_t)(rnd() % 5000);
		e->offset = (r >> 36) % 3 ? 0 : rnd();
		e->arg = e->type == TJ_EV_STATE ? (uint32_t)rnd() % 4096 : 0;
		e->stack_id = (r >> 45) % 2 ? (uint32_t)(rnd() % 9) : 0;
		e->tcp_seq = (r >> 47) % 5 == 0 ? (uint32_t)rnd() : 0;
		set_payload(s, i, (r >> 50) % 6 == 0 ? 1 + (unsigned)(rnd() % 256) : 0);
	}
}

static void test_round_trip_churn(void **state)
{
	struct evset s;
	make_churn(&s, 20000, 3);
	for (size_t i = 0; i < s.n; i++)
		if (s.ev[i].type >= 15)
			goto escaped;
	fail_msg("no event of type 15 or more: the type escape is not tested");
escaped:
	round_trip(&s, 0);
	round_trip(&s, 333);
	evset_free(&s);
}

/* Blocks naming tens of thousands of sockets: the decoder's socket
 * states are reserved per block at once (on huge pages from 2 MiB on),
 * grown when a later block names more than any before. */
static void test_round_trip_many_sockets(void **state)
{
	struct evset s;
	make_churn(&s, 150000, 5);
	round_trip(&s, 30000);  /* small blocks first... */
	round_trip(&s, 0);      /* ...and one block of them all */
	evset_free(&s);
}

static void test_empty_log(void **state)
{
	struct evset s = { 0 };
	round_trip(&s, 0);
}

static void test_refuses_existing_file(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 10, 3);
	write_log(t.path, &s, 0);
	struct tj_evlog_header h = test_header();
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	assert_true(tj_evlog_create(&w, t.path, &h, 0, &err) < 0);
	assert_non_null(strstr(err.msg, t.path));
	assert_non_null(strstr(err.msg, "exists"));
	/* FORCE overwrites, and the new (empty) log reads as empty. */
	assert_int_equal(tj_evlog_create(&w, t.path, &h, TJ_EVLOG_FORCE, &err), 0);
	assert_int_equal(tj_evlog_close(w, &err), 0);
	struct evset none = { 0 };
	struct tj_evlog_reader *r;
	assert_int_equal(tj_evlog_open(&r, t.path, &err), 0);
	assert_int_equal(read_check(r, &none), 0);
	assert_int_equal(tj_evlog_damage(r)->damaged, 0);
	tj_evlog_close_reader(r);
	evset_free(&s);
	tmp_drop(&t);
}

static void test_write_error_reported(void **state)
{
	if (access("/dev/full", W_OK) != 0)
		skip();
	struct tj_evlog_header h = test_header();
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	/* The header goes first: a full disk is found at once. */
	assert_true(tj_evlog_create(&w, "/dev/full", &h, TJ_EVLOG_FORCE, &err) < 0);
	assert_int_equal(err.code, TJ_E_IO);
	assert_non_null(strstr(err.msg, "/dev/full"));
	assert_non_null(strstr(err.msg, "No space left"));
}

/* ---- in-memory reading of damaged copies ---- */

static int open_mem(struct tj_evlog_reader **r, FILE **f, const uint8_t *b,
		    size_t n, struct tj_err *err)
{
	*f = n ? fmemopen((void *)b, n, "rb") : fopen("/dev/null", "rb");
	assert_non_null(*f);
	return tj_evlog_open_file(r, *f, "mem.evlog", err);
}

static void test_crc_detects_flipped_bit(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 300, 4);
	write_log(t.path, &s, 100);
	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(t.path, &n);
	/* Flip one bit in every byte after the file header in turn (step
	 * 7): the damage is always noticed, never silent. */
	for (size_t pos = 120; pos < n; pos += 7) {
		b[pos] ^= 0x10;
		struct tj_evlog_reader *r;
		FILE *f;
		struct tj_err err = { 0 };
		assert_int_equal(open_mem(&r, &f, b, n, &err), 0);
		const struct tj_event *ev;
		size_t got = 0;
		while (tj_evlog_next(r, &ev, &err) == 1)
			got++;
		const struct tj_evlog_damage *d = tj_evlog_damage(r);
		assert_true(d->damaged);
		assert_true(got <= s.n);
		if (d->lost_known)
			assert_int_equal(got + d->events_lost, s.n);
		tj_evlog_close_reader(r);
		fclose(f);
		b[pos] ^= 0x10;
	}
	free(b);
	evset_free(&s);
	tmp_drop(&t);
}

static void test_truncated_at_every_byte(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 120, 5);
	write_log(t.path, &s, 40);   /* three events blocks */
	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(t.path, &n);
	/* Where each events block ends, from clean reads of longer and
	 * longer prefixes: events read from a prefix only ever grows, by
	 * whole blocks. */
	size_t prev = 0;
	for (size_t cut = 0; cut <= n; cut++) {
		struct tj_evlog_reader *r;
		FILE *f;
		struct tj_err err = { 0 };
		int rc = open_mem(&r, &f, b, cut, &err);
		if (rc < 0) {
			/* Only a cut inside the file header is refused, and
			 * by name. */
			assert_true(cut < 120);
			assert_non_null(strstr(err.msg, "mem.evlog"));
			fclose(f);
			continue;
		}
		size_t got = read_check(r, &s);
		assert_true(got % 40 == 0);
		assert_true(got >= prev);
		prev = got;
		const struct tj_evlog_damage *d = tj_evlog_damage(r);
		if (cut == n) {
			assert_false(d->damaged);
			assert_int_equal(got, s.n);
		} else {
			assert_true(d->damaged);
			assert_true(strstr(d->what, "cut short") != NULL);
			assert_true(got + d->events_lost <= s.n);
			if (got < s.n && d->lost_known)
				fail_msg("cut at %zu: loss claimed exact", cut);
			assert_null(tj_evlog_footer(r));
		}
		tj_evlog_close_reader(r);
		fclose(f);
	}
	assert_int_equal(prev, s.n);
	free(b);
	evset_free(&s);
	tmp_drop(&t);
}

/* Offset of the n-th block header (0 = first after the file header). */
static size_t block_offset(const uint8_t *b, size_t len, unsigned nth)
{
	size_t off = 16 + get32(b + 12) + 4;
	for (unsigned i = 0; i < nth; i++) {
		off += 32 + get32(b + off + 12);
		assert_true(off < len);
	}
	return off;
}

/* Flags of the first events block of the log at path. */
static unsigned first_block_flags(const char *path)
{
	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(path, &n);
	size_t off = block_offset(b, n, 0);
	assert_int_equal(b[off + 4] | b[off + 5] << 8, 5);  /* events, coding 2 */
	unsigned flags = (unsigned)(b[off + 6] | b[off + 7] << 8);
	free(b);
	return flags;
}

/* A lean block (a few bytes per event) is stored; a bulky one (payload
 * prefixes) is deflated; both read back. */
static void test_block_storage_policy(void **state)
{
	struct evset lean, bulky;
	make_plain(&lean, 5000, 5);
	make_wild(&bulky, 3000, 6);
	struct tmp t;
	tmp_make(&t);
	write_log(t.path, &lean, 0);
	assert_int_equal(first_block_flags(t.path), 0);
	tmp_drop(&t);
	tmp_make(&t);
	write_log(t.path, &bulky, 0);
	assert_int_equal(first_block_flags(t.path), 1);
	tmp_drop(&t);
	round_trip(&lean, 0);
	round_trip(&bulky, 0);
	evset_free(&lean);
	evset_free(&bulky);
}

static size_t read_all(const uint8_t *b, size_t n, const struct tj_evlog_damage **dp,
		       struct tj_evlog_reader **rp, FILE **fp)
{
	struct tj_err err = { 0 };
	assert_int_equal(open_mem(rp, fp, b, n, &err), 0);
	const struct tj_event *ev;
	size_t got = 0;
	int rc;
	while ((rc = tj_evlog_next(*rp, &ev, &err)) == 1)
		got++;
	assert_int_equal(rc, 0);
	*dp = tj_evlog_damage(*rp);
	return got;
}

static void test_corrupt_middle_block_skipped(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 200, 6);
	write_log(t.path, &s, 50);   /* four blocks */
	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(t.path, &n);
	const struct tj_evlog_damage *d;
	struct tj_evlog_reader *r;
	FILE *f;

	/* A bad body: the block header still says what was lost. */
	size_t off = block_offset(b, n, 1);
	b[off + 40] ^= 0xff;
	size_t got = read_all(b, n, &d, &r, &f);
	assert_int_equal(got, 150);
	assert_true(d->damaged);
	assert_int_equal(d->offset, off);
	assert_int_equal(d->events_lost, 50);
	assert_true(d->lost_known);
	assert_int_equal(d->blocks_skipped, 1);
	assert_non_null(strstr(d->what, "bad CRC"));
	assert_non_null(tj_evlog_footer(r));
	tj_evlog_close_reader(r);
	fclose(f);
	b[off + 40] ^= 0xff;

	/* A bad block header: the reader scans for the next block, and the
	 * footer makes the count exact again. */
	b[off + 13] ^= 0x01;
	got = read_all(b, n, &d, &r, &f);
	assert_int_equal(got, 150);
	assert_int_equal(d->offset, off);
	assert_int_equal(d->events_lost, 50);
	assert_true(d->lost_known);
	assert_int_equal(d->blocks_skipped, 1);
	assert_non_null(strstr(d->what, "resynchronised"));
	tj_evlog_close_reader(r);
	fclose(f);
	b[off + 13] ^= 0x01;

	/* Two blocks damaged: both counted. */
	size_t off2 = block_offset(b, n, 2);
	b[off + 50] ^= 1;
	b[off2 + 50] ^= 1;
	got = read_all(b, n, &d, &r, &f);
	assert_int_equal(got, 100);
	assert_int_equal(d->events_lost, 100);
	assert_int_equal(d->blocks_skipped, 2);
	assert_non_null(strstr(d->what, "1 more"));
	tj_evlog_close_reader(r);
	fclose(f);

	free(b);
	evset_free(&s);
	tmp_drop(&t);
}

static void test_unknown_block_skipped(void **state)
{
	/* Splice a block of an unknown type (from a future minor version)
	 * between the header and the first block: it is skipped silently. */
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 60, 7);
	write_log(t.path, &s, 0);
	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(t.path, &n);
	size_t off = block_offset(b, n, 0);
	/* Steal the first block's header as a template: renumbering would
	 * upset the seq check, so the spliced block takes the shape of a
	 * stats block (type 3 is known) but is given type 99. */
	uint8_t blk[32 + 5] = { 0 };
	memcpy(blk, b + off, 32);
	blk[4] = 99; blk[5] = 0; blk[6] = 0; blk[7] = 0;
	blk[12] = 5; blk[13] = blk[14] = blk[15] = 0;
	blk[16] = 5; blk[17] = blk[18] = blk[19] = 0;
	memset(blk + 20, 0, 4);
	memcpy(blk + 32, "hello", 5);
	/* CRCs computed with zlib: a second implementation of CRC-32. */
	put32(blk + 24, (uint32_t)crc32(0, blk + 32, 5));
	put32(blk + 28, (uint32_t)crc32(0, blk, 28));
	uint8_t *c = malloc(n + sizeof(blk));
	memcpy(c, b, off);
	memcpy(c + off, blk, sizeof(blk));
	memcpy(c + off + sizeof(blk), b + off, n - off);
	const struct tj_evlog_damage *d;
	struct tj_evlog_reader *r;
	FILE *f;
	size_t got = read_all(c, n + sizeof(blk), &d, &r, &f);
	assert_int_equal(got, 60);
	assert_false(d->damaged);
	tj_evlog_close_reader(r);
	fclose(f);
	free(c);
	free(b);
	evset_free(&s);
	tmp_drop(&t);
}

static void test_newer_major_refused(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 10, 8);
	write_log(t.path, &s, 0);
	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(t.path, &n);
	b[8] = 2;
	b[9] = 0;
	b[10] = 3;
	struct tj_evlog_reader *r;
	FILE *f;
	struct tj_err err = { 0 };
	assert_true(open_mem(&r, &f, b, n, &err) < 0);
	assert_int_equal(err.code, TJ_E_VERSION);
	assert_string_equal(err.msg, "mem.evlog: evlog format version 2.3 is "
				     "newer than this tracejoin (1.x)");
	fclose(f);
	/* A newer minor version reads fine. */
	b[8] = 1;
	b[10] = 9;
	size_t hend = 16 + get32(b + 12);
	put32(b + hend, (uint32_t)crc32(0, b, hend));
	const struct tj_evlog_damage *d;
	size_t got = read_all(b, n, &d, &r, &f);
	assert_int_equal(got, 10);
	assert_false(d->damaged);
	assert_int_equal(tj_evlog_header(r)->version_minor, 9);
	tj_evlog_close_reader(r);
	fclose(f);
	/* Without fixing the header CRC: noticed, and the blocks still read. */
	b[10] = 8;
	got = read_all(b, n, &d, &r, &f);
	assert_int_equal(got, 10);
	assert_true(d->damaged);
	assert_true(d->header_untrusted);
	assert_non_null(strstr(d->what, "file header"));
	tj_evlog_close_reader(r);
	fclose(f);
	/* A bad length: nothing of the header read, untrusted too. */
	b[10] = 9;
	put32(b + 12, 3);
	got = read_all(b, n, &d, &r, &f);
	assert_true(d->damaged);
	assert_true(d->header_untrusted);
	assert_non_null(strstr(d->what, "bad length"));
	tj_evlog_close_reader(r);
	fclose(f);
	free(b);
	evset_free(&s);
	tmp_drop(&t);
}

static void test_not_an_evlog_refused(void **state)
{
	const char *texts[] = { "hello, world\n", "\x89TJEVLO", "" };
	for (int i = 0; i < 3; i++) {
		struct tj_evlog_reader *r;
		FILE *f;
		struct tj_err err = { 0 };
		int rc = open_mem(&r, &f, (const uint8_t *)texts[i],
				  strlen(texts[i]), &err);
		assert_true(rc < 0);
		assert_non_null(strstr(err.msg, "mem.evlog"));
		fclose(f);
	}
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	assert_true(tj_evlog_open(&r, "/nonexistent/x.evlog", &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/x.evlog"));
	assert_true(tj_evlog_open(&r, "/tmp", &err) < 0);
	assert_non_null(strstr(err.msg, "directory"));
}

static void test_bad_payload_refused(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct tj_evlog_header h = test_header();
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_create(&w, t.path, &h, 0, &err), 0);
	struct tj_event e;
	memset(&e, 0, sizeof(e));
	e.payload_len = TJ_PAYLOAD_MAX + 1;
	static const uint8_t big[TJ_PAYLOAD_MAX + 1];
	e.payload = big;
	assert_int_equal(tj_evlog_write(w, &e, &err), -TJ_E_ARG);
	e.payload_len = 3;
	e.payload = NULL;
	assert_int_equal(tj_evlog_write(w, &e, &err), -TJ_E_ARG);
	assert_int_equal(tj_evlog_close(w, &err), 0);
	tmp_drop(&t);
}

/* A block whose CRC is right but whose body is not a valid column set
 * (a writer bug, or a crafted file): skipped, loss exact. */
static void test_malformed_body_skipped(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 90, 9);
	write_log(t.path, &s, 30);
	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(t.path, &n);
	size_t off = block_offset(b, n, 1);
	size_t body = get32(b + off + 12), raw_len = get32(b + off + 16);
	uLongf got = raw_len;
	uint8_t *raw = malloc(raw_len);
	assert_int_equal(uncompress(raw, &got, b + off + 32, body), Z_OK);
	assert_int_equal(got, raw_len);
	/* The first column (ts) claims one byte more than it has. */
	raw[1]++;
	/* Store it uncompressed in place of the original block. */
	size_t m = off + 32 + raw_len + (n - off - 32 - body);
	uint8_t *c = malloc(m);
	memcpy(c, b, off + 32);
	memcpy(c + off + 32, raw, raw_len);
	memcpy(c + off + 32 + raw_len, b + off + 32 + body, n - off - 32 - body);
	c[off + 6] = 0; /* flags: stored */
	put32(c + off + 12, (uint32_t)raw_len);
	put32(c + off + 24, (uint32_t)crc32(0, raw, (uInt)raw_len));
	put32(c + off + 28, (uint32_t)crc32(0, c + off, 28));
	const struct tj_evlog_damage *d;
	struct tj_evlog_reader *r;
	FILE *f;
	size_t events = read_all(c, m, &d, &r, &f);
	assert_int_equal(events, 60);
	assert_true(d->damaged);
	assert_int_equal(d->offset, off);
	assert_int_equal(d->events_lost, 30);
	assert_true(d->lost_known);
	assert_non_null(strstr(d->what, "block 1"));
	tj_evlog_close_reader(r);
	fclose(f);

	/* Undo, and the stored block reads fine: stored bodies are legal. */
	raw[1]--;
	memcpy(c + off + 32, raw, raw_len);
	put32(c + off + 24, (uint32_t)crc32(0, raw, (uInt)raw_len));
	put32(c + off + 28, (uint32_t)crc32(0, c + off, 28));
	events = read_all(c, m, &d, &r, &f);
	assert_int_equal(events, 90);
	assert_false(d->damaged);
	tj_evlog_close_reader(r);
	fclose(f);
	free(c);
	free(raw);
	free(b);
	evset_free(&s);
	tmp_drop(&t);
}

/* What a capture killed after a timer flush keeps: every flushed event
 * and the drop counters as of that flush. */
static void test_flush_then_crash(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_plain(&s, 50, 10);
	struct tj_evlog_header h = test_header();
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	/* a capture's log: on disk as FILE.partial while it runs */
	assert_int_equal(tj_evlog_create(&w, t.path, &h, TJ_EVLOG_CAPTURE, &err), 0);
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(tj_evlog_write(w, &s.ev[i], &err), 0);
	tj_evlog_add_drops(w, TJ_DROP_MAP, 5);
	assert_int_equal(tj_evlog_flush(w, &err), 0);
	struct stat st;
	char partial[300];
	snprintf(partial, sizeof(partial), "%s.partial", t.path);
	assert_int_equal(stat(t.path, &st), -1);
	assert_int_equal(stat(partial, &st), 0);
	size_t flushed = (size_t)st.st_size;
	for (size_t i = 20; i < 50; i++)
		assert_int_equal(tj_evlog_write(w, &s.ev[i], &err), 0);
	assert_int_equal(tj_evlog_close(w, &err), 0);

	size_t n;
	uint8_t *b = (uint8_t *)test_read_file(t.path, &n);
	assert_true(flushed < n);
	struct tj_evlog_reader *r;
	FILE *f;
	assert_int_equal(open_mem(&r, &f, b, flushed, &err), 0);
	assert_int_equal(read_check(r, &s), 20);
	const struct tj_evlog_damage *d = tj_evlog_damage(r);
	assert_true(d->damaged);
	assert_int_equal(d->offset, flushed);
	assert_non_null(strstr(d->what, "no footer"));
	assert_null(tj_evlog_footer(r));
	uint64_t drops[TJ_DROP__COUNT];
	assert_int_equal(tj_evlog_drops(r, drops), 1);
	assert_int_equal(drops[TJ_DROP_MAP], 5);
	assert_int_equal(drops[TJ_DROP_RINGBUF], 0);
	tj_evlog_close_reader(r);
	fclose(f);
	free(b);
	evset_free(&s);
	tmp_drop(&t);
}

/* A write error in the middle (here: the file size limit) is reported
 * with the path and the reason, and sticks.  A capture's log keeps what
 * was written; any other log is not left half-written. */
static void test_write_error_midway(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_wild(&s, 2000, 11);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 4096;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct tj_evlog_header h = test_header();
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	int rc = tj_evlog_create(&w, t.path, &h, TJ_EVLOG_CAPTURE, &err);
	size_t i = 0;
	if (rc == 0) {
		tj_evlog_set_block_events(w, 100);
		for (; i < s.n; i++)
			if ((rc = tj_evlog_write(w, &s.ev[i], &err)) < 0)
				break;
	}
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, oldsig);
	assert_true(rc < 0);
	assert_true(i < s.n);
	assert_int_equal(err.code, TJ_E_IO);
	assert_non_null(strstr(err.msg, t.path));
	assert_non_null(strstr(err.msg, "write failed"));
	/* Sticky: the next write and the close fail the same way. */
	struct tj_err err2 = { 0 };
	assert_true(tj_evlog_write(w, &s.ev[0], &err2) < 0);
	assert_string_equal(err2.msg, err.msg);
	assert_true(tj_evlog_close(w, &err2) < 0);
	/* What reached the file reads up to its last whole block. */
	struct tj_evlog_reader *r;
	assert_int_equal(tj_evlog_open(&r, t.path, &err), 0);
	size_t got = read_check(r, &s);
	assert_true(got % 100 == 0);
	assert_true(tj_evlog_damage(r)->damaged);
	tj_evlog_close_reader(r);

	/* not a capture: the failed log goes, the file written before stays */
	char keep[300];
	snprintf(keep, sizeof(keep), "%s.keep", t.path);
	assert_int_equal(rename(t.path, keep), 0);
	assert_int_equal(link(keep, t.path), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	signal(SIGXFSZ, SIG_IGN);
	rc = tj_evlog_create(&w, t.path, &h, TJ_EVLOG_FORCE, &err);
	if (rc == 0) {
		tj_evlog_set_block_events(w, 100);
		for (i = 0; i < s.n; i++)
			if ((rc = tj_evlog_write(w, &s.ev[i], &err)) < 0)
				break;
		if (rc == 0)
			rc = tj_evlog_close(w, &err);
		else
			assert_true(tj_evlog_close(w, &err2) < 0);
	}
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, oldsig);
	assert_true(rc < 0);
	struct stat a, b;
	assert_int_equal(stat(t.path, &a), 0);
	assert_int_equal(stat(keep, &b), 0);
	assert_true(a.st_ino == b.st_ino); /* the old file, untouched */
	unlink(keep);
	evset_free(&s);
	tmp_drop(&t);
}

/* Writing to "-" (stdout) and reading from a pipe: no seeking needed. */
static void test_stdout_and_pipe(void **state)
{
	struct tmp t;
	tmp_make(&t);
	struct evset s;
	make_wild(&s, 700, 12);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	FILE *tf = fopen(t.path, "wb");
	assert_non_null(tf);
	assert_true(dup2(fileno(tf), STDOUT_FILENO) >= 0);
	struct tj_evlog_header h = test_header();
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	int rc = tj_evlog_create(&w, "-", &h, 0, &err);
	if (rc == 0) {
		tj_evlog_set_block_events(w, 64);
		for (size_t i = 0; i < s.n && rc == 0; i++)
			rc = tj_evlog_write(w, &s.ev[i], &err);
		if (rc == 0)
			rc = tj_evlog_close(w, &err);
	}
	dup2(saved, STDOUT_FILENO);
	close(saved);
	fclose(tf);
	assert_int_equal(rc, 0);

	char cmd[200];
	snprintf(cmd, sizeof(cmd), "cat %s", t.path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	struct tj_evlog_reader *r;
	assert_int_equal(tj_evlog_open_file(&r, p, "pipe", &err), 0);
	assert_int_equal(read_check(r, &s), s.n);
	assert_false(tj_evlog_damage(r)->damaged);
	assert_non_null(tj_evlog_footer(r));
	assert_int_equal(tj_evlog_footer(r)->events, s.n);
	tj_evlog_close_reader(r);
	pclose(p);
	evset_free(&s);
	tmp_drop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_plain),
		cmocka_unit_test(test_round_trip_wild),
		cmocka_unit_test(test_round_trip_churn),
		cmocka_unit_test(test_round_trip_many_sockets),
		cmocka_unit_test(test_empty_log),
		cmocka_unit_test(test_refuses_existing_file),
		cmocka_unit_test(test_write_error_reported),
		cmocka_unit_test(test_crc_detects_flipped_bit),
		cmocka_unit_test(test_truncated_at_every_byte),
		cmocka_unit_test(test_corrupt_middle_block_skipped),
		cmocka_unit_test(test_block_storage_policy),
		cmocka_unit_test(test_unknown_block_skipped),
		cmocka_unit_test(test_newer_major_refused),
		cmocka_unit_test(test_not_an_evlog_refused),
		cmocka_unit_test(test_bad_payload_refused),
		cmocka_unit_test(test_malformed_body_skipped),
		cmocka_unit_test(test_flush_then_crash),
		cmocka_unit_test(test_write_error_midway),
		cmocka_unit_test(test_stdout_and_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
