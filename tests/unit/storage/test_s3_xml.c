/*
 * Tests of s3_xml: the replies of ListObjectsV2, ListMultipartUploads,
 * InitiateMultipartUpload, CompleteMultipartUpload (also an <Error> inside
 * a 200 reply), DeleteObjects and STS AssumeRoleWithWebIdentity, shaped as
 * the S3 and STS API references show them (and as Ceph RGW and MinIO send
 * them), malformed and incomplete documents, the limits, and the request
 * bodies read back with expat.
 */
#include "storage/s3/s3.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XMLNS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define PARSE(fn, text, ...) fn(text, strlen(text), __VA_ARGS__)

static const char list_objects_reply[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult " XMLNS ">\n"
    "  <Name>bucket</Name>\n"
    "  <Prefix>repo/</Prefix>\n"
    "  <KeyCount>2</KeyCount>\n"
    "  <MaxKeys>1000</MaxKeys>\n"
    "  <IsTruncated>true</IsTruncated>\n"
    "  "
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n"
    "  <Contents>\n"
    "    <Key>repo/my-image.jpg</Key>\n"
    "    <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
    "    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>\n"
    "    <Size>434234</Size>\n"
    "    <StorageClass>STANDARD</StorageClass>\n"
    "  </Contents>\n"
    "  <Contents>\n"
    "    <Key>repo/a&amp;b &lt;c&gt; \xc3\xa9</Key>\n"
    "    <LastModified>2026-11-22T09:10:46Z</LastModified>\n"
    "    <ETag>\"599bab3ed2c697f1d26842727561fd94\"</ETag>\n"
    "    <Size>18446744073709551615</Size>\n"
    "    <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>"
    "<DisplayName>mtd@amazon.com</DisplayName></Owner>\n"
    "  </Contents>\n"
    "</ListBucketResult>\n";

static void test_list_objects(void **state)
{
	struct s3_list_reply r;

	(void)state;
	assert_int_equal(PARSE(s3_xml_list_objects, list_objects_reply, &r), 0);
	assert_int_equal(r.nitems, 2);
	assert_true(r.truncated);
	assert_string_equal(r.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_string_equal(r.items[0].key, "repo/my-image.jpg");
	assert_int_equal(r.items[0].size, 434234);
	assert_int_equal(r.items[0].time_ms, 1255369830000LL);
	assert_null(r.items[0].upload_id);
	assert_string_equal(r.items[1].key, "repo/a&b <c> \xc3\xa9");
	assert_true(r.items[1].size == UINT64_MAX);
	assert_int_equal(r.items[1].time_ms, 1795338646000LL);
	s3_list_reply_free(&r);
	assert_null(r.items);
	s3_list_reply_free(&r); /* twice is harmless */
}

static void test_list_objects_prefixed_and_empty(void **state)
{
	/* A namespace prefix instead of a default namespace; no entries. */
	const char prefixed[] =
	    "<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	    "<s3:IsTruncated>false</s3:IsTruncated>"
	    "<s3:Contents><s3:Key>k</s3:Key><s3:Size>0</s3:Size>"
	    "<s3:LastModified>2020-01-01T00:00:00.000Z</s3:LastModified>"
	    "</s3:Contents></s3:ListBucketResult>";
	const char empty[] = "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>"
	                     "<IsTruncated>false</IsTruncated></ListBucketResult>";
	struct s3_list_reply r;

	(void)state;
	assert_int_equal(PARSE(s3_xml_list_objects, prefixed, &r), 0);
	assert_int_equal(r.nitems, 1);
	assert_string_equal(r.items[0].key, "k");
	assert_int_equal(r.items[0].size, 0);
	assert_false(r.truncated);
	s3_list_reply_free(&r);
	assert_int_equal(PARSE(s3_xml_list_objects, empty, &r), 0);
	assert_int_equal(r.nitems, 0);
	assert_null(r.next_token);
	s3_list_reply_free(&r);
}

static void expect_list_format_error(const char *body, const char *needle)
{
	struct s3_list_reply r;

	assert_int_equal(PARSE(s3_xml_list_objects, body, &r), CF_ERR_FORMAT);
	assert_int_equal(r.nitems, 0);
	assert_null(r.items);
	if (!strstr(error_message(), needle))
		fail_msg("message '%s' lacks '%s'", error_message(), needle);
}

static void test_list_objects_bad(void **state)
{
	(void)state;
	expect_list_format_error("<ListBucketResult><Contents><Key>a</Key>", "malformed XML");
	expect_list_format_error("<ListBucketResult><Contents><Key>a</Key><Size>1</Size>"
	                         "</Contents></ListBucketRes>",
	                         "malformed XML");
	expect_list_format_error("", "malformed XML");
	expect_list_format_error("not xml at all", "malformed XML");
	expect_list_format_error("<ListBucketResult><Contents><Size>1</Size></Contents>"
	                         "</ListBucketResult>",
	                         "without <Key>");
	expect_list_format_error("<ListBucketResult><Contents><Key>a</Key></Contents>"
	                         "</ListBucketResult>",
	                         "without <Size>");
	expect_list_format_error("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
	                         "</Contents></ListBucketResult>",
	                         "not a size");
	expect_list_format_error(
	    "<ListBucketResult><Contents><Key>a</Key><Size>99999999999999999999"
	    "</Size></Contents></ListBucketResult>",
	    "not a size");
	expect_list_format_error(
	    "<ListBucketResult><Contents><Key>a</Key><Size>1</Size>"
	    "<LastModified>yesterday</LastModified></Contents></ListBucketResult>",
	    "ISO 8601");
	expect_list_format_error("<ListBucketResult><IsTruncated>maybe</IsTruncated>"
	                         "</ListBucketResult>",
	                         "not true or false");
	expect_list_format_error("<ListBucketResult><IsTruncated>true</IsTruncated>"
	                         "</ListBucketResult>",
	                         "NextContinuationToken");
	expect_list_format_error("<ListAllMyBucketsResult/>", "expected <ListBucketResult>");
	expect_list_format_error("<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
	                         "</Error>",
	                         "AccessDenied: Access Denied");
	/* Entity tricks are refused before they start. */
	expect_list_format_error("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
	                         "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>"
	                         "<ListBucketResult><Name>&lol2;</Name></ListBucketResult>",
	                         "document type");
}

static void test_list_limits(void **state)
{
	const char entry[] = "<Contents><Key>k</Key><Size>1</Size></Contents>";
	const size_t n = 100001;
	struct s3_list_reply r;
	struct buf b;

	(void)state;
	buf_init(&b, 64u * 1024 * 1024);
	assert_int_equal(buf_printf(&b, "<ListBucketResult>"), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf_append(&b, entry, strlen(entry)), 0);
	assert_int_equal(buf_printf(&b, "</ListBucketResult>"), 0);
	assert_int_equal(s3_xml_list_objects((const char *)b.data, b.len, &r), CF_ERR_LIMIT);
	assert_int_equal(r.nitems, 0);
	/* 100,000 entries are fine. */
	b.len = b.len - strlen(entry) - strlen("</ListBucketResult>");
	assert_int_equal(buf_printf(&b, "</ListBucketResult>"), 0);
	assert_int_equal(s3_xml_list_objects((const char *)b.data, b.len, &r), 0);
	assert_int_equal(r.nitems, 100000);
	s3_list_reply_free(&r);
	buf_free(&b);
	/* The size is checked before any parsing. */
	assert_int_equal(s3_xml_list_objects("<x/>", 16u * 1024 * 1024 + 1, &r), CF_ERR_LIMIT);
}

static void test_list_uploads(void **state)
{
	const char reply[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListMultipartUploadsResult " XMLNS ">\n"
	    "  <Bucket>bucket</Bucket>\n"
	    "  <KeyMarker></KeyMarker>\n"
	    "  <UploadIdMarker></UploadIdMarker>\n"
	    "  <NextKeyMarker>my-movie.m2ts</NextKeyMarker>\n"
	    "  "
	    "<NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</"
	    "NextUploadIdMarker>\n"
	    "  <MaxUploads>3</MaxUploads>\n"
	    "  <IsTruncated>true</IsTruncated>\n"
	    "  <Upload>\n"
	    "    <Key>my-divisor</Key>\n"
	    "    <UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>\n"
	    "    <Initiator><ID>arn:aws:iam::111122223333:user/user1-11111a31-17b5</ID>"
	    "<DisplayName>user1-11111a31-17b5</DisplayName></Initiator>\n"
	    "    <StorageClass>STANDARD</StorageClass>\n"
	    "    <Initiated>2010-11-10T20:48:33.000Z</Initiated>\n"
	    "  </Upload>\n"
	    "  <Upload>\n"
	    "    <Key>my-movie.m2ts</Key>\n"
	    "    <UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
	    "    <Initiated>2010-11-10T20:48:33Z</Initiated>\n"
	    "  </Upload>\n"
	    "</ListMultipartUploadsResult>\n";
	const char no_id[] = "<ListMultipartUploadsResult><Upload><Key>k</Key></Upload>"
	                     "</ListMultipartUploadsResult>";
	const char no_marker[] = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
	                         "</ListMultipartUploadsResult>";
	struct s3_list_reply r;

	(void)state;
	assert_int_equal(PARSE(s3_xml_list_uploads, reply, &r), 0);
	assert_int_equal(r.nitems, 2);
	assert_true(r.truncated);
	assert_string_equal(r.next_key_marker, "my-movie.m2ts");
	assert_string_equal(r.next_upload_id_marker,
	                    "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ");
	assert_string_equal(r.items[0].key, "my-divisor");
	assert_string_equal(r.items[0].upload_id,
	                    "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw");
	assert_int_equal(r.items[0].time_ms, 1289422113000LL);
	assert_int_equal(r.items[1].time_ms, 1289422113000LL);
	assert_string_equal(r.items[1].upload_id,
	                    "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
	s3_list_reply_free(&r);
	assert_int_equal(PARSE(s3_xml_list_uploads, no_id, &r), CF_ERR_FORMAT);
	assert_int_equal(PARSE(s3_xml_list_uploads, no_marker, &r), CF_ERR_FORMAT);
	assert_int_equal(PARSE(s3_xml_list_uploads, list_objects_reply, &r), CF_ERR_FORMAT);
}

static void test_upload_id(void **state)
{
	const char reply[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<InitiateMultipartUploadResult " XMLNS ">\n"
	    "  <Bucket>example-bucket</Bucket>\n"
	    "  <Key>example-object</Key>\n"
	    "  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
	    "</InitiateMultipartUploadResult>";
	char *id = (char *)1;

	(void)state;
	assert_int_equal(PARSE(s3_xml_upload_id, reply, &id), 0);
	assert_string_equal(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
	free(id);
	assert_int_equal(PARSE(s3_xml_upload_id,
	                       "<InitiateMultipartUploadResult><UploadId></UploadId>"
	                       "</InitiateMultipartUploadResult>",
	                       &id),
	                 CF_ERR_FORMAT);
	assert_null(id);
	assert_int_equal(PARSE(s3_xml_upload_id,
	                       "<InitiateMultipartUploadResult><Bucket>b</Bucket>"
	                       "</InitiateMultipartUploadResult>",
	                       &id),
	                 CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "no <UploadId>"));
}

static void test_complete(void **state)
{
	const char reply[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<CompleteMultipartUploadResult " XMLNS ">\n"
	    "  <Location>http://Example-Bucket.s3.Region.amazonaws.com/Example-Object</Location>\n"
	    "  <Bucket>Example-Bucket</Bucket>\n"
	    "  <Key>Example-Object</Key>\n"
	    "  <ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>\n"
	    "</CompleteMultipartUploadResult>";
	/* The documented <Error> inside a 200 reply. */
	const char error_200[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n"
	    "<Error>\n"
	    "  <Code>InternalError</Code>\n"
	    "  <Message>We encountered an internal error. Please try again.</Message>\n"
	    "  <RequestId>656c76696e6727732072657175657374</RequestId>\n"
	    "  <HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId>\n"
	    "</Error>";
	struct s3_error_reply err;
	char *etag = NULL;

	(void)state;
	assert_int_equal(PARSE(s3_xml_error, reply, &err), 0);
	assert_int_equal(PARSE(s3_xml_complete_etag, reply, &etag), 0);
	assert_string_equal(etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
	free(etag);
	assert_int_equal(PARSE(s3_xml_error, error_200, &err), 1);
	assert_string_equal(err.code, "InternalError");
	assert_string_equal(err.message, "We encountered an internal error. Please try again.");
	assert_int_equal(PARSE(s3_xml_complete_etag, error_200, &etag), CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "InternalError"));
	assert_null(etag);
}

static void test_error_reply(void **state)
{
	/* Ceph RGW sends an empty <Message/>. */
	const char rgw[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>"
	                   "<Message/><BucketName>b</BucketName><RequestId>tx0000</RequestId>"
	                   "<HostId>1-default</HostId></Error>";
	const char sts[] = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	                   "<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
	                   "<Message>Couldn't retrieve verification key</Message></Error>"
	                   "<RequestId>c6104cbe</RequestId></ErrorResponse>";
	char long_code[400];
	struct buf b;
	struct s3_error_reply err;

	(void)state;
	assert_int_equal(PARSE(s3_xml_error, rgw, &err), 1);
	assert_string_equal(err.code, "NoSuchKey");
	assert_string_equal(err.message, "");
	assert_int_equal(PARSE(s3_xml_error, sts, &err), 1);
	assert_string_equal(err.code, "InvalidIdentityToken");
	assert_string_equal(err.message, "Couldn't retrieve verification key");
	/* Not an error document: 0, and an earlier error is left alone. */
	error_set(CF_ERR_STORAGE, "earlier");
	assert_int_equal(PARSE(s3_xml_error, "<html><body>502</body></html>", &err), 0);
	assert_int_equal(PARSE(s3_xml_error, "garbage <", &err), 0);
	assert_int_equal(s3_xml_error(NULL, 0, &err), 0);
	assert_string_equal(error_message(), "earlier");
	assert_int_equal(error_code(), CF_ERR_STORAGE);
	assert_string_equal(err.code, "");
	/* Over-long fields are cut to fit. */
	memset(long_code, 'C', sizeof(long_code) - 1);
	long_code[sizeof(long_code) - 1] = '\0';
	buf_init(&b, 4096);
	assert_int_equal(buf_printf(&b, "<Error><Code>%s</Code></Error>", long_code), 0);
	assert_int_equal(s3_xml_error((const char *)b.data, b.len, &err), 1);
	assert_int_equal(strlen(err.code), sizeof(err.code) - 1);
	buf_free(&b);
}

static void test_delete_result(void **state)
{
	const char reply[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<DeleteResult " XMLNS ">\n"
	    "  <Deleted><Key>sample1.txt</Key></Deleted>\n"
	    "  <Error>\n"
	    "    <Key>sample2.txt</Key>\n"
	    "    <Code>AccessDenied</Code>\n"
	    "    <Message>Access Denied</Message>\n"
	    "  </Error>\n"
	    "  <Error><Key>a &amp; b</Key><Code>InternalError</Code><Message/></Error>\n"
	    "</DeleteResult>";
	struct s3_delete_error *e = NULL;
	size_t n = 99;

	(void)state;
	assert_int_equal(PARSE(s3_xml_delete_result, reply, &e, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(e[0].key, "sample2.txt");
	assert_string_equal(e[0].code, "AccessDenied");
	assert_string_equal(e[0].message, "Access Denied");
	assert_string_equal(e[1].key, "a & b");
	assert_string_equal(e[1].code, "InternalError");
	assert_string_equal(e[1].message, "");
	s3_delete_errors_free(e, n);
	/* Quiet mode with nothing failed: an empty result. */
	assert_int_equal(PARSE(s3_xml_delete_result, "<DeleteResult " XMLNS "/>", &e, &n), 0);
	assert_int_equal(n, 0);
	s3_delete_errors_free(e, n);
	assert_int_equal(PARSE(s3_xml_delete_result,
	                       "<DeleteResult><Error><Code>X</Code></Error></DeleteResult>", &e,
	                       &n),
	                 CF_ERR_FORMAT);
	assert_null(e);
	assert_int_equal(n, 0);
}

static const char sts_secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
static const char sts_token[] = "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE";

static void test_sts_credentials(void **state)
{
	char reply[2048];
	struct s3_credentials c;

	(void)state;
	snprintf(reply, sizeof(reply),
	         "<AssumeRoleWithWebIdentityResponse "
	         "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	         "  <AssumeRoleWithWebIdentityResult>\n"
	         "    "
	         "<SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</"
	         "SubjectFromWebIdentityToken>\n"
	         "    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
	         "    <AssumedRoleUser>\n"
	         "      "
	         "<Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
	         "      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
	         "    </AssumedRoleUser>\n"
	         "    <Credentials>\n"
	         "      <SessionToken>%s</SessionToken>\n"
	         "      <SecretAccessKey>%s</SecretAccessKey>\n"
	         "      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
	         "      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
	         "    </Credentials>\n"
	         "    <Provider>www.amazon.com</Provider>\n"
	         "  </AssumeRoleWithWebIdentityResult>\n"
	         "  "
	         "<ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></"
	         "ResponseMetadata>\n"
	         "</AssumeRoleWithWebIdentityResponse>",
	         sts_token, sts_secret);
	assert_int_equal(PARSE(s3_xml_sts_credentials, reply, &c), 0);
	assert_string_equal(c.access_key, "ASgeIAIOSFODNN7EXAMPLE");
	assert_string_equal(c.secret_key, sts_secret);
	assert_string_equal(c.token, sts_token);
	assert_int_equal(c.expires, 1414191623);
	s3_credentials_clear(&c);
	assert_null(c.secret_key);
	assert_null(c.token);

	/* Missing pieces fail without quoting what was there. */
	snprintf(reply, sizeof(reply),
	         "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
	         "<SecretAccessKey>%s</SecretAccessKey><AccessKeyId>A</AccessKeyId>"
	         "<Expiration>2014-10-24T23:00:23Z</Expiration></Credentials>"
	         "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
	         sts_secret);
	assert_int_equal(PARSE(s3_xml_sts_credentials, reply, &c), CF_ERR_FORMAT);
	assert_null(c.secret_key);
	assert_null(strstr(error_message(), sts_secret));
	snprintf(reply, sizeof(reply),
	         "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
	         "<SecretAccessKey>%s</SecretAccessKey><AccessKeyId>A</AccessKeyId>"
	         "<SessionToken>%s</SessionToken>",
	         sts_secret, sts_token);
	assert_int_equal(PARSE(s3_xml_sts_credentials, reply, &c), CF_ERR_FORMAT);
	assert_null(strstr(error_message(), sts_secret));
	assert_null(strstr(error_message(), sts_token));
	/* Credentials outside the result element do not count. */
	assert_int_equal(PARSE(s3_xml_sts_credentials,
	                       "<AssumeRoleWithWebIdentityResponse><Credentials><AccessKeyId>A"
	                       "</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResponse>",
	                       &c),
	                 CF_ERR_FORMAT);
}

/* Collects the text of every element named want in a built document. */
struct collect {
	const char *want;
	int inside;
	char texts[8][256];
	size_t n;
	size_t len;
};

static void XMLCALL collect_start(void *user, const XML_Char *name, const XML_Char **attrs)
{
	struct collect *c = user;
	const char *local = strrchr(name, '|');

	(void)attrs;
	local = local ? local + 1 : name;
	if (!strcmp(local, c->want) && c->n < 8) {
		c->inside = 1;
		c->len = 0;
		c->texts[c->n][0] = '\0';
	}
}

static void XMLCALL collect_end(void *user, const XML_Char *name)
{
	struct collect *c = user;

	(void)name;
	if (c->inside)
		c->n++;
	c->inside = 0;
}

static void XMLCALL collect_text(void *user, const XML_Char *s, int len)
{
	struct collect *c = user;

	if (c->inside && c->len + (size_t)len < sizeof(c->texts[0])) {
		memcpy(c->texts[c->n] + c->len, s, (size_t)len);
		c->len += (size_t)len;
		c->texts[c->n][c->len] = '\0';
	}
}

static void collect(const struct buf *b, const char *want, struct collect *c)
{
	XML_Parser p = XML_ParserCreateNS(NULL, '|');

	memset(c, 0, sizeof(*c));
	c->want = want;
	XML_SetUserData(p, c);
	XML_SetElementHandler(p, collect_start, collect_end);
	XML_SetCharacterDataHandler(p, collect_text);
	assert_int_equal(XML_Parse(p, (const char *)b->data, (int)b->len, 1), XML_STATUS_OK);
	XML_ParserFree(p);
}

static void test_delete_body(void **state)
{
	char k0[] = "plain/key", k1[] = "a&b<c>d\"e'f", k2[] = "line\r\nbreak\ttab",
	     k3[] = "\xc3\xa9t\xc3\xa9 ]]>";
	char *keys[] = {k0, k1, k2, k3};
	char bad[] = "bell\x07";
	char *bad_keys[] = {bad};
	struct collect c;
	struct buf b;

	(void)state;
	buf_init(&b, 1024 * 1024);
	assert_int_equal(s3_xml_delete_body(keys, 4, &b), 0);
	assert_non_null(strstr((const char *)b.data, "<Quiet>true</Quiet>"));
	assert_null(strstr((const char *)b.data, "a&b"));
	collect(&b, "Key", &c);
	assert_int_equal(c.n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(c.texts[i], keys[i]);
	buf_reset(&b);
	assert_int_equal(s3_xml_delete_body(bad_keys, 1, &b), CF_ERR_FORMAT);
	assert_null(strstr(error_message(), "bell"));
	buf_reset(&b);
	assert_int_equal(s3_xml_delete_body(keys, 0, &b), CF_ERR_INTERNAL);
	buf_free(&b);
}

static void test_complete_body(void **state)
{
	char e0[] = "\"a54357aff0632cce46d942af68356b38\"",
	     e1[] = "\"0c78aef83f66abc1fa1e8477f296d394\"",
	     e2[] = "\"acbd18db4cc2f85cedef654fccc4a4d8\"";
	char *etags[] = {e0, e1, e2};
	struct collect c;
	struct buf b;

	(void)state;
	buf_init(&b, 1024 * 1024);
	assert_int_equal(s3_xml_complete_body(etags, 3, &b), 0);
	assert_non_null(
	    strstr((const char *)b.data,
	           "<Part><PartNumber>2</PartNumber><ETag>&quot;0c78aef83f66abc1fa1e8477f296d394"
	           "&quot;</ETag></Part>"));
	collect(&b, "ETag", &c);
	assert_int_equal(c.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(c.texts[i], etags[i]);
	collect(&b, "PartNumber", &c);
	assert_string_equal(c.texts[0], "1");
	assert_string_equal(c.texts[2], "3");
	buf_free(&b);
	/* The caller's bound holds. */
	buf_init(&b, 64);
	assert_int_equal(s3_xml_complete_body(etags, 3, &b), CF_ERR_LIMIT);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_objects),
	    cmocka_unit_test(test_list_objects_prefixed_and_empty),
	    cmocka_unit_test(test_list_objects_bad),
	    cmocka_unit_test(test_list_limits),
	    cmocka_unit_test(test_list_uploads),
	    cmocka_unit_test(test_upload_id),
	    cmocka_unit_test(test_complete),
	    cmocka_unit_test(test_error_reply),
	    cmocka_unit_test(test_delete_result),
	    cmocka_unit_test(test_sts_credentials),
	    cmocka_unit_test(test_delete_body),
	    cmocka_unit_test(test_complete_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
