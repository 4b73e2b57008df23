/*
 * bench_hash_speed: throughput of the per-byte digests coffer computes, from
 * each library it could take them from: SHA-256 (the object hash; libsodium
 * against OpenSSL's libcrypto) and MD5 (S3's per-part Content-MD5; libmd, when
 * its header is there, against libcrypto). bench_hash.sh builds and runs it;
 * figures, not a test.
 *
 *   bench_hash_speed [MiB [piece_KiB]]   (default 256 MiB in 256 KiB pieces,
 *                                         the filter chain's buffer size)
 */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if __has_include(<md5.h>)
#include <md5.h>
#define HAVE_LIBMD 1
#endif

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, size_t total, double secs, const unsigned char *d)
{
	printf("%-28s %8.0f MB/s  %6.3f s/GiB  (%02x%02x..)\n", what, (double)total / secs / 1e6,
	       secs * (1024.0 * 1024 * 1024) / (double)total, d[0], d[1]);
}

static int evp_run(const char *what, const EVP_MD *md, const unsigned char *buf, size_t total,
                   size_t piece)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	double t0 = now_s();
	int ok = c && EVP_DigestInit_ex(c, md, NULL);

	for (size_t off = 0; ok && off < total; off += piece)
		ok = EVP_DigestUpdate(c, buf + off % (64u << 20), piece);
	ok = ok && EVP_DigestFinal_ex(c, d, &dl);
	if (ok)
		report(what, total, now_s() - t0, d);
	EVP_MD_CTX_free(c);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t piece = (argc > 2 ? strtoul(argv[2], NULL, 10) : 256) * 1024;
	size_t total = mib << 20;
	unsigned char *buf, d[64];
	double t0;
	int rc = 0;

	if (sodium_init() < 0 || !piece || total < piece || (64u << 20) % piece)
		return 2;
	total -= total % piece;
	/* 64 MiB of random data, read round and round: bigger than any cache. */
	buf = malloc((64u << 20) + piece);
	if (!buf)
		return 2;
	randombytes_buf(buf, (64u << 20) + piece);

	{
		crypto_hash_sha256_state st;

		t0 = now_s();
		crypto_hash_sha256_init(&st);
		for (size_t off = 0; off < total; off += piece)
			crypto_hash_sha256_update(&st, buf + off % (64u << 20), piece);
		crypto_hash_sha256_final(&st, d);
		report("sha256 libsodium", total, now_s() - t0, d);
	}
	rc |= evp_run("sha256 libcrypto (EVP)", EVP_sha256(), buf, total, piece);
#ifdef HAVE_LIBMD
	{
		MD5_CTX ctx;

		t0 = now_s();
		MD5Init(&ctx);
		for (size_t off = 0; off < total; off += piece)
			MD5Update(&ctx, buf + off % (64u << 20), piece);
		MD5Final(d, &ctx);
		report("md5 libmd", total, now_s() - t0, d);
	}
#else
	printf("%-28s (libmd-dev not installed)\n", "md5 libmd");
#endif
	rc |= evp_run("md5 libcrypto (EVP)", EVP_md5(), buf, total, piece);
	free(buf);
	return rc;
}
