/* backup.h - the identity backup of docs/PROTOCOL.md §10.4 (shared with the
 * browser client), and the C client's own key file (vectors under "backup"
 * and "backup_negative" in tests/vectors/e2ee.json).
 *
 * Backup: one UTF-8 JSON object, written compact with its members in this
 * order (readers accept any order and ignore unknown members):
 *
 *   {"echolink_backup":1,"kdf":"scrypt","n":131072,"r":8,"p":1,
 *    "salt":"<b64url 16 bytes>","nonce":"<b64url 12 bytes>","ct":"<b64url 81 bytes>"}
 *
 *   key = scrypt(passphrase as UTF-8 bytes, salt, n, r, p, 32 bytes)
 *   ct  = AES-256-GCM(key, nonce,
 *                     ad = "echolink-v1-backup" 0x00 ‖ u32(n) ‖ u32(r) ‖ u32(p) ‖ salt,
 *                     plaintext = 0x01 ‖ ik_seed (32) ‖ sk_private (32)) ‖ tag (16)
 *
 * Export uses n = 2^17, r = 8, p = 1 (128 MiB, about 0.3 s). Import accepts
 * n a power of two in 2^10..2^20, r = 8, p in 1..4: anything else is
 * EL_ERR_INVALID before any work is done, so a hostile file cannot make us
 * allocate more than 1 GiB. The passphrase is used byte for byte (no Unicode
 * normalisation, like the browser client).
 *
 * Key file (C client only): the same JSON object, either encrypted exactly as
 * a backup, or unencrypted as
 *
 *   {"echolink_backup":1,"kdf":"none","keys":"<b64url of the 65-byte plaintext>"}
 *
 * It is written with mode 0600 and, like ssh's private keys, refused on load
 * when its mode grants anything to group or others.
 *
 * Errors (detail text in err/errlen when err is not NULL):
 *   EL_ERR_INVALID   NULL argument, malformed JSON, a missing or malformed
 *                    member, unsupported parameters or version
 *   EL_ERR_CRYPTO    "bad passphrase or corrupted backup" (the AEAD does not
 *                    authenticate: wrong passphrase, or any altered byte of
 *                    n, r, p, salt, nonce or ct), or a crypto backend failure
 *                    (scrypt's 128·r·n bytes not available included)
 *   EL_ERR_NOMEM     out of memory
 *   EL_ERR_NOT_FOUND the key file does not exist
 *   EL_ERR_IO        a file cannot be read or written
 *   EL_ERR_DENIED    key file readable by others, or encrypted and no
 *                    passphrase given
 *   EL_ERR_EXISTS    saving without EL_BACKUP_REPLACE onto an existing file
 *   EL_ERR_TOO_LARGE a key file longer than EL_BACKUP_FILE_MAX bytes
 *
 * Secrets (seeds, scrypt key, plaintext, file text) are cleansed from every
 * buffer this module owns before it is freed. Nothing keeps global state. */
#ifndef EL_CRYPTO_BACKUP_H
#define EL_CRYPTO_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/identity.h"

#define EL_BACKUP_SALT_LEN 16
#define EL_BACKUP_NONCE_LEN 12
#define EL_BACKUP_PT_LEN 65          /* 0x01 ‖ ik_seed ‖ sk_private */
#define EL_BACKUP_CT_LEN (EL_BACKUP_PT_LEN + 16)
#define EL_BACKUP_N_DEFAULT (1u << 17)
#define EL_BACKUP_N_MIN (1u << 10)
#define EL_BACKUP_N_MAX (1u << 20)
#define EL_BACKUP_R 8
#define EL_BACKUP_P_MAX 4
#define EL_BACKUP_FILE_MAX 65536     /* longest key file read */

/* Flags of el_backup_save_file. */
#define EL_BACKUP_REPLACE 1u         /* replace an existing file (atomically) */

/* Exports `id` under `passphrase` (NUL-terminated, non-empty) with the
 * default parameters and fresh random salt and nonce. On success *json is a
 * NUL-terminated string the caller frees with free(); on failure it is NULL. */
int el_backup_export(const el_identity *id, const char *passphrase, char **json, char *err,
                     size_t errlen);

/* Same with explicit n, p, salt and nonce: for test vectors and tests only.
 * Never call it twice with one passphrase, salt and nonce for different
 * identities (AES-GCM nonce reuse). n and p must be acceptable to import. */
int el_backup_export_params(const el_identity *id, const char *passphrase, uint32_t n,
                            uint32_t p, const uint8_t salt[EL_BACKUP_SALT_LEN],
                            const uint8_t nonce[EL_BACKUP_NONCE_LEN], char **json, char *err,
                            size_t errlen);

/* Imports a backup (`json` NUL-terminated, "kdf":"scrypt" only; an
 * unencrypted key file is refused here, use el_backup_load_file). On success
 * *out owns a new identity for el_identity_free(); on failure it is NULL. */
int el_backup_import(const char *json, const char *passphrase, el_identity **out, char *err,
                     size_t errlen);

/* Writes `id` to `path` as a key file with mode 0600: encrypted as a backup
 * when `passphrase` is not NULL, else unencrypted ("kdf":"none"). The file is
 * written to a temporary file in the same directory, synced, then moved into
 * place, so a crash leaves either the old file or the new one. Without
 * EL_BACKUP_REPLACE in `flags` an existing `path` is EL_ERR_EXISTS and left
 * alone (an identity is never overwritten by accident). */
int el_backup_save_file(const char *path, const el_identity *id, const char *passphrase,
                        unsigned flags, char *err, size_t errlen);

/* Loads a key file written by el_backup_save_file (or any backup). The file
 * must be a regular file whose mode grants nothing to group or others.
 * `passphrase` may be NULL for an unencrypted file; an encrypted one then
 * fails with EL_ERR_DENIED (ask the user and call again). A passphrase given
 * for an unencrypted file is not needed and ignored. */
int el_backup_load_file(const char *path, const char *passphrase, el_identity **out,
                        char *err, size_t errlen);

#endif
