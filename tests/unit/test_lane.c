/* capture/lane.c: a lane's records handed on oldest first across the
 * slot ring's wrap, the tail given back after them and not before, a
 * refused record stopping the take, a head out of reach refused; and a
 * producer thread writing as the kernel side does (slot, then head with
 * release; tail looked at only when full) against a reader taking in
 * turn: every record read once, in order. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../capture/lane.h"

struct seen {
	uint64_t next;   /* the ts_ns expected next */
	uint64_t count;
	uint64_t stop_at; /* refuse the record with this ts_ns (0: none) */
	int out_of_order;
};

static int check_record(void *ctx, const void *rec, size_t size)
{
	struct seen *s = ctx;
	const struct tjc_data *d = rec;

	if (size != sizeof(struct tjc_data) || d->ts_ns != s->next ||
	    d->sock != d->ts_ns * 3 || d->type != (TJC_EV_SEND | TJC_REC_COMPACT))
		s->out_of_order = 1;
	s->next++;
	s->count++;
	return s->stop_at && d->ts_ns == s->stop_at ? 7 : 0;
}

/* The kernel side's lane_add, as capture/bpf/shared.bpf.h writes it. */
static int produce_in(struct tjc_lane *l, uint32_t slots, uint64_t ts)
{
	uint64_t head = l->head;

	if (head - l->tail_seen >= slots) {
		if (l->spilled++ & (TJC_LANE_RELOOK - 1))
			return 0;
		l->tail_seen = __atomic_load_n(&l->tail, __ATOMIC_ACQUIRE);
		if (head - l->tail_seen >= slots)
			return 0;
	}
	struct tjc_data *d = &l->slot[head & (slots - 1)];
	memset(d, 0, sizeof(*d));
	d->ts_ns = ts;
	d->sock = ts * 3;
	d->type = TJC_EV_SEND | TJC_REC_COMPACT;
	__atomic_store_n(&l->head, head + 1, __ATOMIC_RELEASE);
	return 1;
}

static int produce(struct tjc_lane *l, uint64_t ts)
{
	return produce_in(l, TJC_LANE_SLOTS, ts);
}

/* A record offered until the lane takes it, as a stream of records of
 * which those the lane refuses go elsewhere: at most TJC_LANE_RELOOK
 * offers (the kernel side looks at the tail again at least that often). */
static int produce_eventually(struct tjc_lane *l, uint32_t slots, uint64_t ts)
{
	for (unsigned i = 0; i < TJC_LANE_RELOOK; i++)
		if (produce_in(l, slots, ts))
			return 1;
	return 0;
}

static struct tjc_lane *new_lane(void)
{
	struct tjc_lane *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	return l;
}

static void records_come_oldest_first_across_the_wrap(void **state)
{
	struct tjc_lane *l = new_lane();
	struct seen s = { .next = 1 };
	uint64_t ts = 1;

	(void)state;
	/* Fill, take most, fill again past the end of the slots. */
	while (produce(l, ts))
		ts++;
	assert_int_equal(ts - 1, TJC_LANE_SLOTS);
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, TJC_LANE_SLOTS - 10, check_record, &s), 0);
	assert_int_equal(l->tail, TJC_LANE_SLOTS - 10);
	for (int i = 0; i < 100; i++)
		assert_true(produce_eventually(l, TJC_LANE_SLOTS, ts++));
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, tj_lane_head(l), check_record, &s), 0);
	assert_false(s.out_of_order);
	assert_int_equal(s.count, ts - 1);
	assert_int_equal(l->tail, l->head);
	/* Nothing new: nothing handed on. */
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, tj_lane_head(l), check_record, &s), 0);
	assert_int_equal(s.count, ts - 1);
	free(l);
}

static void a_full_lane_refuses_until_read(void **state)
{
	struct tjc_lane *l = new_lane();
	struct seen s = { .next = 1 };

	(void)state;
	for (uint64_t ts = 1; ts <= TJC_LANE_SLOTS; ts++)
		assert_true(produce(l, ts));
	assert_false(produce(l, TJC_LANE_SLOTS + 1));
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, 1, check_record, &s), 0);
	/* Full as last seen: the tail is looked at again only every
	 * TJC_LANE_RELOOK-th record; the others are refused. */
	unsigned refused = 0;
	while (!produce(l, TJC_LANE_SLOTS + 1))
		refused++;
	assert_int_equal(refused, TJC_LANE_RELOOK - 1);
	assert_false(produce(l, TJC_LANE_SLOTS + 2));
	free(l);
}

static void a_refused_record_stops_the_take(void **state)
{
	struct tjc_lane *l = new_lane();
	struct seen s = { .next = 1, .stop_at = 5 };

	(void)state;
	for (uint64_t ts = 1; ts <= 20; ts++)
		assert_true(produce(l, ts));
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, 20, check_record, &s), 7);
	assert_int_equal(s.count, 5);
	assert_int_equal(l->tail, 5); /* the refused one counts as read */
	s.stop_at = 0;
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, 20, check_record, &s), 0);
	assert_int_equal(s.count, 20);
	assert_false(s.out_of_order);
	free(l);
}

static void a_head_out_of_reach_is_refused(void **state)
{
	struct tjc_lane *l = new_lane();
	struct seen s = { .next = 1 };

	(void)state;
	l->head = l->tail = 100;
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, 99, check_record, &s), -1);
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, 100 + TJC_LANE_SLOTS + 1, check_record, &s), -1);
	/* Slots no lane has. */
	assert_int_equal(tj_lane_take(l, 0, 101, check_record, &s), -1);
	assert_int_equal(tj_lane_take(l, 24, 101, check_record, &s), -1);
	assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS * 2, 101, check_record, &s), -1);
	assert_int_equal(s.count, 0);
	assert_int_equal(l->tail, 100);
	free(l);
}

/* Small rings, small lanes: the lane is sized from --ring-kb. */
static void lanes_follow_the_ring_size(void **state)
{
	struct tjc_lane *l = new_lane();
	struct seen s = { .next = 1 };
	uint64_t ts = 1;

	(void)state;
	assert_int_equal(tj_lane_slots(4096), 16);
	assert_int_equal(tj_lane_slots(0), 16);
	assert_int_equal(tj_lane_slots(64 * 1024), 256);   /* 292 wanted */
	assert_int_equal(tj_lane_slots(8u << 20), TJC_LANE_SLOTS);
	while (produce_in(l, 16, ts))
		ts++;
	assert_int_equal(ts, 17);
	assert_int_equal(tj_lane_take(l, 16, 10, check_record, &s), 0);
	while (produce_eventually(l, 16, ts))
		ts++;
	assert_int_equal(ts, 27);
	/* Slot 0 holds record 17 now, not record 1. */
	assert_int_equal(l->slot[0].ts_ns, 17);
	assert_int_equal(tj_lane_take(l, 16, 26, check_record, &s), 0);
	assert_false(s.out_of_order);
	assert_int_equal(s.count, 26);
	free(l);
}

#define THREADED_RECORDS 300000u

static void *producer(void *arg)
{
	struct tjc_lane *l = arg;

	for (uint64_t ts = 1; ts <= THREADED_RECORDS;)
		if (produce(l, ts))
			ts++;
	return NULL;
}

static void a_producer_and_a_reader_in_turn_lose_nothing(void **state)
{
	struct tjc_lane *l = new_lane();
	struct seen s = { .next = 1 };
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, producer, l), 0);
	while (s.count < THREADED_RECORDS)
		assert_int_equal(tj_lane_take(l, TJC_LANE_SLOTS, tj_lane_head(l), check_record, &s), 0);
	pthread_join(t, NULL);
	assert_false(s.out_of_order);
	assert_int_equal(s.count, THREADED_RECORDS);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_come_oldest_first_across_the_wrap),
		cmocka_unit_test(a_full_lane_refuses_until_read),
		cmocka_unit_test(a_refused_record_stops_the_take),
		cmocka_unit_test(a_head_out_of_reach_is_refused),
		cmocka_unit_test(lanes_follow_the_ring_size),
		cmocka_unit_test(a_producer_and_a_reader_in_turn_lose_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
