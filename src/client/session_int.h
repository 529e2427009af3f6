/* session_int.h - what session.c, session_file.c and session_group.c share.
 * Not part of the public API (session.h). */
#ifndef EL_CLIENT_SESSION_INT_H
#define EL_CLIENT_SESSION_INT_H

#include "client/history.h"
#include "client/link.h"
#include "client/session.h"
#include "client/signal.h"
#include "client/trust.h"
#include "client/xfer.h"
#include "proto/msg.h"

#define SESS_RECEIPT_DELAY_MS 50   /* receipts of one burst travel together */
#define SESS_RETRANSMIT_MS 20000   /* unreceipted rows go again on a live link */
#define SESS_LATER 1               /* a message that cannot apply yet: not receipted */

/* One remote peer we talk to. */
typedef struct sess_peer {
    el_session *s;
    char peer_id[EL_PEER_ID_LEN + 1];
    el_link *link;
    int online;                 /* the server says so (presence) */
    int link_failed;            /* the last connection attempt failed: while
                                 * it is not repaired, the server's offline
                                 * queue carries messages even to an online
                                 * peer (no direct path, e.g. blocked UDP) */
    int has_bundle;             /* bundle from the server's peer objects */
    el_id_bundle bundle;
    char *name;
    int64_t flushed_seq;        /* outbox rows up to here went on this connection */
    GPtrArray *receipts;        /* ids (char *) owed a DELIVERY_RECEIPT */
    GSource *receipt_timer;
    GSource *retransmit;        /* while ready: re-sends what was not receipted */
} sess_peer;

/* An outgoing file being streamed on a channel. */
typedef struct sess_xout {
    char file_id[EL_MSG_ID_SIZE];
    uint8_t fid[EL_CHUNK_ID_LEN];
    char conv[2 + EL_MSG_ID_SIZE + 1];
    sess_peer *peer;
    el_xfer_src *src;
    el_channel *ch;             /* NULL until opened */
    int open;                   /* the channel is keyed */
    uint64_t offset;            /* next byte to send */
    uint64_t size;
    uint64_t last_progress;
    uint8_t *buf;               /* one chunk plaintext */
} sess_xout;

typedef struct sess_hash_job sess_hash_job;

/* An incoming file being written. */
typedef struct sess_xin {
    char file_id[EL_MSG_ID_SIZE];
    char conv[2 + EL_MSG_ID_SIZE + 1];
    sess_peer *peer;
    el_xfer_sink *sink;
    uint64_t last_progress;
    uint64_t last_saved;        /* offset last written to history.db */
    uint64_t accepted_at;       /* offset of our last FILE_ACCEPT */
    el_channel *ch;             /* the channel the last chunk came on */
} sess_xin;

struct el_session {
    GMainContext *ctx;
    const el_identity *id;
    char self[EL_PEER_ID_LEN + 1];
    el_session_event_cb cb;
    void *user;
    /* configuration (copies) */
    char **urls;
    char *name;
    char *download_dir;
    char **local_addrs;
    int auto_accept;
    uint64_t max_auto_accept;
    /* ICE servers from the login ack */
    char **ice_urls;
    char *turn_user, *turn_cred;
    el_peer_config pcfg;
    el_link_config lcfg;
    el_signal *sig;
    el_hist *hist;
    el_trust *trust;
    GHashTable *peers;          /* peer_id -> sess_peer */
    GHashTable *xouts;          /* file_id -> sess_xout */
    GHashTable *xins;           /* file_id -> sess_xin */
    GPtrArray *hash_jobs;       /* sess_hash_job*: files being hashed before their offer */
    int logged_in;
    unsigned tx_depth;          /* sess_tx_begin nesting */
    int tx_failed;              /* a nested part failed: roll back at the end */
    GPtrArray *tx_events;       /* events of the open transaction (json_t *), emitted at
                                 * its commit, dropped at its rollback */
    GHashTable *enveloping;     /* outbox seqs (int64) handed to the server, not acked yet */
    el_session_stats stats;
    el_msg_stats mstats;
};

/* session.c */
/* One history transaction across nested steps (history.h allows only one
 * open at a time): the outermost end commits, or rolls everything back when
 * any step failed. end returns EL_OK or the failure. */
int sess_tx_begin(el_session *s, char *err, size_t errlen);
int sess_tx_end(el_session *s, int ok, char *err, size_t errlen);
void sess_emit(el_session *s, json_t *ev);         /* takes the reference */
void sess_error(el_session *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
sess_peer *sess_peer_get(el_session *s, const char *peer_id); /* creates */
int sess_queue(el_session *s, const char *to, const el_msg *m, const uint8_t *pt, size_t len,
               char *err, size_t errlen);
int sess_send_now(el_session *s, sess_peer *p, const uint8_t *pt, size_t len);
int sess_build(el_msg *m, uint8_t **pt, size_t *len, char *err, size_t errlen);
void sess_flush(el_session *s, sess_peer *p);
int sess_parse_conv(const char *conv, char out[2 + EL_MSG_ID_SIZE + 1], int *is_group,
                    char id[EL_MSG_ID_SIZE], char *err, size_t errlen);
int sess_has_work(el_session *s, sess_peer *p);

/* session_file.c */
/* < 0: storing failed (the message is not receipted, so it comes again) */
int sess_file_on_msg(el_session *s, sess_peer *p, const el_msg *m, const char *conv);
void sess_file_on_chunk(el_session *s, sess_peer *p, el_channel *ch, const el_msg_chunk *c);
void sess_file_on_ready(el_session *s, sess_peer *p);
void sess_file_on_down(el_session *s, sess_peer *p);
void sess_file_on_channel_open(el_session *s, sess_peer *p, el_channel *ch);
void sess_file_on_channel_close(el_session *s, sess_peer *p, el_channel *ch);
void sess_file_on_low(el_session *s, sess_peer *p, el_channel *ch);
int sess_file_unfinished(el_session *s, sess_peer *p);
void sess_xout_free(void *x);
void sess_file_jobs_free(el_session *s); /* stops and joins the hashing threads */
void sess_xin_free(void *x);

/* session_group.c */
/* 0 applied or refused for good, SESS_LATER, or < 0 storing failed */
int sess_group_on_msg(el_session *s, sess_peer *p, const el_msg *m);
/* The members of a group other than us (for fan-out); NULL-terminated, for
 * g_strfreev; NULL when we are not a member. */
char **sess_group_recipients(el_session *s, const char *group_id);
int sess_group_is_member(el_session *s, const char *group_id, const char *peer_id);

#endif
