#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include "event.h"

static const char *const type_names[TJ_EV__COUNT] = {
	[TJ_EV_NONE] = "none",       [TJ_EV_ACCEPT] = "accept",
	[TJ_EV_CONNECT] = "connect", [TJ_EV_SEND] = "send",
	[TJ_EV_RECV] = "recv",       [TJ_EV_CLOSE] = "close",
	[TJ_EV_SHUTDOWN] = "shutdown", [TJ_EV_STATE] = "state",
	[TJ_EV_LOST] = "lost",       [TJ_EV_SOCKET] = "socket",
	[TJ_EV_LISTEN] = "listen",   [TJ_EV_SCAN] = "scan",
	[TJ_EV_TAG] = "tag",
};

const char *tj_event_type_name(unsigned type)
{
	return type < TJ_EV__COUNT ? type_names[type] : "?";
}

unsigned tj_event_type_parse(const char *name)
{
	for (unsigned t = 1; t < TJ_EV__COUNT; t++)
		if (strcmp(name, type_names[t]) == 0)
			return t;
	return TJ_EV_NONE;
}

char *tj_addr_format(unsigned family, const uint8_t addr[16], char *buf)
{
	buf[0] = '\0';
	if (family == AF_INET) { /* by hand: exporters format one per span */
		char *p = buf;
		for (int i = 0; i < 4; i++) {
			unsigned v = addr[i];
			if (v >= 100)
				*p++ = (char)('0' + v / 100);
			if (v >= 10)
				*p++ = (char)('0' + v / 10 % 10);
			*p++ = (char)('0' + v % 10);
			*p++ = i < 3 ? '.' : '\0';
		}
	} else if (family == AF_INET6) {
		if (!inet_ntop((int)family, addr, buf, TJ_ADDR_STRLEN))
			buf[0] = '\0';
	}
	return buf;
}

int tj_addr_parse(const char *text, unsigned *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (text[0] == '\0') {
		*family = 0;
		return 0;
	}
	if (inet_pton(AF_INET, text, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}
