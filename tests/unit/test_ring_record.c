/* capture/ring_record.c: compact ring records (tjc_data) made whole again
 * from the socket's earlier whole record, with every setting's tails
 * (payload room, stack tail), in any order of rings; whole records handed
 * on untouched; short, unknown and contradictory records refused; sockets
 * forgotten two seconds after their CLOSE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../../capture/ring_record.h"

/* Room for the largest record of any layout, 8-byte aligned as the ring's. */
union rec {
	struct tjc_event ev;
	struct tjc_data d;
	uint8_t b[sizeof(struct tjc_event) + TJC_PAYLOAD_MAX + sizeof(struct tjc_stack_tail)];
};

static size_t whole(union rec *r, uint8_t type, uint64_t sock, uint64_t ts, uint32_t payload_room,
		    int user_stacks)
{
	memset(r, 0, sizeof(*r));
	r->ev.type = type;
	r->ev.sock = sock;
	r->ev.ts_ns = ts;
	r->ev.family = 10;
	r->ev.lport = 8080;
	r->ev.rport = (uint16_t)(40000 + sock);
	r->ev.netns = 4026531840u;
	r->ev.pid = 7;
	r->ev.tid = 8;
	r->ev.fd = 5;
	r->ev.ustack = -1;
	r->ev.kstack = -1;
	for (int i = 0; i < 16; i++) {
		r->ev.laddr[i] = (uint8_t)(i + 1);
		r->ev.raddr[i] = (uint8_t)(0xa0 + i + sock);
	}
	return sizeof(r->ev) + payload_room + (user_stacks ? sizeof(struct tjc_caller) : 0);
}

static size_t compact(union rec *r, uint8_t type, uint64_t sock, uint64_t ts, uint64_t off,
		      uint32_t payload_room, int stacks)
{
	memset(r, 0, sizeof(*r));
	r->d.type = type | TJC_REC_COMPACT;
	r->d.sock = sock;
	r->d.ts_ns = ts;
	r->d.offset = off;
	r->d.bytes = 64;
	r->d.pid = 7;
	r->d.tid = 9;
	r->d.fd = 6;
	r->d.flags = TJC_EVF_PARTIAL;
	return sizeof(r->d) + payload_room + (stacks ? sizeof(struct tjc_stack_tail) : 0);
}

static void whole_records_pass_untouched_and_compact_ones_are_expanded(void **state)
{
	struct tj_ring_decoder *d = tj_ring_decoder_new(0, 0);
	union rec w, c;
	const struct tjc_event *out;
	size_t n, size;
	(void)state;

	assert_non_null(d);
	n = whole(&w, TJC_EV_SEND, 3, 100, 0, 0);
	assert_int_equal(tj_ring_decode(d, &w, n, &out, &size), TJ_RING_OK);
	assert_ptr_equal(out, &w.ev);
	assert_int_equal(size, n);
	assert_int_equal(tj_ring_decoder_sockets(d), 1);

	n = compact(&c, TJC_EV_RECV, 3, 200, 4096, 0, 0);
	assert_int_equal(n, 56);
	assert_int_equal(tj_ring_decode(d, &c, n, &out, &size), TJ_RING_OK);
	assert_int_equal(size, sizeof(struct tjc_event));
	assert_int_equal(out->type, TJC_EV_RECV);
	assert_int_equal(out->ts_ns, 200);
	assert_int_equal(out->offset, 4096);
	assert_int_equal(out->bytes, 64);
	assert_int_equal(out->pid, 7);
	assert_int_equal(out->tid, 9);
	assert_int_equal(out->fd, 6);
	assert_int_equal(out->flags, TJC_EVF_PARTIAL);
	assert_int_equal(out->arg, 0);
	assert_int_equal(out->ustack, -1);
	assert_int_equal(out->kstack, -1);
	assert_int_equal(out->payload_len, 0);
	/* What the whole record told. */
	assert_int_equal(out->family, 10);
	assert_int_equal(out->lport, 8080);
	assert_int_equal(out->rport, 40003);
	assert_int_equal(out->netns, 4026531840u);
	assert_memory_equal(out->laddr, w.ev.laddr, 16);
	assert_memory_equal(out->raddr, w.ev.raddr, 16);
	assert_int_equal(tj_ring_decoder_unknown(d), 0);
	tj_ring_decoder_free(d);
}

/* Two sockets told in one ring, their compact records in another, mixed:
 * each gets its own addresses. */
static void sockets_keep_their_own_addresses(void **state)
{
	struct tj_ring_decoder *d = tj_ring_decoder_new(0, 0);
	union rec w1, w2, c;
	const struct tjc_event *out;
	size_t size;
	(void)state;

	tj_ring_decode(d, &w1, whole(&w1, TJC_EV_SEND, 1, 10, 0, 0), &out, &size);
	tj_ring_decode(d, &w2, whole(&w2, TJC_EV_RECV, 2, 11, 0, 0), &out, &size);
	assert_int_equal(tj_ring_decode(d, &c, compact(&c, TJC_EV_SEND, 2, 12, 0, 0, 0), &out,
					&size), TJ_RING_OK);
	assert_int_equal(out->rport, 40002);
	assert_memory_equal(out->raddr, w2.ev.raddr, 16);
	assert_int_equal(tj_ring_decode(d, &c, compact(&c, TJC_EV_SEND, 1, 13, 0, 0, 0), &out,
					&size), TJ_RING_OK);
	assert_int_equal(out->rport, 40001);
	assert_memory_equal(out->raddr, w1.ev.raddr, 16);
	tj_ring_decoder_free(d);
}

/* --payload and --stack: the compact record's payload and stack tail go
 * where a whole record of the same settings has them. */
static void tails_land_where_whole_records_have_them(void **state)
{
	(void)state;
	for (unsigned mode = 0; mode <= (TJC_STACK_USER | TJC_STACK_KERNEL); mode++)
		for (uint32_t pmax = 0; pmax <= 64; pmax += 64) {
			struct tj_ring_decoder *d = tj_ring_decoder_new(pmax, mode);
			uint32_t room = pmax ? TJC_PAYLOAD_MAX : 0;
			union rec w, c;
			const struct tjc_event *out;
			size_t size, n;

			tj_ring_decode(d, &w, whole(&w, TJC_EV_SEND, 5, 1, room, mode & TJC_STACK_USER),
				       &out, &size);
			n = compact(&c, TJC_EV_SEND, 5, 2, 0, room, mode != 0);
			if (pmax) {
				c.d.payload_len = 5;
				memcpy(c.d.payload, "GET /", 5);
			}
			if (mode) {
				struct tjc_stack_tail *t = (void *)(c.b + sizeof(c.d) + room);
				t->ustack = 11;
				t->kstack = 12;
				t->caller.ip = 0x401000;
				t->caller.word[7] = 0x402000;
			}
			assert_int_equal(tj_ring_decode(d, &c, n, &out, &size), TJ_RING_OK);
			assert_int_equal(size, sizeof(struct tjc_event) + room +
					 ((mode & TJC_STACK_USER) ? sizeof(struct tjc_caller) : 0));
			assert_int_equal(out->payload_len, pmax ? 5 : 0);
			if (pmax)
				assert_memory_equal(out->payload, "GET /", 5);
			assert_int_equal(out->ustack, mode ? 11 : -1);
			assert_int_equal(out->kstack, mode ? 12 : -1);
			if (mode & TJC_STACK_USER) {
				const struct tjc_caller *cl =
					(const void *)((const uint8_t *)out + sizeof(*out) + room);
				assert_int_equal(cl->ip, 0x401000);
				assert_int_equal(cl->word[7], 0x402000);
			}
			/* One byte short of the tails: refused. */
			assert_int_equal(tj_ring_decode(d, &c, n - 1, &out, &size), TJ_RING_BAD);
			assert_null(out);
			tj_ring_decoder_free(d);
		}
}

static void bad_records_are_refused(void **state)
{
	struct tj_ring_decoder *d = tj_ring_decoder_new(64, 0);
	union rec r;
	const struct tjc_event *out;
	size_t size, n;
	(void)state;

	/* Shorter than any layout. */
	n = compact(&r, TJC_EV_SEND, 1, 1, 0, TJC_PAYLOAD_MAX, 0);
	assert_int_equal(tj_ring_decode(d, &r, 8, &out, &size), TJ_RING_BAD);
	/* A payload longer than its room. */
	r.d.payload_len = TJC_PAYLOAD_MAX + 1;
	assert_int_equal(tj_ring_decode(d, &r, n, &out, &size), TJ_RING_BAD);
	/* A compact type that is not a send or receive. */
	n = compact(&r, TJC_EV_CLOSE, 1, 1, 0, TJC_PAYLOAD_MAX, 0);
	assert_int_equal(tj_ring_decode(d, &r, n, &out, &size), TJ_RING_BAD);
	/* A whole type in a record too short to be whole. */
	r.d.type = TJC_EV_SEND;
	assert_int_equal(tj_ring_decode(d, &r, sizeof(struct tjc_event) - 1, &out, &size),
			 TJ_RING_BAD);
	assert_int_equal(tj_ring_decoder_sockets(d), 0);
	/* A compact record of a socket never told: expanded without
	 * addresses, and counted. */
	n = compact(&r, TJC_EV_RECV, 9, 1, 0, TJC_PAYLOAD_MAX, 0);
	assert_int_equal(tj_ring_decode(d, &r, n, &out, &size), TJ_RING_UNKNOWN_SOCK);
	assert_int_equal(out->type, TJC_EV_RECV);
	assert_int_equal(out->family, 0);
	assert_int_equal(tj_ring_decoder_unknown(d), 1);
	tj_ring_decoder_free(d);
}

/* A batch: compact records back to back in one ring record, each its
 * settings' full size (payload room, stack tail); tj_ring_decode_next
 * hands them out one by one, in order, and a whole record after them in
 * another ring record on its own. */
static void batches_are_split_into_their_records(void **state)
{
	(void)state;
	for (unsigned mode = 0; mode <= TJC_STACK_USER; mode++)
		for (uint32_t pmax = 0; pmax <= 64; pmax += 64) {
			struct tj_ring_decoder *d = tj_ring_decoder_new(pmax, mode);
			uint32_t room = pmax ? TJC_PAYLOAD_MAX : 0;
			union rec w, c;
			const struct tjc_event *out;
			size_t size, one = 0;
			uint64_t batch[4 * sizeof(union rec) / 8];
			const void *at;
			size_t left;

			at = &w;
			left = whole(&w, TJC_EV_SEND, 5, 1, room, mode & TJC_STACK_USER);
			assert_int_equal(tj_ring_decode_next(d, &at, &left, &out, &size), TJ_RING_OK);
			assert_int_equal(left, 0);
			assert_ptr_equal(out, &w.ev);
			for (int i = 0; i < 3; i++) {
				one = compact(&c, i == 1 ? TJC_EV_RECV : TJC_EV_SEND, 5, 10 + i,
					      100 * i, room, mode != 0);
				memcpy((uint8_t *)batch + i * one, &c, one);
			}
			assert_int_equal(one % 8, 0); /* each record stays 8-byte aligned */
			at = batch;
			left = 3 * one;
			for (int i = 0; i < 3; i++) {
				assert_int_equal(tj_ring_decode_next(d, &at, &left, &out, &size),
						 TJ_RING_OK);
				assert_int_equal(left, (size_t)(2 - i) * one);
				assert_int_equal(out->ts_ns, 10 + i);
				assert_int_equal(out->offset, 100 * i);
				assert_int_equal(out->type, i == 1 ? TJC_EV_RECV : TJC_EV_SEND);
				assert_int_equal(out->rport, 40005);
				assert_int_equal(size, sizeof(struct tjc_event) + room +
						 ((mode & TJC_STACK_USER) ? sizeof(struct tjc_caller) : 0));
			}
			assert_ptr_equal(at, (uint8_t *)batch + 3 * one);
			assert_int_equal(tj_ring_decoder_unknown(d), 0);
			tj_ring_decoder_free(d);
		}
}

/* A batch whose tail is no whole record: the records before it come out,
 * the tail is refused and consumed (no endless loop, no read past it). */
static void a_batch_with_a_short_tail_keeps_its_whole_records(void **state)
{
	struct tj_ring_decoder *d = tj_ring_decoder_new(0, 0);
	union rec w, c;
	const struct tjc_event *out;
	size_t size, left;
	uint64_t batch[3 * 56 / 8];
	const void *at = &w;
	(void)state;

	left = whole(&w, TJC_EV_SEND, 3, 1, 0, 0);
	tj_ring_decode_next(d, &at, &left, &out, &size);
	compact(&c, TJC_EV_SEND, 3, 2, 0, 0, 0);
	memcpy(batch, &c, 56);
	memcpy((uint8_t *)batch + 56, &c, 56);
	memcpy((uint8_t *)batch + 112, &c, 56);
	at = batch;
	left = 2 * 56 + 40; /* two records and 40 bytes of a third */
	assert_int_equal(tj_ring_decode_next(d, &at, &left, &out, &size), TJ_RING_OK);
	assert_int_equal(tj_ring_decode_next(d, &at, &left, &out, &size), TJ_RING_OK);
	assert_int_equal(left, 40);
	assert_int_equal(tj_ring_decode_next(d, &at, &left, &out, &size), TJ_RING_BAD);
	assert_null(out);
	assert_int_equal(left, 0);
	/* A compact type that is no send or receive inside a batch:
	 * refused with the rest. */
	((struct tjc_data *)((uint8_t *)batch + 56))->type = TJC_EV_CLOSE | TJC_REC_COMPACT;
	at = batch;
	left = 3 * 56;
	assert_int_equal(tj_ring_decode_next(d, &at, &left, &out, &size), TJ_RING_OK);
	assert_int_equal(tj_ring_decode_next(d, &at, &left, &out, &size), TJ_RING_BAD);
	assert_int_equal(left, 0);
	tj_ring_decoder_free(d);
}

/* A CLOSE lets the socket go once records two seconds younger came (other
 * rings' records of it may still be on their way until then); a socket
 * told again after its CLOSE (a reused inode) stays. */
static void closed_sockets_are_forgotten_later(void **state)
{
	struct tj_ring_decoder *d = tj_ring_decoder_new(0, 0);
	union rec r;
	const struct tjc_event *out;
	size_t size;
	const uint64_t s = 1000000000ull;
	(void)state;

	tj_ring_decode(d, &r, whole(&r, TJC_EV_SEND, 1, 1 * s, 0, 0), &out, &size);
	tj_ring_decode(d, &r, whole(&r, TJC_EV_SEND, 2, 1 * s, 0, 0), &out, &size);
	tj_ring_decode(d, &r, whole(&r, TJC_EV_CLOSE, 1, 2 * s, 0, 0), &out, &size);
	tj_ring_decode(d, &r, whole(&r, TJC_EV_CLOSE, 2, 2 * s, 0, 0), &out, &size);
	/* Socket 2 comes back (reused inode) before the sweep. */
	tj_ring_decode(d, &r, whole(&r, TJC_EV_RECV, 2, 3 * s, 0, 0), &out, &size);
	/* Still known just before the two seconds. */
	assert_int_equal(tj_ring_decode(d, &r, compact(&r, TJC_EV_SEND, 1, 4 * s - 1, 0, 0, 0),
					&out, &size), TJ_RING_OK);
	assert_int_equal(tj_ring_decoder_sockets(d), 2);
	/* Two seconds later: 1 is forgotten, 2 stays. */
	assert_int_equal(tj_ring_decode(d, &r, compact(&r, TJC_EV_SEND, 2, 4 * s, 0, 0, 0),
					&out, &size), TJ_RING_OK);
	assert_int_equal(out->rport, 40002);
	assert_int_equal(tj_ring_decoder_sockets(d), 1);
	assert_int_equal(tj_ring_decode(d, &r, compact(&r, TJC_EV_SEND, 1, 4 * s, 0, 0, 0),
					&out, &size), TJ_RING_UNKNOWN_SOCK);
	/* Slots are reused: many sockets come and go, the table stays small. */
	for (uint64_t i = 0; i < 10000; i++) {
		tj_ring_decode(d, &r, whole(&r, TJC_EV_SEND, 100 + i, 5 * s + i * s / 100, 0, 0),
			       &out, &size);
		tj_ring_decode(d, &r, whole(&r, TJC_EV_CLOSE, 100 + i, 5 * s + i * s / 100, 0, 0),
			       &out, &size);
	}
	assert_true(tj_ring_decoder_sockets(d) < 300);
	tj_ring_decoder_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(whole_records_pass_untouched_and_compact_ones_are_expanded),
		cmocka_unit_test(sockets_keep_their_own_addresses),
		cmocka_unit_test(tails_land_where_whole_records_have_them),
		cmocka_unit_test(bad_records_are_refused),
		cmocka_unit_test(closed_sockets_are_forgotten_later),
		cmocka_unit_test(batches_are_split_into_their_records),
		cmocka_unit_test(a_batch_with_a_short_tail_keeps_its_whole_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
