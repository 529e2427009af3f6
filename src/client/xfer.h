/* xfer.h - the disk side of file transfers (docs/PROTOCOL.md §11 FILE_META,
 * FILE_ACCEPT, FILE_CANCEL, FILE_COMPLETE and the kind 0x02 chunks of §9.3).
 *
 * Both ends stream from disk to disk in bounded memory: nothing here keeps
 * file data beyond a call, except one fixed hashing buffer (EL_XFER_HASH_BUF)
 * that lives only while a hash is computed. The network side (channels,
 * backpressure, messages) is the session's.
 *
 * Sender (el_xfer_src): open the file, hash it for FILE_META's sha256, then
 * read EL_XFER_CHUNK bytes at a time from the offset of FILE_ACCEPT. Every
 * read checks that the file still has the size and mtime it had at open
 * (EL_ERR_STATE otherwise): a file edited during a transfer is never sent as
 * if it were the announced one. A same-size rewrite within one mtime tick is
 * invisible to that check; the receiver's SHA-256 check still catches it.
 *
 * Receiver (el_xfer_sink): bytes go to `<dir>/.<file_id>.part` (mode 0600),
 * strictly in order. The part file is the only state: after a crash or
 * restart of either side, el_xfer_sink_open on the same file_id re-hashes
 * what is there and el_xfer_sink_offset says where to resume (the FILE_ACCEPT
 * offset). Nothing is fsync'ed before finish, so after a power loss the part
 * may hold garbage; the final SHA-256 check then fails, the part is reset and
 * the retry starts from 0. When complete, el_xfer_sink_finish checks the
 * SHA-256 and moves the part to a fresh name in `dir` ("a.txt", "a (1).txt",
 * ...), never replacing an existing file.
 *
 *   open --write*--> complete --finish OK--> finished (only free is allowed)
 *                              --finish mismatch--> offset 0, part empty
 *   any --discard--> discarded (part removed; only free is allowed)
 *
 * Conventions: functions return EL_OK or a negative el_err (base/err.h) and,
 * when `err` is not NULL, describe a failure in err/errlen (with the path and
 * strerror text for system errors). Strings passed in are only read during
 * the call. EL_ERR_INVALID: NULL or malformed argument; EL_ERR_IO: a system
 * call failed; EL_ERR_STATE: the source changed, or the call does not fit the
 * sink's state; EL_ERR_TOO_LARGE: beyond the announced size; EL_ERR_CRYPTO:
 * SHA-256 mismatch or a hashing backend failure; EL_ERR_NOMEM. One handle is
 * used by one thread at a time; calls block on disk I/O (a resume re-hashes
 * the existing part, ~0.5 s per 200 MiB). */
#ifndef EL_CLIENT_XFER_H
#define EL_CLIENT_XFER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/msg.h"

#define EL_XFER_CHUNK EL_CHUNK_DATA_MAX      /* chunk payload the session sends */
#define EL_XFER_HASH_BUF (256 * 1024)        /* the one buffer of a hash pass */
#define EL_XFER_HEX_SIZE 65                  /* SHA-256 as lowercase hex + NUL */
#define EL_XFER_NAME_MAX EL_MSG_NAME_MAX     /* bytes of a file name (§11) */
#define EL_XFER_SIZE_MAX EL_MSG_UINT_MAX     /* 2^53 - 1 */

typedef struct el_xfer_src el_xfer_src;
typedef struct el_xfer_sink el_xfer_sink;

/* Called after each buffer of a hash pass with the bytes hashed so far and
 * the total; returning non-zero stops the pass, which then fails with
 * EL_ERR_STATE ("aborted"). */
typedef int (*el_xfer_progress_cb)(uint64_t done, uint64_t total, void *user);

/* What identifies the source file's content at open, so that a sender that
 * restarts can tell whether the path still holds the announced file without
 * hashing it again. Plain data. */
typedef struct {
    uint64_t size;
    int64_t mtime_sec;
    long mtime_nsec;
    uint64_t dev;
    uint64_t ino;
} el_xfer_stamp;

/* ---- helpers ------------------------------------------------------------- */

/* SHA-256 of everything readable from fd (from offset 0 to EOF, with pread:
 * the file position is not used), as lowercase hex into out_hex. */
int el_xfer_hash_fd(int fd, char out_hex[EL_XFER_HEX_SIZE], char *err, size_t errlen);

/* SHA-256 of the file at `path` (opened read-only), as lowercase hex. */
int el_xfer_sha256_path(const char *path, char out_hex[EL_XFER_HEX_SIZE], char *err,
                        size_t errlen);

/* MIME type for a file name by its extension (case-insensitive; txt, md,
 * pdf, png, jpg/jpeg, gif, webp, mp3, ogg, opus, wav, m4a, mp4, webm, zip, gz,
 * tar, json, html, csv), else "application/octet-stream". Static string. */
const char *el_xfer_guess_mime(const char *name);

/* Writes `<dir>/.<file_id_hex>.part` into out[outlen]. EL_ERR_INVALID for a
 * file_id that is not 32 lowercase hex, EL_ERR_TOO_LARGE when out is short. */
int el_xfer_part_path(const char *dir, const char *file_id_hex, char *out, size_t outlen);

/* Removes the part file of a transfer with no open sink (a cancel after a
 * restart). A missing part is not an error. */
int el_xfer_part_remove(const char *dir, const char *file_id_hex, char *err, size_t errlen);

/* ---- sender -------------------------------------------------------------- */

/* Opens `path` read-only; it must be a regular file (EL_ERR_INVALID "not a
 * regular file" otherwise). On success *out owns a handle for
 * el_xfer_src_free(); on failure *out is NULL. */
int el_xfer_src_open(const char *path, el_xfer_src **out, char *err, size_t errlen);

/* Closes the file; NULL is a no-op. */
void el_xfer_src_free(el_xfer_src *src);

/* The size recorded at open. */
uint64_t el_xfer_src_size(const el_xfer_src *src);

/* The name for FILE_META: the path's last component made valid for §11
 * (invalid UTF-8, '\' and control characters become '_', cut to 255 bytes
 * at a character boundary). Owned by src, valid until el_xfer_src_free. */
const char *el_xfer_src_name(const el_xfer_src *src);

/* The file's identity at open (see el_xfer_stamp). */
void el_xfer_src_stamp(const el_xfer_src *src, el_xfer_stamp *out);

/* SHA-256 of the recorded size bytes, as lowercase hex. EL_ERR_STATE when
 * the file changed during the pass. cb may be NULL. */
int el_xfer_src_sha256(el_xfer_src *src, char out_hex[EL_XFER_HEX_SIZE], char *err,
                       size_t errlen);
int el_xfer_src_sha256_progress(el_xfer_src *src, char out_hex[EL_XFER_HEX_SIZE],
                                el_xfer_progress_cb cb, void *user, char *err, size_t errlen);

/* Reads up to cap bytes at `offset` into buf; *n < cap only at the recorded
 * end (0 at offset == size). EL_ERR_INVALID for offset > size, EL_ERR_STATE
 * when the file's size or mtime differ from those at open. */
int el_xfer_src_read(el_xfer_src *src, uint64_t offset, void *buf, size_t cap, size_t *n,
                     char *err, size_t errlen);

/* ---- receiver ------------------------------------------------------------ */

/* Opens (creating, or resuming) the part file of a transfer announced by
 * FILE_META into the existing directory `dir`. Checks: file_id_hex 32
 * lowercase hex, sha256_hex 64 lowercase hex, size <= 2^53-1, name valid
 * UTF-8 of 1..255 bytes without '/', '\' or control characters and not "."
 * or ".." (EL_ERR_INVALID). The final name is `name` with a leading '.'
 * turned into "_." (no hidden files) and Unicode direction controls into '_'
 * (no "txt.exe" spoofing). An existing part longer than size is cut to size.
 * EL_ERR_STATE when another sink has the same part open. On success *out
 * owns a handle for el_xfer_sink_free(); on failure *out is NULL. */
int el_xfer_sink_open(const char *dir, const char *file_id_hex, const char *name, uint64_t size,
                      const char *sha256_hex, el_xfer_sink **out, char *err, size_t errlen);

/* Closes the part file without removing it (a later open resumes); NULL is a
 * no-op. */
void el_xfer_sink_free(el_xfer_sink *sink);

/* Bytes confirmed on disk: where the next chunk must start. */
uint64_t el_xfer_sink_offset(const el_xfer_sink *sink);
uint64_t el_xfer_sink_size(const el_xfer_sink *sink);
/* 1 when every byte arrived (offset == size) and the sink is neither
 * finished nor discarded, else 0. */
int el_xfer_sink_complete(const el_xfer_sink *sink);
/* The part file's path. Owned by sink. */
const char *el_xfer_sink_part_path(const el_xfer_sink *sink);

/* Writes a chunk. Only offset == el_xfer_sink_offset() is accepted
 * (EL_ERR_INVALID "expected offset X, got Y"); len 0 is EL_ERR_INVALID;
 * offset + len > size is EL_ERR_TOO_LARGE; in those cases nothing is
 * written. A failed write (EL_ERR_IO, e.g. ENOSPC) leaves the offset where
 * it was, so the same chunk may be written again. data is only read during
 * the call. */
int el_xfer_sink_write(el_xfer_sink *sink, uint64_t offset, const void *data, size_t len,
                       char *err, size_t errlen);

/* Ends a complete transfer (EL_ERR_STATE before that). SHA-256 mismatch:
 * EL_ERR_CRYPTO "SHA-256 mismatch", the part is emptied and the sink is back
 * at offset 0 for a retry. Match: the data is fsync'ed, moved to a new name
 * in dir, the directory fsync'ed, and *final_path (malloc'ed, the caller
 * frees it) set to the full path. EL_ERR_EXISTS when no free name is found. */
int el_xfer_sink_finish(el_xfer_sink *sink, char **final_path, char *err, size_t errlen);

/* Cancels: removes the part file. The sink must still be freed. */
int el_xfer_sink_discard(el_xfer_sink *sink, char *err, size_t errlen);

#endif
