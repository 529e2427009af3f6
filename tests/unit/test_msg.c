/* test_msg.c - src/proto/msg against tests/vectors/e2ee.json "messages"
 * (written by gen-e2ee.mjs, an independent node implementation), plus the
 * builders, the plaintext wrapper, file chunks and edge cases of strict JSON
 * the vectors do not spell out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/identity.h"
#include "proto/group.h"
#include "proto/msg.h"
#include "vectors.h"

/* The fuzz target's invariants (el_fuzz_check_msg), run on its seeds below. */
#define EL_FUZZ_MSG_NO_MAIN
#include "../fuzz/fuzz_msg.c"

#include <dirent.h>

/* ---- helpers ---------------------------------------------------------- */

static int parse_text(const char *text, el_msg **m, char *err, size_t errlen)
{
    return el_msg_parse((const uint8_t *)text, strlen(text), m, err, errlen);
}

/* Parses text that must be refused with `want`, and checks *out stays NULL. */
static void expect_refused(const char *text, int want)
{
    char err[256] = "";
    el_msg *m = (el_msg *)1;
    int rc = parse_text(text, &m, err, sizeof err);
    if (rc != want)
        fail_msg("%s: got %d (%s), want %d", text, rc, err, want);
    assert_null(m);
    assert_true(err[0] != '\0'); /* a reason for the log */
}

static el_msg *expect_parsed(const char *text)
{
    char err[256] = "";
    el_msg *m = NULL;
    int rc = parse_text(text, &m, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("%s: got %d (%s), want EL_OK", text, rc, err);
    assert_non_null(m);
    return m;
}

/* Encodes m, checks the plaintext's kind byte, parses the JSON back and
 * compares; returns the re-encoded plaintext for byte comparisons. */
static uint8_t *roundtrip(const el_msg *m, size_t *len)
{
    char err[256] = "";
    uint8_t *pt = NULL;
    el_msg *back = NULL;
    int rc = el_msg_encode(m, &pt, len, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("el_msg_encode(%s): %d %s", el_msg_type_name(m->type), rc, err);
    assert_true(*len >= 2);
    assert_int_equal(pt[0], EL_PT_MESSAGE);
    assert_int_equal(el_msg_parse(pt + 1, *len - 1, &back, err, sizeof err), EL_OK);
    assert_true(el_msg_equal(m, back));
    el_msg_free(back);
    return pt;
}

/* The vectors' "stage" of an invalid message, as our error codes say it. */
static const char *stage_of(int rc)
{
    switch (rc) {
    case EL_ERR_INVALID:
    case EL_ERR_TOO_LARGE: return "syntax";
    case EL_ERR_DENIED: return "group";
    case EL_ERR_CRYPTO: return "signature";
    default: return "?";
    }
}

/* ---- vectors ---------------------------------------------------------- */

static void test_vectors_messages(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *cases = el_vec_cases(doc, "messages", 40);
    size_t i, n_valid = 0, n_invalid = 0, n_unknown = 0;
    json_t *c;
    int seen[EL_MSG_T_GROUP_LEAVE + 1] = {0};
    json_array_foreach(cases, i, c) {
        const char *name = el_vec_str(c, "name");
        const char *text = el_vec_str(c, "json");
        int valid = json_is_true(json_object_get(c, "valid"));
        char err[256] = "";
        el_msg *m = NULL;
        int rc = parse_text(text, &m, err, sizeof err);
        if (!valid) {
            if (rc >= 0)
                fail_msg("messages[%zu] \"%s\": accepted (%d), must be refused", i, name, rc);
            assert_null(m);
            const char *stage = el_vec_str(c, "stage");
            if (strcmp(stage, stage_of(rc)) != 0)
                fail_msg("messages[%zu] \"%s\": refused at stage %s (%d: %s), vectors say %s", i,
                         name, stage_of(rc), rc, err, stage);
            n_invalid++;
            continue;
        }
        if (rc < 0)
            fail_msg("messages[%zu] \"%s\": refused (%d: %s), must be accepted", i, name, rc, err);
        assert_non_null(m);
        json_t *j = json_loads(text, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "t"));
        assert_string_equal(m->id, json_string_value(json_object_get(j, "id")));
        assert_true((double)m->ts == json_number_value(json_object_get(j, "ts")));
        if (rc == EL_MSG_UNKNOWN) {
            /* unknown t: reported as such, not as an error */
            assert_int_equal(m->type, EL_MSG_T_UNKNOWN);
            assert_null(el_msg_type_name(m->type));
            n_unknown++;
        } else {
            assert_int_equal(rc, EL_OK);
            assert_string_equal(el_msg_type_name(m->type), t);
            seen[m->type] = 1;
            size_t len;
            free(roundtrip(m, &len));
            n_valid++;
        }
        json_decref(j);
        el_msg_free(m);
    }
    for (int t = EL_MSG_T_CHAT; t <= EL_MSG_T_GROUP_LEAVE; t++)
        if (!seen[t])
            fail_msg("no valid %s vector", el_msg_type_name((el_msg_type)t));
    assert_int_equal(n_unknown, 1);
    assert_true(n_valid >= 20 && n_invalid >= 20);
    json_decref(doc);
}

/* Field values of a few vectors, so that parsing is not just "no error". */
static el_msg *vector_msg(json_t *doc, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "messages"), i, c)
        if (strcmp(el_vec_str(c, "name"), name) == 0)
            return expect_parsed(el_vec_str(c, "json"));
    fail_msg("no vector \"%s\"", name);
    return NULL;
}

static void test_vector_fields(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");

    el_msg *m = vector_msg(doc, "CHAT with reply_to and group");
    assert_int_equal(m->type, EL_MSG_T_CHAT);
    assert_int_equal(m->ts, 1767225600002ULL);
    assert_true(m->has_group);
    assert_string_equal(m->group, "557978b6d0554c4e1eb189be5545d0c9");
    assert_true(m->u.chat.has_reply_to);
    assert_string_equal(m->u.chat.reply_to, "3cd36c717c9083bec0575e9ff5c07c51");
    assert_int_equal(m->u.chat.text.len, strlen("Grüße 👋")); /* UTF-8 bytes */
    assert_memory_equal(m->u.chat.text.p, "Grüße 👋", m->u.chat.text.len);
    el_msg_free(m);

    m = vector_msg(doc, "READ_RECEIPT with 256 ids");
    assert_int_equal(m->type, EL_MSG_T_READ_RECEIPT);
    assert_int_equal(m->u.receipt.n, 256);
    assert_string_equal(m->u.receipt.ids[0], "03390107c8500fd528493e9a3c9f7c43");
    el_msg_free(m);

    m = vector_msg(doc, "FILE_META voice");
    assert_int_equal(m->type, EL_MSG_T_FILE_META);
    assert_true(m->u.file_meta.voice);
    assert_int_equal(m->u.file_meta.duration_ms, 4200);
    assert_int_equal(m->u.file_meta.size, 123456);
    assert_string_equal(m->u.file_meta.mime.p, "audio/ogg");
    assert_string_equal(m->u.file_meta.name.p, "voice.ogg");
    assert_string_equal(m->u.file_meta.channel, "f:fd62dd7d333dd13940842e5d807c2770");
    el_msg_free(m);

    m = vector_msg(doc, "FILE_META size 2^53-1, name of 255 bytes");
    assert_int_equal(m->u.file_meta.size, EL_MSG_UINT_MAX);
    assert_int_equal(m->u.file_meta.name.len, 255);
    assert_false(m->u.file_meta.voice);
    el_msg_free(m);

    m = vector_msg(doc, "REACTION remove, emoji of 64 bytes");
    assert_true(m->u.reaction.has_remove && m->u.reaction.remove);
    assert_int_equal(m->u.reaction.emoji.len, 64);
    el_msg_free(m);

    m = vector_msg(doc, "GROUP_UPDATE");
    assert_int_equal(m->type, EL_MSG_T_GROUP_UPDATE);
    assert_int_equal(m->u.group.change, EL_GROUP_CHANGE_ADD);
    assert_int_equal(m->u.group.g.state.version, 2);
    assert_int_equal(m->u.group.g.state.n_members, 4);
    assert_int_equal(m->u.group.g.state.n_admins, 2);
    assert_string_equal(m->u.group.g.state.name, "friends");
    el_msg_free(m);

    json_decref(doc);
}

/* ---- strict JSON beyond the vectors ------------------------------------- */

#define ID "0123456789abcdef0123456789abcdef"

static void test_json_edges(void **state)
{
    (void)state;
    el_msg *m;
    /* JSON.parse makes 1.0 and 1e3 integers: so do we */
    m = expect_parsed("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1e3,\"text\":\"x\"}");
    assert_int_equal(m->ts, 1000);
    el_msg_free(m);
    m = expect_parsed("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":12.0,\"text\":\"x\"}");
    assert_int_equal(m->ts, 12);
    el_msg_free(m);
    /* whitespace around the object is JSON */
    m = expect_parsed(" \r\n{\"t\":\"TYPING_STATUS\",\"id\":\"" ID "\",\"ts\":0,\"typing\":false}\n");
    assert_false(m->u.typing.typing);
    el_msg_free(m);
    /* U+0000 inside a text is a character like any other (counted, kept) */
    m = expect_parsed("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"a\\u0000b\"}");
    assert_int_equal(m->u.chat.text.len, 3);
    assert_memory_equal(m->u.chat.text.p, "a\0b", 3);
    el_msg_free(m);
    /* escapes are decoded before the byte count: 6 characters, 1 byte */
    m = expect_parsed("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"\\u0041\"}");
    assert_int_equal(m->u.chat.text.len, 1);
    el_msg_free(m);
    /* a huge number in an unknown member does not break the message */
    m = expect_parsed("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\",\"n\":123456789012345678901234567890}");
    el_msg_free(m);
    /* unknown t still needs valid common members */
    expect_refused("{\"t\":\"POLL\",\"id\":\"x\",\"ts\":1}", EL_ERR_INVALID);
    m = NULL;
    char err[128];
    assert_int_equal(parse_text("{\"t\":\"POLL\",\"id\":\"" ID "\",\"ts\":7,\"group\":\"" ID "\"}", &m, err, sizeof err),
                     EL_MSG_UNKNOWN);
    assert_string_equal(m->id, ID);
    assert_int_equal(m->ts, 7);
    assert_true(m->has_group);
    el_msg_free(m);
    /* a t that only differs after a NUL is not CHAT */
    assert_int_equal(parse_text("{\"t\":\"CHAT\\u0000\",\"id\":\"" ID "\",\"ts\":7}", &m, err, sizeof err),
                     EL_MSG_UNKNOWN);
    el_msg_free(m);

    /* duplicate keys, also when spelled with an escape */
    expect_refused("{\"t\":\"CHAT\",\"\\u0074\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\"}", EL_ERR_INVALID);
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\",\"x\":{\"a\":1,\"a\":2}}", EL_ERR_INVALID);
    /* a lone surrogate escape is not a Unicode string */
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"\\ud800\"}", EL_ERR_INVALID);
    /* invalid UTF-8, a BOM, two values, a bare scalar, empty */
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"\xc3\x28\"}", EL_ERR_INVALID);
    expect_refused("\xef\xbb\xbf{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\"}", EL_ERR_INVALID);
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\"}{}", EL_ERR_INVALID);
    expect_refused("\"CHAT\"", EL_ERR_INVALID);
    expect_refused("", EL_ERR_INVALID);
    /* ts bounds and types */
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":9007199254740992,\"text\":\"x\"}", EL_ERR_INVALID);
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":\"1\",\"text\":\"x\"}", EL_ERR_INVALID);
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":true,\"text\":\"x\"}", EL_ERR_INVALID);
    /* optional members present with null are not absent */
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\",\"reply_to\":null}", EL_ERR_INVALID);
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"group\":null,\"text\":\"x\"}", EL_ERR_INVALID);
    expect_refused("{\"t\":\"REACTION\",\"id\":\"" ID "\",\"ts\":1,\"target\":\"" ID "\",\"emoji\":\"x\",\"remove\":null}",
                   EL_ERR_INVALID);
}

#define SHA "15e470ec647ae0e6734ec2a397d8be444063aebab70fb6775c1a1e5f042b0ae6"
#define META_HEAD "{\"t\":\"FILE_META\",\"id\":\"" ID "\",\"ts\":1,\"file_id\":\"" ID "\",\"size\":5,\"sha256\":\"" SHA \
                  "\",\"channel\":\"f:" ID "\","

static void test_file_meta_rules(void **state)
{
    (void)state;
    el_msg *m = expect_parsed(META_HEAD "\"name\":\"a b.txt\",\"mime\":\"text/plain\"}");
    el_msg_free(m);
    /* file names: escaped slash, NUL, C1 control, U+00A0 (not Cc: allowed) */
    expect_refused(META_HEAD "\"name\":\"a\\/b\",\"mime\":\"text/plain\"}", EL_ERR_INVALID);
    expect_refused(META_HEAD "\"name\":\"a\\u0000b\",\"mime\":\"text/plain\"}", EL_ERR_INVALID);
    expect_refused(META_HEAD "\"name\":\"a\\u009fb\",\"mime\":\"text/plain\"}", EL_ERR_INVALID);
    expect_refused(META_HEAD "\"name\":\"a\\tb\",\"mime\":\"text/plain\"}", EL_ERR_INVALID);
    m = expect_parsed(META_HEAD "\"name\":\"a\\u00a0b\",\"mime\":\"text/plain\"}");
    assert_int_equal(m->u.file_meta.name.len, 4);
    el_msg_free(m);
    /* voice: an object, duration bound inclusive, mime audio/ exactly */
    m = expect_parsed(META_HEAD "\"name\":\"v\",\"mime\":\"audio/ogg\",\"voice\":{\"duration_ms\":86400000,\"x\":1}}");
    assert_true(m->u.file_meta.voice);
    assert_int_equal(m->u.file_meta.duration_ms, 86400000);
    el_msg_free(m);
    expect_refused(META_HEAD "\"name\":\"v\",\"mime\":\"audio\",\"voice\":{\"duration_ms\":1}}", EL_ERR_INVALID);
    expect_refused(META_HEAD "\"name\":\"v\",\"mime\":\"AUDIO/ogg\",\"voice\":{\"duration_ms\":1}}", EL_ERR_INVALID);
    expect_refused(META_HEAD "\"name\":\"v\",\"mime\":\"audio/ogg\",\"voice\":true}", EL_ERR_INVALID);
    expect_refused(META_HEAD "\"name\":\"v\",\"mime\":\"audio/ogg\",\"voice\":{}}", EL_ERR_INVALID);
    expect_refused(META_HEAD "\"name\":\"v\",\"mime\":\"audio/ogg\",\"voice\":{\"duration_ms\":1.5}}", EL_ERR_INVALID);
    /* channel: f: + 32 lowercase hex */
    expect_refused("{\"t\":\"FILE_META\",\"id\":\"" ID "\",\"ts\":1,\"file_id\":\"" ID "\",\"size\":5,\"sha256\":\"" SHA
                   "\",\"channel\":\"f:" ID "0\",\"name\":\"a\",\"mime\":\"a\"}", EL_ERR_INVALID);
    expect_refused("{\"t\":\"FILE_META\",\"id\":\"" ID "\",\"ts\":1,\"file_id\":\"" ID "\",\"size\":5,\"sha256\":\"" SHA
                   "\",\"channel\":\"F:" ID "\",\"name\":\"a\",\"mime\":\"a\"}", EL_ERR_INVALID);
    /* FILE_CANCEL: an empty reason is within 0..256 bytes */
    m = expect_parsed("{\"t\":\"FILE_CANCEL\",\"id\":\"" ID "\",\"ts\":1,\"file_id\":\"" ID "\",\"reason\":\"\"}");
    assert_true(m->u.file_cancel.has_reason);
    assert_int_equal(m->u.file_cancel.reason.len, 0);
    el_msg_free(m);
}

static void test_size_bound(void **state)
{
    (void)state;
    /* exactly 65536 bytes is fine, 65537 is not, however it is padded */
    const char *head = "{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\",\"pad\":\"";
    size_t total = EL_MSG_MAX;
    char *buf = malloc(total + 2);
    assert_non_null(buf);
    size_t hl = strlen(head);
    memcpy(buf, head, hl);
    memset(buf + hl, 'a', total - hl - 2);
    memcpy(buf + total - 2, "\"}", 2);
    el_msg *m = NULL;
    char err[128];
    assert_int_equal(el_msg_parse((uint8_t *)buf, total, &m, err, sizeof err), EL_OK);
    el_msg_free(m);
    memmove(buf + total - 1, "\"}", 2);
    buf[total - 2] = 'a';
    assert_int_equal(el_msg_parse((uint8_t *)buf, total + 1, &m, err, sizeof err), EL_ERR_TOO_LARGE);
    assert_null(m);
    free(buf);
    /* depth: 8 counting the message object is fine (vectors), 9 is not */
    expect_refused("{\"t\":\"CHAT\",\"id\":\"" ID "\",\"ts\":1,\"text\":\"x\",\"v\":{\"a\":[{\"b\":[[[[{}]]]]}]}}",
                   EL_ERR_INVALID);
}

/* ---- builders ------------------------------------------------------------- */

static int is_id(const char *s)
{
    if (strlen(s) != EL_MSG_ID_HEX)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* Builds m, checks the fresh id and ts, parses the output back. */
static void build_ok(el_msg *m)
{
    char err[256] = "";
    uint8_t *pt = NULL;
    size_t len = 0;
    char previous[EL_MSG_ID_SIZE];
    memcpy(previous, m->id, sizeof previous);
    int rc = el_msg_build(m, 1767225600123ULL, &pt, &len, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("el_msg_build(%s): %d %s", el_msg_type_name(m->type), rc, err);
    assert_true(is_id(m->id));
    assert_string_not_equal(m->id, previous); /* 2^-128 chance of a false failure */
    assert_int_equal(m->ts, 1767225600123ULL);
    assert_int_equal(pt[0], EL_PT_MESSAGE);
    el_msg_plain p;
    assert_int_equal(el_msg_plain_split(pt, len, &p, err, sizeof err), EL_OK);
    assert_int_equal(p.kind, EL_PT_MESSAGE);
    el_msg *back = NULL;
    assert_int_equal(el_msg_parse(p.body, p.len, &back, err, sizeof err), EL_OK);
    assert_true(el_msg_equal(m, back));
    /* a second encoding of what was read is the same text */
    size_t len2;
    uint8_t *pt2 = roundtrip(back, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(pt2, pt, len);
    free(pt2);
    el_msg_free(back);
    free(pt);
}

static void build_refused(el_msg *m, int want)
{
    char err[256] = "";
    uint8_t *pt = (uint8_t *)1;
    size_t len = 1;
    int rc = el_msg_build(m, 1, &pt, &len, err, sizeof err);
    if (rc != want)
        fail_msg("el_msg_build(%s) gave %d (%s), want %d", el_msg_type_name(m->type), rc, err, want);
    assert_null(pt);
    assert_int_equal(len, 0);
}

static void test_build_every_type(void **state)
{
    (void)state;
    el_msg m;
    el_msg_init(&m, EL_MSG_T_CHAT);
    m.u.chat.text = el_msg_cstr("hello \"bob\" \\ / \n Grüße");
    build_ok(&m);
    m.has_group = 1;
    strcpy(m.group, ID);
    m.u.chat.has_reply_to = 1;
    strcpy(m.u.chat.reply_to, ID);
    build_ok(&m);

    el_msg_init(&m, EL_MSG_T_TYPING_STATUS);
    m.u.typing.typing = 1;
    build_ok(&m);

    el_msg_init(&m, EL_MSG_T_REACTION);
    strcpy(m.u.reaction.target, ID);
    m.u.reaction.emoji = el_msg_cstr("👍");
    build_ok(&m);
    m.u.reaction.has_remove = 1;
    m.u.reaction.remove = 1;
    build_ok(&m);

    el_msg_init(&m, EL_MSG_T_READ_RECEIPT);
    m.u.receipt.n = EL_MSG_MAX_IDS;
    for (size_t i = 0; i < m.u.receipt.n; i++)
        assert_int_equal(el_msg_new_id(m.u.receipt.ids[i]), EL_OK);
    build_ok(&m);
    m.type = EL_MSG_T_DELIVERY_RECEIPT;
    m.u.receipt.n = 1;
    build_ok(&m);

    el_msg_init(&m, EL_MSG_T_EDIT_MESSAGE);
    strcpy(m.u.edit.target, ID);
    m.u.edit.text = el_msg_cstr("fixed");
    build_ok(&m);
    el_msg_init(&m, EL_MSG_T_DELETE_MESSAGE);
    strcpy(m.u.edit.target, ID);
    build_ok(&m);

    el_msg_init(&m, EL_MSG_T_FILE_META);
    assert_int_equal(el_msg_new_id(m.u.file_meta.file_id), EL_OK);
    m.u.file_meta.name = el_msg_cstr("voice.ogg");
    m.u.file_meta.size = EL_MSG_UINT_MAX;
    m.u.file_meta.mime = el_msg_cstr("audio/ogg");
    strcpy(m.u.file_meta.sha256, SHA);
    strcpy(m.u.file_meta.channel, "f:" ID);
    m.u.file_meta.voice = 1;
    m.u.file_meta.duration_ms = 4200;
    build_ok(&m);

    el_msg_init(&m, EL_MSG_T_FILE_ACCEPT);
    strcpy(m.u.file_accept.file_id, ID);
    m.u.file_accept.offset = 65536;
    build_ok(&m);
    el_msg_init(&m, EL_MSG_T_FILE_CANCEL);
    strcpy(m.u.file_cancel.file_id, ID);
    build_ok(&m);
    m.u.file_cancel.has_reason = 1;
    m.u.file_cancel.reason = el_msg_cstr("user cancelled");
    build_ok(&m);
    el_msg_init(&m, EL_MSG_T_FILE_COMPLETE);
    strcpy(m.u.file_complete.file_id, ID);
    strcpy(m.u.file_complete.sha256, SHA);
    build_ok(&m);
    el_msg_init(&m, EL_MSG_T_GROUP_LEAVE);
    strcpy(m.u.leave.group_id, ID);
    build_ok(&m);
}

static void test_build_group(void **state)
{
    (void)state;
    el_identity *alice = NULL, *bob = NULL;
    char err[256] = "";
    assert_int_equal(el_identity_generate(&alice, err, sizeof err), EL_OK);
    assert_int_equal(el_identity_generate(&bob, err, sizeof err), EL_OK);
    el_group_state st;
    memset(&st, 0, sizeof st);
    assert_int_equal(el_msg_new_id(st.group_id), EL_OK);
    st.version = 1;
    strcpy(st.name, "team");
    st.name_len = 4;
    st.n_admins = 1;
    strcpy(st.admins[0], el_identity_peer_id(alice));
    st.n_members = 2;
    strcpy(st.members[0], el_identity_peer_id(bob));
    strcpy(st.members[1], el_identity_peer_id(alice));

    el_msg m;
    el_msg_init(&m, EL_MSG_T_GROUP_CREATED);
    assert_int_equal(el_group_sign(alice, &st, &m.u.group.g, err, sizeof err), EL_OK);
    build_ok(&m);

    /* signed by someone who is not an admin: a builder does not emit it */
    assert_int_equal(el_group_sign(bob, &st, &m.u.group.g, err, sizeof err), EL_OK);
    build_refused(&m, EL_ERR_DENIED);
    /* altered after signing */
    assert_int_equal(el_group_sign(alice, &st, &m.u.group.g, err, sizeof err), EL_OK);
    m.u.group.g.state.name[0] = 'T';
    build_refused(&m, EL_ERR_CRYPTO);

    /* GROUP_UPDATE: needs a change; bob may be the signer of a valid-looking
     * update (whether bob is an admin of the current state is the
     * receiver's question, el_group_may_apply) */
    el_msg_init(&m, EL_MSG_T_GROUP_UPDATE);
    st.version = 2;
    assert_int_equal(el_group_sign(alice, &st, &m.u.group.g, err, sizeof err), EL_OK);
    build_refused(&m, EL_ERR_INVALID); /* no change */
    m.u.group.change = EL_GROUP_CHANGE_RENAME;
    build_ok(&m);
    m.u.group.change = (el_group_change)99;
    build_refused(&m, EL_ERR_INVALID);

    el_identity_free(alice);
    el_identity_free(bob);
}

static void test_build_refuses_bad_fields(void **state)
{
    (void)state;
    el_msg m;
    char *big = malloc(EL_MSG_TEXT_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', EL_MSG_TEXT_MAX + 1);
    big[EL_MSG_TEXT_MAX + 1] = '\0';

    el_msg_init(&m, EL_MSG_T_CHAT);
    m.u.chat.text = el_msg_cstr(big);
    build_refused(&m, EL_ERR_INVALID);
    m.u.chat.text.len = EL_MSG_TEXT_MAX; /* the bound itself is fine */
    build_ok(&m);
    m.u.chat.text = el_msg_cstr("");
    build_refused(&m, EL_ERR_INVALID);
    m.u.chat.text = el_msg_cstr("\xff\xfe"); /* not UTF-8 */
    build_refused(&m, EL_ERR_INVALID);
    m.u.chat.text = el_msg_cstr("ok");
    m.has_group = 1;
    strcpy(m.group, "0123456789ABCDEF0123456789abcdef"); /* uppercase */
    build_refused(&m, EL_ERR_INVALID);
    free(big);

    el_msg_init(&m, EL_MSG_T_READ_RECEIPT);
    build_refused(&m, EL_ERR_INVALID); /* 0 ids */
    m.u.receipt.n = EL_MSG_MAX_IDS + 1;
    build_refused(&m, EL_ERR_INVALID);

    el_msg_init(&m, EL_MSG_T_FILE_META);
    strcpy(m.u.file_meta.file_id, ID);
    m.u.file_meta.name = el_msg_cstr("../etc/passwd");
    m.u.file_meta.mime = el_msg_cstr("image/png");
    strcpy(m.u.file_meta.sha256, SHA);
    strcpy(m.u.file_meta.channel, "f:" ID);
    build_refused(&m, EL_ERR_INVALID);
    m.u.file_meta.name = el_msg_cstr("p.png");
    m.u.file_meta.voice = 1; /* voice with an image mime */
    build_refused(&m, EL_ERR_INVALID);
    m.u.file_meta.voice = 0;
    m.u.file_meta.size = EL_MSG_UINT_MAX + 1;
    build_refused(&m, EL_ERR_INVALID);
    m.u.file_meta.size = 1;
    strcpy(m.u.file_meta.channel, "chat");
    build_refused(&m, EL_ERR_INVALID);

    el_msg_init(&m, EL_MSG_T_UNKNOWN);
    build_refused(&m, EL_ERR_INVALID);

    /* a message over 65536 bytes once serialized */
    el_msg_init(&m, EL_MSG_T_CHAT);
    char *esc = malloc(EL_MSG_TEXT_MAX + 1);
    assert_non_null(esc);
    memset(esc, '\x01', EL_MSG_TEXT_MAX); /* 6 bytes each as \u0001 */
    esc[EL_MSG_TEXT_MAX] = '\0';
    m.u.chat.text = el_msg_cstr(esc);
    build_refused(&m, EL_ERR_TOO_LARGE);
    free(esc);
}

/* ---- plaintext and chunks ------------------------------------------------ */

static void test_plaintext(void **state)
{
    (void)state;
    el_msg_plain p;
    char err[128];
    uint8_t one[1] = {0x7f};
    assert_int_equal(el_msg_plain_split(one, 0, &p, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_msg_plain_split(NULL, 5, &p, err, sizeof err), EL_ERR_INVALID);
    /* a bare kind byte is a valid plaintext with an empty body */
    assert_int_equal(el_msg_plain_split(one, 1, &p, err, sizeof err), EL_OK);
    assert_int_equal(p.kind, 0x7f);
    assert_int_equal(p.len, 0);
    assert_ptr_equal(p.body, one + 1);
    uint8_t *big = calloc(1, EL_PT_MAX + 1);
    assert_non_null(big);
    big[0] = EL_PT_CHUNK;
    assert_int_equal(el_msg_plain_split(big, EL_PT_MAX, &p, err, sizeof err), EL_OK);
    assert_ptr_equal(p.body, big + 1);
    assert_int_equal(p.len, EL_PT_MAX - 1);
    assert_int_equal(el_msg_plain_split(big, EL_PT_MAX + 1, &p, err, sizeof err), EL_ERR_TOO_LARGE);
    free(big);
    /* kind 0x01 with an empty body is a frame, but not a message */
    el_msg *m = NULL;
    assert_int_equal(el_msg_parse(one + 1, 0, &m, err, sizeof err), EL_ERR_INVALID);
    assert_null(m);
}

static void test_chunks(void **state)
{
    (void)state;
    const uint8_t fid[16] = {0x66, 0xf1, 0xe1, 0x06, 0x2d, 0xef, 0x0a, 0xef,
                             0x8d, 0xbc, 0x65, 0xc8, 0xc8, 0x30, 0x76, 0x59};
    uint8_t *buf = malloc(EL_CHUNK_HDR + EL_CHUNK_DATA_MAX + 1);
    assert_non_null(buf);
    uint8_t *data = malloc(EL_CHUNK_DATA_MAX + 1);
    assert_non_null(data);
    for (size_t i = 0; i <= EL_CHUNK_DATA_MAX; i++)
        data[i] = (uint8_t)(i * 7);
    size_t len = 0;
    char err[128];

    /* layout: 0x02, file_id, big-endian offset, data */
    assert_int_equal(el_msg_chunk_encode(fid, 0x0102030405060708ULL, data, 3, buf, 64, &len), EL_OK);
    assert_int_equal(len, 28);
    const uint8_t want[] = {0x02, 0x66, 0xf1, 0xe1, 0x06, 0x2d, 0xef, 0x0a, 0xef, 0x8d, 0xbc, 0x65, 0xc8, 0xc8,
                            0x30, 0x76, 0x59, 1, 2, 3, 4, 5, 6, 7, 8, 0, 7, 14};
    assert_memory_equal(buf, want, sizeof want);

    el_msg_chunk c;
    assert_int_equal(el_msg_chunk_decode(buf + 1, len - 1, &c, err, sizeof err), EL_OK);
    assert_memory_equal(c.file_id, fid, 16);
    assert_int_equal(c.offset, 0x0102030405060708ULL);
    assert_ptr_equal(c.data, buf + EL_CHUNK_HDR); /* no copy */
    assert_int_equal(c.len, 3);

    /* the largest chunk, offset 2^64-1 */
    assert_int_equal(el_msg_chunk_encode(fid, UINT64_MAX, data, EL_CHUNK_DATA_MAX, buf,
                                         EL_CHUNK_HDR + EL_CHUNK_DATA_MAX, &len), EL_OK);
    assert_int_equal(el_msg_chunk_decode(buf + 1, len - 1, &c, err, sizeof err), EL_OK);
    assert_int_equal(c.offset, UINT64_MAX);
    assert_int_equal(c.len, EL_CHUNK_DATA_MAX);
    assert_memory_equal(c.data, data, EL_CHUNK_DATA_MAX);

    /* bounds: no data, too much data, a too small buffer */
    assert_int_equal(el_msg_chunk_decode(buf + 1, 24, &c, err, sizeof err), EL_ERR_INVALID);
    assert_null(c.data);
    assert_int_equal(el_msg_chunk_decode(buf + 1, 24 + EL_CHUNK_DATA_MAX + 1, &c, err, sizeof err),
                     EL_ERR_INVALID);
    assert_int_equal(el_msg_chunk_decode(NULL, 30, &c, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_msg_chunk_encode(fid, 0, data, 0, buf, 64, &len), EL_ERR_INVALID);
    assert_int_equal(el_msg_chunk_encode(fid, 0, data, EL_CHUNK_DATA_MAX + 1, buf,
                                         EL_CHUNK_HDR + EL_CHUNK_DATA_MAX + 1, &len), EL_ERR_INVALID);
    assert_int_equal(el_msg_chunk_encode(fid, 0, data, 10, buf, 34, &len), EL_ERR_TOO_LARGE);
    assert_int_equal(len, 0);

    /* header + data read in place (the zero-copy send path) */
    memcpy(buf + EL_CHUNK_HDR, data, 100);
    el_msg_chunk_header(buf, fid, 65536);
    assert_int_equal(el_msg_chunk_decode(buf + 1, EL_CHUNK_HDR - 1 + 100, &c, err, sizeof err), EL_OK);
    assert_int_equal(c.offset, 65536);
    assert_memory_equal(c.data, data, 100);
    free(buf);
    free(data);
}

static void test_misc_api(void **state)
{
    (void)state;
    char a[EL_MSG_ID_SIZE], b[EL_MSG_ID_SIZE];
    assert_int_equal(el_msg_new_id(a), EL_OK);
    assert_int_equal(el_msg_new_id(b), EL_OK);
    assert_true(is_id(a) && is_id(b));
    assert_string_not_equal(a, b);
    uint64_t now = el_msg_now_ms();
    assert_true(now > 1700000000000ULL && now <= EL_MSG_UINT_MAX);
    assert_string_equal(el_msg_type_name(EL_MSG_T_GROUP_LEAVE), "GROUP_LEAVE");
    assert_null(el_msg_type_name((el_msg_type)99));
    el_msg_free(NULL);
    el_msg *m = (el_msg *)1;
    assert_int_equal(el_msg_parse(NULL, 3, &m, NULL, 0), EL_ERR_INVALID);
    assert_null(m);
    assert_int_equal(el_msg_parse((const uint8_t *)"{}", 2, NULL, NULL, 0), EL_ERR_INVALID);
}

/* ---- the fuzz seeds, through the fuzz target's invariants ---------------- */

/* The receiving end: every vector is delivered, ignored or dropped as the
 * vectors say, and counted by stage (logging is checked by eye: EL_WARN). */
static void test_receive_counts(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *cases = el_vec_cases(doc, "messages", 40);
    el_msg_stats st, want;
    memset(&st, 0, sizeof st);
    memset(&want, 0, sizeof want);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *text = el_vec_str(c, "json");
        size_t n = strlen(text);
        uint8_t *pt = malloc(n + 1);
        assert_non_null(pt);
        pt[0] = EL_PT_MESSAGE;
        memcpy(pt + 1, text, n);
        el_msg *m = NULL;
        el_msg_chunk ch;
        int r = el_msg_receive(pt, n + 1, "vectors", &st, &m, &ch);
        if (!json_is_true(json_object_get(c, "valid"))) {
            const char *stage = el_vec_str(c, "stage");
            uint64_t *k = !strcmp(stage, "group") ? &want.group
                        : !strcmp(stage, "signature") ? &want.signature : &want.syntax;
            (*k)++;
            assert_int_equal(r, 0);
            assert_null(m);
        } else if (r == 0) {
            want.unknown++; /* an unknown t: ignored */
            assert_null(m);
        } else {
            want.messages++;
            assert_int_equal(r, EL_PT_MESSAGE);
            assert_non_null(m);
        }
        el_msg_free(m);
        free(pt);
    }
    /* a chunk (pointing into the input), an unknown kind, an empty plaintext */
    uint8_t chunk[EL_CHUNK_HDR + 3] = {EL_PT_CHUNK};
    memset(chunk + 1, 0xab, 16);
    chunk[EL_CHUNK_HDR] = 7;
    el_msg *m = NULL;
    el_msg_chunk ch;
    assert_int_equal(el_msg_receive(chunk, sizeof chunk, NULL, &st, &m, &ch), EL_PT_CHUNK);
    assert_ptr_equal(ch.data, chunk + EL_CHUNK_HDR);
    assert_int_equal(ch.len, 3);
    uint8_t odd[2] = {0x7f, 1};
    assert_int_equal(el_msg_receive(odd, sizeof odd, NULL, &st, &m, &ch), 0);
    assert_int_equal(el_msg_receive(odd, 0, NULL, &st, &m, &ch), 0);
    want.chunks = 1;
    want.unknown++;
    want.syntax++;
    assert_memory_equal(&st, &want, sizeof st);
    assert_true(want.messages > 20 && want.syntax > 20 && want.group > 0 && want.signature > 0);
    json_decref(doc);
}

static void test_fuzz_seeds(void **state)
{
    (void)state;
    const char *dir = EL_TEST_VECTORS "/../fuzz/corpus/msg";
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        static uint8_t buf[EL_PT_MAX + 1];
        size_t len = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        const char *violation = el_fuzz_check_msg(buf, len);
        if (violation)
            fail_msg("seed %s: %s", e->d_name, violation);
        n++;
    }
    closedir(d);
    assert_true(n >= 40);
    /* and a few inputs that are not seeds */
    static const char *const extra[] = {"", "\x01", "\x02", "\x01{}", "\x01[]", "\x01{\"t\":\"CHAT\"}"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        assert_null(el_fuzz_check_msg((const uint8_t *)extra[i], strlen(extra[i])));
    /* the whole vector set, whatever its size */
    json_t *doc = el_vec_load("e2ee.json");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "messages"), i, c) {
        const char *text = el_vec_str(c, "json");
        size_t len = strlen(text);
        uint8_t *pt = malloc(len + 1);
        assert_non_null(pt);
        pt[0] = EL_PT_MESSAGE;
        memcpy(pt + 1, text, len);
        const char *violation = el_fuzz_check_msg(pt, len + 1);
        if (violation)
            fail_msg("messages[%zu]: %s", i, violation);
        free(pt);
    }
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_messages),
        cmocka_unit_test(test_receive_counts),
        cmocka_unit_test(test_vector_fields),
        cmocka_unit_test(test_json_edges),
        cmocka_unit_test(test_file_meta_rules),
        cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_build_every_type),
        cmocka_unit_test(test_build_group),
        cmocka_unit_test(test_build_refuses_bad_fields),
        cmocka_unit_test(test_plaintext),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_misc_api),
        cmocka_unit_test(test_fuzz_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
