/*
 * k8s_intern: what the k8s_*.c files share and nobody else uses: the
 * client's settings as read from a kubeconfig or the pod, and credential
 * renewal. The unit tests read the settings here to check kubeconfig parsing
 * without a server.
 */
#ifndef COFFER_K8S_INTERN_H
#define COFFER_K8S_INTERN_H

#include "agent/source/kubernetes/k8s.h"
#include "agent/source/source_db.h"

#include "http/http.h"

#include <stdint.h>

/* Bytes of PEM (a CA bundle, a client certificate or key) handed to curl as a
 * blob. A secret blob (a private key) is in sodium_malloc memory. */
struct k8s_blob {
	uint8_t *data;
	size_t len;
	int secret;
};

/* An exec credential plugin (users[].user.exec). */
struct k8s_exec {
	char *api_version;  /* client.authentication.k8s.io/v1 or /v1beta1 */
	struct strv argv;   /* command (resolved against the kubeconfig's folder
	                     * when it has a '/'), then args */
	struct strv env;    /* "NAME=value" for env entries and KUBERNETES_EXEC_INFO */
	char *install_hint; /* or NULL */
};

enum k8s_auth {
	K8S_AUTH_NONE,
	K8S_AUTH_TOKEN,      /* token in the kubeconfig */
	K8S_AUTH_TOKEN_FILE, /* tokenFile, or the service account's token */
	K8S_AUTH_CERT,       /* client certificate and key only */
	K8S_AUTH_BASIC,      /* username and password */
	K8S_AUTH_EXEC,       /* exec plugin: a token or a certificate and key */
};

struct k8s_client {
	char *kubeconfig; /* the file read (absolute), NULL in-cluster */
	char *context;    /* the context used, NULL in-cluster */
	char *cluster;    /* its cluster's and user's names, for messages */
	char *user;
	char *ns;         /* namespace, or NULL */
	char *server;     /* as configured, without a trailing '/' */
	char *url_base;   /* what paths are appended to: server, with its host
	                   * replaced by tls_server_name when that is set */
	char *connect_to; /* CURLOPT_CONNECT_TO entry sending url_base's host to
	                   * the server's, when tls_server_name is set */
	char *tls_server_name;
	char *proxy_url;
	int insecure;  /* insecure-skip-tls-verify */
	char *ca_file; /* certificate-authority (absolute), or NULL */
	struct k8s_blob ca_data;
	char *cert_file; /* client-certificate / client-key (absolute) */
	char *key_file;
	struct k8s_blob cert_data; /* client-certificate-data, or an exec plugin's */
	struct k8s_blob key_data;  /* client-key-data, or an exec plugin's (secret) */
	enum k8s_auth auth;
	char *token;      /* bearer token (sodium_malloc), or NULL */
	char *token_file; /* re-read at open and on a 401 (absolute) */
	char *username;
	char *password;                 /* sodium_malloc */
	char *impersonate;              /* "as", or NULL */
	struct strv impersonate_groups; /* "as-groups" */
	struct k8s_exec *exec;
	int64_t expiry_ms; /* when the exec credential expires; 0: never said */
	long timeout_s;
	struct http_client *http; /* made at the first request (k8s_http.c) */
	char describe[1024];
};

/* Renews what can be renewed: re-runs the exec plugin or re-reads the token
 * file. Errors: as k8s_client_open(). */
int k8s_client_renew(struct k8s_client *c);
/* 1 if k8s_client_renew() can give a different credential. */
int k8s_client_renewable(const struct k8s_client *c);

#endif
