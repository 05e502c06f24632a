/*
 * test_opt: option value parsers: accepted forms, bounds, garbage, overflow,
 * and that a refusal leaves the output alone and says why.
 */
#include <stdint.h>
#include <string.h>

#include "opt.h"
#include "testhelp.h"

static char err[128];

static int uint_is(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	uint64_t v = 12345;

	err[0] = '\0';
	return opt_uint(s, min, max, &v, err, sizeof(err)) == 0 && v == want;
}

/* Refused, output untouched, a reason naming the input. */
static int uint_bad(const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 12345;

	err[0] = '\0';
	return opt_uint(s, min, max, &v, err, sizeof(err)) == -1 && v == 12345 &&
	       err[0] && (!s || strstr(err, s));
}

static int size_is(const char *s, uint64_t want)
{
	uint64_t v = 12345;

	return opt_size(s, 0, UINT64_MAX, &v, err, sizeof(err)) == 0 && v == want;
}

static int size_bad(const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 12345;

	err[0] = '\0';
	return opt_size(s, min, max, &v, err, sizeof(err)) == -1 && v == 12345 && err[0];
}

static int dur_is(const char *s, uint64_t want)
{
	uint64_t v = 12345;

	return opt_duration_ms(s, 0, UINT64_MAX, &v, err, sizeof(err)) == 0 && v == want;
}

static int dur_bad(const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 12345;

	err[0] = '\0';
	return opt_duration_ms(s, min, max, &v, err, sizeof(err)) == -1 &&
	       v == 12345 && err[0];
}

static int addr_is(const char *s, const char *host, int port)
{
	char h[64] = "unset";
	int p = -1;

	return opt_addr(s, h, sizeof(h), &p, err, sizeof(err)) == 0 &&
	       !strcmp(h, host) && p == port;
}

static int addr_bad(const char *s, size_t hostlen)
{
	char h[64] = "unset";
	int p = -1;

	err[0] = '\0';
	return opt_addr(s, h, hostlen, &p, err, sizeof(err)) == -1 &&
	       p == -1 && !strcmp(h, "unset") && strstr(err, "ADDR:PORT");
}

int main(void)
{
	TEST("uint 0", uint_is("0", 0, 10, 0));
	TEST("uint 42", uint_is("42", 0, 100, 42));
	TEST("uint leading zeros", uint_is("007", 0, 100, 7));
	TEST("uint at min and max", uint_is("5", 5, 9, 5) && uint_is("9", 5, 9, 9));
	TEST("uint UINT64_MAX", uint_is("18446744073709551615", 0, UINT64_MAX, UINT64_MAX));
	TEST("uint below min", uint_bad("4", 5, 9) && strstr(err, "out of range"));
	TEST("uint above max", uint_bad("10", 5, 9) && strstr(err, "5 to 9"));
	TEST("uint past UINT64_MAX", uint_bad("18446744073709551616", 0, UINT64_MAX));
	TEST("uint empty", uint_bad("", 0, 10));
	TEST("uint NULL", uint_bad(NULL, 0, 10));
	TEST("uint negative", uint_bad("-1", 0, 10));
	TEST("uint plus sign", uint_bad("+1", 0, 10));
	TEST("uint leading space", uint_bad(" 1", 0, 10));
	TEST("uint leading tab", uint_bad("\t1", 0, 10));
	TEST("uint trailing space", uint_bad("1 ", 0, 10));
	TEST("uint trailing garbage", uint_bad("1x", 0, 10));
	TEST("uint hex", uint_bad("0x10", 0, 100));
	TEST("uint decimal point", uint_bad("1.5", 0, 100));
	TEST("uint words", uint_bad("ten", 0, 100));

	TEST("size bytes", size_is("4096", 4096));
	TEST("size K k", size_is("64K", 65536) && size_is("64k", 65536));
	TEST("size M", size_is("1M", 1048576) && size_is("3m", 3 * 1048576));
	TEST("size G", size_is("2G", 2ULL << 30));
	TEST("size KB, MB suffix", size_is("64KB", 65536) && size_is("1Mb", 1048576));
	TEST("size 0", size_is("0", 0));
	TEST("size in bounds", size_bad("1M", 0, 1023 * 1024) && !size_bad("1M", 0, 1048576));
	TEST("size below min", size_bad("1K", 2048, 4096));
	TEST("size unknown suffix", size_bad("1T", 0, UINT64_MAX) && size_bad("1X", 0, UINT64_MAX));
	TEST("size suffix alone", size_bad("K", 0, UINT64_MAX));
	TEST("size double suffix", size_bad("1KK", 0, UINT64_MAX) && size_bad("1KBB", 0, UINT64_MAX));
	TEST("size negative, empty, NULL", size_bad("-1K", 0, UINT64_MAX) &&
	     size_bad("", 0, UINT64_MAX) && size_bad(NULL, 0, UINT64_MAX));
	TEST("size overflow is refused", size_bad("17179869184G", 0, UINT64_MAX) &&
	     size_bad("18446744073709551615K", 0, UINT64_MAX));
	TEST("size just below overflow", size_is("17179869183G", 17179869183ULL << 30));

	TEST("duration ms", dur_is("250ms", 250));
	TEST("duration s", dur_is("30s", 30000));
	TEST("duration bare seconds", dur_is("7", 7000));
	TEST("duration m", dur_is("5m", 300000));
	TEST("duration h", dur_is("2h", 7200000));
	TEST("duration 0", dur_is("0ms", 0) && dur_is("0", 0));
	TEST("duration bounds", dur_bad("50ms", 100, 1000) && dur_bad("2s", 100, 1000) &&
	     !dur_bad("1s", 100, 1000));
	TEST("duration unknown unit", dur_bad("5d", 0, UINT64_MAX) && dur_bad("5 s", 0, UINT64_MAX) &&
	     dur_bad("5sec", 0, UINT64_MAX) && dur_bad("5mss", 0, UINT64_MAX));
	TEST("duration unit alone, empty, NULL", dur_bad("ms", 0, UINT64_MAX) &&
	     dur_bad("", 0, UINT64_MAX) && dur_bad(NULL, 0, UINT64_MAX));
	TEST("duration negative, fraction", dur_bad("-1s", 0, UINT64_MAX) &&
	     dur_bad("1.5s", 0, UINT64_MAX));
	TEST("duration overflow is refused", dur_bad("18446744073709551615s", 0, UINT64_MAX) &&
	     dur_bad("5124095576030432h", 0, UINT64_MAX));

	TEST("addr host:port", addr_is("127.0.0.1:8080", "127.0.0.1", 8080));
	TEST("addr name:port", addr_is("localhost:1", "localhost", 1));
	TEST("addr :port defaults to 127.0.0.1", addr_is(":9000", "127.0.0.1", 9000));
	TEST("addr [::1]:80", addr_is("[::1]:80", "::1", 80));
	TEST("addr port 65535", addr_is("0.0.0.0:65535", "0.0.0.0", 65535));
	TEST("addr port 0 (the kernel picks)", addr_is("host:0", "host", 0));
	TEST("addr port 65536", addr_bad("host:65536", 64));
	TEST("addr port missing", addr_bad("host:", 64) && addr_bad("host", 64));
	TEST("addr port garbage", addr_bad("host:80x", 64) && addr_bad("host:-1", 64) &&
	     addr_bad("host:http", 64));
	TEST("addr bare IPv6 refused", addr_bad("::1:80", 64) && addr_bad("[::1]", 64));
	TEST("addr host too long for the buffer", addr_bad("abcdefgh:80", 8) &&
	     addr_is("abcdefg:80", "abcdefg", 80));
	TEST("addr empty, NULL", addr_bad("", 64) && addr_bad(NULL, 64));
	return TEST_DONE();
}
