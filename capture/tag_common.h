/* What tag.bpf.c (capture --tag) and its loader (tag.c) share: the TCP
 * option that carries a connection's origin, the TAG record's type and
 * the indices of the tag counters.  Fixed-width kernel type names only,
 * as in capture_common.h. */
#ifndef TJ_CAPTURE_TAG_COMMON_H
#define TJ_CAPTURE_TAG_COMMON_H

/* Same value as TJ_EV_TAG (lib/event.h). */
#define TJC_EV_TAG 12

/* The option: kind 254 (RFC 4727 experimental) with a 16-bit experiment
 * id (RFC 6994), then the client's node id and socket id, big-endian:
 * 12 bytes of the 40 a SYN may carry (Linux's own SYN options take 20). */
#define TJT_OPT_KIND  254
#define TJT_OPT_EXID  0x746a /* "tj" */
#define TJT_OPT_LEN   12

/* Counters (per-CPU array tag_stats), summed by tj_tag_stats(). */
#define TJT_SYN_TAGGED    0 /* SYNs that left with the option */
#define TJT_SYN_NO_ROOM   1 /* no room left in the SYN's options */
#define TJT_ACCEPT_TAGGED 2 /* accepted connections whose SYN had the option */
#define TJT_ACCEPT_NO_OPT 3 /* accepted connections whose SYN had none */
#define TJT_ACCEPT_NO_SYN 4 /* no saved SYN: a listener older than capture, or a syncookie */
#define TJT_RING_FULL     5 /* TAG records lost: ring full */
#define TJT__COUNT        6

#endif
