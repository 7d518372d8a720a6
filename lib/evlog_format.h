/* Private to the evlog reader/writer (lib/evlog*.c): the on-disk
 * constants and the block body codec.  The layout is documented in
 * lib/EVLOG.md; keep the two in step. */
#ifndef TJ_EVLOG_FORMAT_H
#define TJ_EVLOG_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "event.h"
#include "u64map.h" /* tj_hash64 */

/* File preamble: magic, major, minor, header length. */
#define EVLOG_MAGIC "\x89TJEVLOG"   /* 8 bytes, no NUL */
#define EVLOG_MAGIC_LEN 8
#define EVLOG_PREAMBLE_LEN 16
#define EVLOG_HEADER_MIN 34         /* fixed fields + three empty strings */
#define EVLOG_HEADER_MAX 65536

/* Block header: 32 bytes, little-endian. */
#define EVLOG_BLOCK_MAGIC 0x4b424a54u /* "TJBK" as stored */
#define EVLOG_BLOCK_HDR_LEN 32
#define EVLOG_BLOCK_EVENTS 1u
#define EVLOG_BLOCK_FOOTER 2u
#define EVLOG_BLOCK_STATS 3u
#define EVLOG_BLOCK_EVENTS2 5u      /* events, coding 2 (format 1.3) */
#define EVLOG_BF_ZLIB 0x1u          /* body is zlib-compressed */

/* Limits a reader enforces before it allocates anything. */
#define EVLOG_RAW_MAX (64u << 20)   /* uncompressed block body */
#define EVLOG_BODY_MAX (72u << 20)  /* stored block body */
#define EVLOG_COUNT_MAX (1u << 18)  /* events in one block */

/* Footer: fixed part, then drop counters, then the block index. */
#define EVLOG_INDEX_ENTRY_LEN 28
#define EVLOG_INDEX_MAX (1u << 20)  /* more blocks than this: no index */

/* Columns of an events block body, in stored order. */
enum evlog_col {
	COL_TS = 0,   /* zigzag delta from the previous event's ts */
	COL_SOCK,     /* socket reference: 0 = new (then zigzag delta id), else index+1 */
	COL_TYPE,     /* type | mask << 8: mask = fields that differ from the socket's previous event */
	COL_FIELDS,   /* the values of those fields */
	COL_BYTES,    /* zigzag delta from the socket's previous bytes, same direction */
	COL_OFFSET,   /* zigzag delta from the predicted stream offset */
	COL_PAYLOAD,  /* varint length, then the bytes */
	COL__COUNT
};

/* Field-change mask bits as coding 2 stores them, the most frequent
 * lowest: with the type's 4 bits, a mask of the first three fits the
 * type column's one-byte varint.  Coding 1 (type-1 blocks) numbered them
 * differently; the decoder maps its masks through coding1_bit[]. */
#define FM_TID     (1u << 0)
#define FM_OFFSET  (1u << 1)
#define FM_PAYLOAD (1u << 2)
#define FM_FD      (1u << 3)
#define FM_PID     (1u << 4)
#define FM_FLAGS   (1u << 5)
#define FM_SEQ     (1u << 6)
#define FM_ARG     (1u << 7)
#define FM_STACK   (1u << 8)
#define FM_NODE    (1u << 9)
#define FM_FAMILY  (1u << 10)
#define FM_LADDR   (1u << 11)
#define FM_LPORT   (1u << 12)
#define FM_RADDR   (1u << 13)
#define FM_RPORT   (1u << 14)
#define FM__ALL    ((1u << 15) - 1)
/* Coding 2's type column: type | mask << 4; a type above 14 is stored as
 * TYPE_ESCAPE, with the type itself first in the fields column. */
#define TYPE_BITS 4
#define TYPE_ESCAPE 15u

/* ---- little-endian fixed-width helpers ---- */

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* ---- block body codec (lib/evlog_codec.c) ---- */

#define TJ_FLAG_SLOTS 8

/* Per-socket memory of the previous event, for delta coding.  Both sides
 * start every block from nothing, so every block decodes alone.  A socket
 * first seen in a block starts as a copy of the previous event's socket
 * (same process, same addresses, usually), with offsets and sizes zero.
 * Two cache lines: the first holds what every event touches. */
struct evlog_sockstate {
	uint64_t sock;
	uint64_t next_off[2];   /* predicted offset of the next send / recv */
	int64_t prev_bytes[3];  /* previous bytes of a send, recv, other event */
	uint32_t pid, tid;
	int32_t fd;
	uint32_t node;
	/* then fields that rarely change.  Coding 2 keeps flags per kind of
	 * event (flags_slot() in lib/evlog_codec.c: a socket's receives are
	 * often "partial" and its sends not); coding 1 uses flags[0] alone. */
	uint32_t flags[TJ_FLAG_SLOTS], arg, stack_id, tcp_seq;
	uint16_t lport, rport;
	uint8_t family;
	uint8_t laddr[16], raddr[16];
} __attribute__((aligned(64)));

struct evlog_buf {
	uint8_t *p;
	size_t len, cap;
};

/* Socket id -> index in the block's socket states: open addressing;
 * entries of earlier blocks are those with an older generation, so a new
 * block clears the table by bumping gen. */
struct evlog_sockslot {
	uint64_t sock;
	uint32_t idx, gen;
};

/* Where a socket new to the block starts from, in coding 2: the state of
 * the last socket new to the block whose first event had the same type
 * (accepts look like the accept before, connects like the connect
 * before), else that of the previous event's socket. */
#define TEMPLATE_NONE UINT32_MAX

struct evlog_encoder {
	struct evlog_buf col[COL__COUNT];
	uint32_t tmpl[256];     /* by first event type: socket index, or TEMPLATE_NONE */
	uint16_t new_mask[256]; /* by first event type: the last new socket's mask */
	size_t room;            /* events that surely fit the columns */
	struct evlog_sockstate *socks;
	size_t nsocks, socks_cap;
	struct evlog_sockslot *slots;
	size_t slots_mask;      /* table size - 1 (a power of two), or 0 */
	uint32_t gen;
	uint64_t prev_ts, prev_new_sock;
	size_t last;            /* index of the previous event's socket */
	uint32_t count;
};

int evlog_encoder_init(struct evlog_encoder *e);
void evlog_encoder_free(struct evlog_encoder *e);
/* Append one event; -1 if out of memory. */
int evlog_encode(struct evlog_encoder *e, const struct tj_event *ev);
/* Bytes the raw body would take now (for block-size limits). */
size_t evlog_encoded_size(const struct evlog_encoder *e);
/* Write the raw body (column directory + columns) to out, which must
 * hold evlog_encoded_size() bytes; returns the length. */
size_t evlog_encoder_finish(struct evlog_encoder *e, uint8_t *out);
/* Forget the block (after finish), keeping the allocations. */
void evlog_encoder_reset(struct evlog_encoder *e);

struct evlog_cursor {
	const uint8_t *p, *end;
};

struct evlog_decoder {
	int coding;             /* 1 (type-1 blocks) or 2 (type-5 blocks) */
	uint32_t tmpl[256];
	uint16_t new_mask[256];
	struct evlog_cursor col[COL__COUNT];
	struct evlog_sockstate *socks;
	size_t nsocks, socks_cap;
	/* The socket column decoded up front: index of each event's socket,
	 * REF_NEW set on its first event in the block.  Knowing sockets
	 * ahead lets decode() prefetch their state. */
	uint32_t *refs;
	uint32_t *from;         /* by socket: its template, or TEMPLATE_NONE (default) */
	size_t refs_cap;
	uint32_t count, next;   /* events in the block, next to decode */
	size_t last;
	uint64_t prev_ts;
	int failed;             /* malformed: no more events from this block */
	char why[128];          /* what was malformed */
};
#define REF_NEW 0x80000000u

/* The socket column's first varint of an event.  Coding 2: a socket new
 * to the block starting from its default template (then its id), one
 * starting from a socket named next (its id, then that socket counted
 * back from it: 1 = the socket before), one whose id is the previous new
 * socket's + 1 (nothing more; never the block's first), or, from
 * SREF_OLD on, a socket seen before (SREF_OLD = the newest).  Coding 1:
 * SREF_NEW, or the (r-1)-th socket of the block. */
#define SREF_NEW 0u
#define SREF_NEW_FROM 1u
#define SREF_NEXT 2u
#define SREF_OLD 3u

void evlog_decoder_init(struct evlog_decoder *d);
void evlog_decoder_free(struct evlog_decoder *d);
/* Bytes past the end of a raw body the decoder may read (and ignore). */
#define EVLOG_SLACK 8

/* Start decoding a raw body of count events in coding 1 or 2 (block
 * type 1 or 5); raw must be followed by EVLOG_SLACK readable bytes.  -1
 * (why set) if the column directory is malformed. */
int evlog_decoder_start(struct evlog_decoder *d, const uint8_t *raw,
			size_t len, uint32_t count, int coding);
/* Decode up to max events into out[]: returns how many (> 0), 0 when
 * all count events were decoded and every column was used up exactly,
 * -1 (why set) if the body is malformed.  Events decoded before a
 * malformed one are returned first; the failure comes on the next call.
 * Payloads point into raw. */
int evlog_decode_batch(struct evlog_decoder *d, struct tj_event *out,
		       unsigned max);
/* Events not yet decoded (lost, if the block turned out malformed). */
uint32_t evlog_decoder_left(const struct evlog_decoder *d);

#endif
