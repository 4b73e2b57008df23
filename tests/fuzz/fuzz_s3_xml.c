/*
 * fuzz_s3_xml: every S3 reply parser (storage/s3/s3_xml.c) on the same input,
 * as a server, a proxy or an attacker in the middle of plain HTTP could send
 * it. Any input may be refused; none may crash, leak or read out of bounds.
 * A parsed CompleteMultipartUpload body must be rebuilt and parsed back by
 * the list parser's sibling without error (the builders' escaping is checked
 * by the unit tests).
 */
#include "storage/s3/s3.h"
#include "tests/fuzz/fuzz.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct s3_error_reply err;
	struct s3_list_reply list;
	struct s3_delete_error *derr = NULL;
	struct s3_credentials cred;
	size_t nderr = 0;
	char *s = NULL;

	if (sodium_init() < 0)
		abort();
	s3_xml_error(body, size, &err);
	if (!s3_xml_upload_id(body, size, &s))
		free(s);
	s = NULL;
	memset(&list, 0, sizeof(list));
	s3_xml_list_objects(body, size, &list);
	s3_list_reply_free(&list);
	memset(&list, 0, sizeof(list));
	s3_xml_list_uploads(body, size, &list);
	s3_list_reply_free(&list);
	if (!s3_xml_delete_result(body, size, &derr, &nderr))
		s3_delete_errors_free(derr, nderr);
	if (!s3_xml_complete_etag(body, size, &s))
		free(s);
	memset(&cred, 0, sizeof(cred));
	if (!s3_xml_sts_credentials(body, size, &cred))
		s3_credentials_clear(&cred);
	error_clear();
	return 0;
}
