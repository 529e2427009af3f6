/* profile.h - a profile: the directory that holds one user's identity, history,
 * trust pins, downloads and settings, and the lock that lets one process own
 * it at a time.
 *
 * Where (el_profile_dir), first match wins:
 *   $ECHOLINK_HOME/<name>                  (set and non-empty; tests use it)
 *   $XDG_DATA_HOME/echolink/<name>         (set, non-empty and absolute, as the
 *                                           XDG spec says relative ones are ignored)
 *   $HOME/.local/share/echolink/<name>
 * A profile name is 1..64 characters of [A-Za-z0-9._-], not starting with '.'
 * (so it is never "", ".", ".." or a hidden file, and never contains '/').
 *
 * Layout of the directory (mode 0700, owned by the user; a directory that
 * grants anything to group or others is refused, like ssh refuses ~/.ssh):
 *
 *   | file          | what                                        | mode |
 *   |---------------|---------------------------------------------|------|
 *   | identity.key  | key file of crypto/backup.h (unencrypted)   | 0600 |
 *   | history.db    | message history (SQLite)                    | 0600 |
 *   | trust.db      | TOFU pins (client/trust.h)                  | 0600 |
 *   | profile.json  | settings: {"name": str, "servers": [url]}   | 0600 |
 *   | files/        | downloads (created by el_profile_open)      | 0700 |
 *   | control.sock  | control socket of the owner (client/ctl.h)  | 0600 |
 *   | lock          | flock()ed by the owner; holds its pid       | 0600 |
 *
 * Ownership: el_profile_lock takes flock(LOCK_EX|LOCK_NB) on `lock` through a
 * descriptor kept open until el_profile_close, and writes the pid into the
 * file. flock locks belong to the open file description, so the kernel
 * releases them when the owner exits however it exits: a pid left in the file
 * by a crashed owner never blocks anyone (it is only read while someone holds
 * the lock). Two el_profile handles in one process conflict like two
 * processes do.
 *
 * profile.json is read at open and rewritten whole on every change (temporary
 * file, fsync, rename), so a crash leaves the old or the new file. Members
 * this module does not know are kept as they are.
 *
 * Conventions: functions return EL_OK or a negative el_err (base/err.h) and,
 * when `err` is not NULL, describe a failure in err/errlen in words meant for
 * the user (with the fix where there is one). Strings passed in are only
 * read during the call. Codes: EL_ERR_INVALID (bad name or argument, a
 * malformed settings file), EL_ERR_NOT_FOUND (no such profile, no identity),
 * EL_ERR_EXISTS (an identity is already there), EL_ERR_DENIED (a directory or
 * file mode that grants access to others, or not ours), EL_ERR_STATE (the
 * profile is locked by another process or handle), EL_ERR_IO, EL_ERR_NOMEM,
 * and from crypto/backup.h EL_ERR_CRYPTO (bad passphrase). One el_profile is
 * used by one thread at a time; nothing here keeps global state. */
#ifndef EL_CLIENT_PROFILE_H
#define EL_CLIENT_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "crypto/identity.h"

#define EL_PROFILE_NAME_MAX 64       /* characters of a profile name */
#define EL_PROFILE_DEFAULT "default" /* the name used without --profile */
#define EL_PROFILE_DISPLAY_MAX 64    /* bytes of a display name (PROTOCOL.md §4) */
#define EL_PROFILE_SERVERS_MAX 16    /* server URLs in the settings */
#define EL_PROFILE_URL_MAX 2048      /* bytes of one server URL */

/* Flags of el_profile_open. */
#define EL_PROFILE_CREATE 1u /* create the directory (and parents) if missing */

/* Flags of el_profile_export / el_profile_import. */
#define EL_PROFILE_FORCE 1u  /* replace an existing file / identity */

typedef struct el_profile el_profile;

/* EL_OK when `name` is an acceptable profile name, else EL_ERR_INVALID with a
 * message saying what is allowed. */
int el_profile_valid_name(const char *name, char *err, size_t errlen);

/* Writes the directory of profile `name` (see the top of this file) into
 * out/outlen. Does not touch the file system. EL_ERR_INVALID for a bad name,
 * no usable environment variable, or a path longer than outlen - 1. */
int el_profile_dir(const char *name, char *out, size_t outlen, char *err, size_t errlen);

/* Opens profile `name`. With EL_PROFILE_CREATE a missing directory is created
 * with its parents (new directories get mode 0700); without it a missing one
 * is EL_ERR_NOT_FOUND "no profile NAME: run `echolink init`". The directory
 * must be ours and grant nothing to group or others (EL_ERR_DENIED, with the
 * chmod that fixes it). Creates files/ when missing and reads profile.json
 * when present. On success *out owns a handle for el_profile_close(); on
 * failure *out is NULL. */
int el_profile_open(const char *name, unsigned flags, el_profile **out, char *err,
                    size_t errlen);

/* Releases the lock (if held) and frees the handle; NULL is a no-op. */
void el_profile_close(el_profile *p);

/* The profile name and paths inside the directory (absolute when the
 * environment variable used was). They belong to `p` and are valid until
 * el_profile_close. */
const char *el_profile_name(const el_profile *p);
const char *el_profile_path(const el_profile *p);          /* the directory */
const char *el_profile_identity_path(const el_profile *p); /* identity.key */
const char *el_profile_history_path(const el_profile *p);  /* history.db */
const char *el_profile_trust_path(const el_profile *p);    /* trust.db */
const char *el_profile_files_path(const el_profile *p);    /* files/ (no trailing '/') */
const char *el_profile_control_path(const el_profile *p);  /* control.sock */
const char *el_profile_lock_path(const el_profile *p);     /* lock */
const char *el_profile_settings_path(const el_profile *p); /* profile.json */

/* ---- the owner lock ------------------------------------------------------ */

/* Makes this handle the profile's owner until el_profile_close (or
 * el_profile_unlock). EL_OK also when this handle holds the lock already.
 * When another process (or another handle) holds it: EL_ERR_STATE, "profile
 * NAME is in use by process PID (echolink chat/listen); ...". A holder that
 * probes the lock at the same instant (el_profile_lock_holder) is waited out
 * for up to about 100 ms. */
int el_profile_lock(el_profile *p, char *err, size_t errlen);

/* Gives the lock up (the lock file stays, emptied of our pid). No-op when
 * this handle does not hold it. */
void el_profile_unlock(el_profile *p);

/* True when this handle holds the lock. */
bool el_profile_locked(const el_profile *p);

/* Who owns the profile: getpid() when this handle holds the lock; the pid
 * written by the holder when another process or handle holds it; 0 when
 * nobody holds it (whatever pid a crashed owner left in the file); -1 when it
 * is held but the pid cannot be read (the owner is starting, or an I/O
 * error). The probe takes a shared lock for an instant. */
pid_t el_profile_lock_holder(const el_profile *p);

/* ---- identity ------------------------------------------------------------ */

/* True when identity.key exists (whatever its contents). */
bool el_profile_has_identity(const el_profile *p);

/* Generates a new identity and saves it unencrypted to identity.key (0600,
 * atomically). An existing identity.key is never replaced: EL_ERR_EXISTS
 * "profile NAME already has an identity; ...". On success *out (when out is
 * not NULL) owns the identity for el_identity_free(); on failure it is NULL. */
int el_profile_create_identity(el_profile *p, el_identity **out, char *err, size_t errlen);

/* Loads identity.key; `passphrase` may be NULL (see el_backup_load_file:
 * EL_ERR_DENIED when the file is encrypted and none is given). A missing file
 * is EL_ERR_NOT_FOUND "profile NAME has no identity: run `echolink init`".
 * On success *out owns the identity; on failure it is NULL. */
int el_profile_load_identity(const el_profile *p, const char *passphrase, el_identity **out,
                             char *err, size_t errlen);

/* Writes the profile's identity to `path` as a passphrase-protected backup
 * (PROTOCOL.md §10.4, readable by the browser client too), mode 0600,
 * atomically. `passphrase` must be non-empty. An existing `path` is
 * EL_ERR_EXISTS unless `flags` has EL_PROFILE_FORCE. */
int el_profile_export(const el_profile *p, const char *path, const char *passphrase,
                      unsigned flags, char *err, size_t errlen);

/* Reads a backup from `path` (at most EL_BACKUP_FILE_MAX bytes, any mode: a
 * backup is encrypted) and installs it as identity.key, unencrypted. A wrong
 * passphrase is EL_ERR_CRYPTO. An existing identity is kept (EL_ERR_EXISTS)
 * unless `flags` has EL_PROFILE_FORCE; replacing it while another process
 * runs on the profile is the caller's business (hold the lock). On success
 * *out (when out is not NULL) owns the imported identity. */
int el_profile_import(el_profile *p, const char *path, const char *passphrase, unsigned flags,
                      el_identity **out, char *err, size_t errlen);

/* ---- settings (profile.json) --------------------------------------------- */

/* The display name, or NULL when none is set. Valid until the next change of
 * the settings or el_profile_close. */
const char *el_profile_display_name(const el_profile *p);

/* Sets (or, with NULL, removes) the display name: 1..64 bytes of UTF-8
 * without control characters, else EL_ERR_INVALID. Saved at once. */
int el_profile_set_display_name(el_profile *p, const char *name, char *err, size_t errlen);

/* The server URLs, in the order given. The strings are valid until the next
 * change of the settings or el_profile_close. */
size_t el_profile_server_count(const el_profile *p);
const char *el_profile_server(const el_profile *p, size_t i); /* NULL when i is out of range */

/* Replaces the server list with urls[0..n): at most EL_PROFILE_SERVERS_MAX
 * URLs, each ws://, wss://, http:// or https:// followed by at least one
 * character, at most EL_PROFILE_URL_MAX bytes of printable ASCII without
 * spaces (EL_ERR_INVALID). n = 0 empties the list. Saved at once. */
int el_profile_set_servers(el_profile *p, const char *const *urls, size_t n, char *err,
                           size_t errlen);

/* Any other member of profile.json. The value is borrowed (valid until the
 * next change of the settings); NULL when absent. */
json_t *el_profile_setting(const el_profile *p, const char *key);

/* Sets member `key` to `value` (the reference is stolen, as json_object_set_new
 * does, also on failure); value NULL removes the member. "name" and
 * "servers" are checked as by their own setters. Saved at once; on failure
 * the settings in memory are unchanged. */
int el_profile_set_setting(el_profile *p, const char *key, json_t *value, char *err,
                           size_t errlen);

#endif
