/* test_group.c - src/proto/group against tests/vectors/e2ee.json "group"
 * (canonical bytes and signatures from gen-e2ee.mjs, node:crypto), and the
 * receiver's rules: who may create, update, send and edit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/identity.h"
#include "proto/group.h"
#include "vectors.h"

/* ---- fixtures ----------------------------------------------------------- */

typedef struct {
    json_t *doc;
    el_identity *alice, *bob, *carol;
    el_group_signed vec[8]; /* the "group" vectors, parsed */
    size_t n_vec;
} fixture;

/* identities[] entry `name`, checked against its peer_id. */
static el_identity *identity_named(json_t *doc, const char *name)
{
    json_t *v = el_vec_identity_entry(doc, name);
    el_identity *id = el_vec_identity_of(v);
    assert_string_equal(el_identity_peer_id(id), el_vec_str(v, "peer_id"));
    return id;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->doc = el_vec_load("e2ee.json");
    f->alice = identity_named(f->doc, "alice");
    f->bob = identity_named(f->doc, "bob");
    f->carol = identity_named(f->doc, "carol");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(f->doc, "group"), i, v) {
        char err[256] = "";
        assert_true(i < sizeof f->vec / sizeof f->vec[0]);
        el_group_signed *g = &f->vec[i];
        if (el_group_state_from_json(json_object_get(v, "state"), &g->state, err, sizeof err) != EL_OK)
            fail_msg("group[%zu]: %s", i, err);
        el_vec_b64_exact(el_vec_str(v, "by_ik"), g->by_ik, sizeof g->by_ik);
        el_vec_b64_exact(el_vec_str(v, "sig"), g->sig, sizeof g->sig);
        f->n_vec = i + 1;
    }
    assert_true(f->n_vec >= 4);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    el_identity_free(f->alice);
    el_identity_free(f->bob);
    el_identity_free(f->carol);
    json_decref(f->doc);
    free(f);
    return 0;
}

static el_identity *signer_named(fixture *f, const char *name)
{
    if (strcmp(name, "alice") == 0) return f->alice;
    if (strcmp(name, "bob") == 0) return f->bob;
    if (strcmp(name, "carol") == 0) return f->carol;
    fail_msg("unknown signer %s", name);
    return NULL;
}

static void expect_rc(int rc, int want, const char *err, const char *what)
{
    if (rc != want)
        fail_msg("%s: got %d (%s), want %d", what, rc, err, want);
}

/* A small valid state: version v, admins = {a}, members = {a, b, c}. */
static void make_state(fixture *f, el_group_state *s, uint64_t v)
{
    memset(s, 0, sizeof *s);
    strcpy(s->group_id, "80884fba5360790f68d829cf52d6ca8f");
    s->version = v;
    strcpy(s->name, "friends");
    s->name_len = 7;
    s->n_admins = 1;
    strcpy(s->admins[0], el_identity_peer_id(f->alice));
    s->n_members = 3;
    strcpy(s->members[0], el_identity_peer_id(f->alice));
    strcpy(s->members[1], el_identity_peer_id(f->bob));
    strcpy(s->members[2], el_identity_peer_id(f->carol));
}

/* ---- vectors ------------------------------------------------------------ */

static void test_vectors_reproduce(void **state)
{
    fixture *f = *state;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(f->doc, "group"), i, v) {
        const char *name = el_vec_str(v, "name");
        const el_group_signed *g = &f->vec[i];
        uint8_t want[EL_GROUP_CANONICAL_MAX], got[EL_GROUP_CANONICAL_MAX];
        size_t want_len = strlen(el_vec_str(v, "canonical_hex")) / 2, len = 0;
        char err[256] = "";
        el_vec_hex_exact(el_vec_str(v, "canonical_hex"), want, want_len);

        /* canonical bytes, byte for byte */
        expect_rc(el_group_canonical(&g->state, got, &len, err, sizeof err), EL_OK, err, name);
        assert_int_equal(len, want_len);
        assert_memory_equal(got, want, len);
        /* the vector's signature verifies */
        expect_rc(el_group_verify(g, err, sizeof err), EL_OK, err, name);
        /* and we sign the same (Ed25519 is deterministic) with the same by_ik */
        el_group_signed mine;
        expect_rc(el_group_sign(signer_named(f, el_vec_str(v, "signer")), &g->state, &mine, err, sizeof err),
                  EL_OK, err, name);
        assert_memory_equal(mine.sig, g->sig, EL_ID_SIG_LEN);
        assert_memory_equal(mine.by_ik, g->by_ik, EL_ID_KEY_LEN);
        /* the JSON form comes back the same */
        json_t *j = el_group_state_to_json(&g->state);
        assert_non_null(j);
        assert_true(json_equal(j, json_object_get(v, "state")));
        json_decref(j);
    }
}

/* The vectors form a history: create (alice), add + make bob admin (alice),
 * rename to a 128-byte name and drop members (bob). */
static void test_vector_history_applies(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    expect_rc(el_group_may_apply(NULL, EL_GROUP_OP_CREATE, &f->vec[0], err, sizeof err), EL_OK, err, "v1");
    expect_rc(el_group_may_apply(&f->vec[0].state, EL_GROUP_OP_UPDATE, &f->vec[1], err, sizeof err), EL_OK,
              err, "v2");
    expect_rc(el_group_may_apply(&f->vec[1].state, EL_GROUP_OP_UPDATE, &f->vec[2], err, sizeof err), EL_OK,
              err, "v3 by bob");
    assert_int_equal(f->vec[2].state.name_len, 128);
    /* version 2^53-1 made by its only admin */
    expect_rc(el_group_check(EL_GROUP_OP_UPDATE, &f->vec[3], err, sizeof err), EL_OK, err, "2^53-1");
    assert_int_equal(f->vec[3].state.version, EL_GROUP_VERSION_MAX);

    /* refused steps of the same history */
    expect_rc(el_group_may_apply(&f->vec[0].state, EL_GROUP_OP_UPDATE, &f->vec[2], err, sizeof err),
              EL_ERR_DENIED, err, "v3 on v1: skipped version (and bob no admin of v1)");
    expect_rc(el_group_may_apply(&f->vec[1].state, EL_GROUP_OP_UPDATE, &f->vec[1], err, sizeof err),
              EL_ERR_DENIED, err, "v2 on v2: replay");
    expect_rc(el_group_may_apply(&f->vec[2].state, EL_GROUP_OP_UPDATE, &f->vec[1], err, sizeof err),
              EL_ERR_DENIED, err, "v2 on v3: rollback");
    expect_rc(el_group_may_apply(&f->vec[0].state, EL_GROUP_OP_CREATE, &f->vec[0], err, sizeof err),
              EL_ERR_STATE, err, "second create");
    expect_rc(el_group_may_apply(NULL, EL_GROUP_OP_UPDATE, &f->vec[1], err, sizeof err), EL_ERR_STATE, err,
              "update of an unknown group");
    expect_rc(el_group_may_apply(NULL, EL_GROUP_OP_CREATE, &f->vec[1], err, sizeof err), EL_ERR_DENIED, err,
              "create with version 2");
    /* an update for another group */
    el_group_state other = f->vec[0].state;
    strcpy(other.group_id, "2cf1e4584827884ed0587c7719380e2c");
    expect_rc(el_group_may_apply(&other, EL_GROUP_OP_UPDATE, &f->vec[1], err, sizeof err), EL_ERR_INVALID,
              err, "other group");
}

/* ---- rules -------------------------------------------------------------- */

static void test_signer_rules(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    el_group_state v1, v2;
    el_group_signed g1, g2;
    make_state(f, &v1, 1);
    assert_int_equal(el_group_sign(f->alice, &v1, &g1, err, sizeof err), EL_OK);
    expect_rc(el_group_may_apply(NULL, EL_GROUP_OP_CREATE, &g1, err, sizeof err), EL_OK, err, "create");

    /* a creation signed by a member who is not among its admins */
    el_group_signed gb;
    assert_int_equal(el_group_sign(f->bob, &v1, &gb, err, sizeof err), EL_OK);
    expect_rc(el_group_check(EL_GROUP_OP_CREATE, &gb, err, sizeof err), EL_ERR_DENIED, err, "create by bob");

    /* bob makes himself admin in v2: signed by a non-admin of v1 */
    v2 = v1;
    v2.version = 2;
    v2.n_admins = 2;
    strcpy(v2.admins[1], el_identity_peer_id(f->bob));
    assert_int_equal(el_group_sign(f->bob, &v2, &g2, err, sizeof err), EL_OK);
    expect_rc(el_group_check(EL_GROUP_OP_UPDATE, &g2, err, sizeof err), EL_OK, err, "context-free");
    expect_rc(el_group_may_apply(&v1, EL_GROUP_OP_UPDATE, &g2, err, sizeof err), EL_ERR_DENIED, err,
              "self-promotion");
    /* the same state signed by alice is fine */
    assert_int_equal(el_group_sign(f->alice, &v2, &g2, err, sizeof err), EL_OK);
    expect_rc(el_group_may_apply(&v1, EL_GROUP_OP_UPDATE, &g2, err, sizeof err), EL_OK, err, "promotion");
    /* a skipped version, signed by the admin: still refused */
    el_group_state skip = v2;
    skip.version = 3;
    el_group_signed gs;
    assert_int_equal(el_group_sign(f->alice, &skip, &gs, err, sizeof err), EL_OK);
    expect_rc(el_group_may_apply(&v1, EL_GROUP_OP_UPDATE, &gs, err, sizeof err), EL_ERR_DENIED, err,
              "skipped version");
    assert_non_null(strstr(err, "not the next one"));

    /* §11: "signer an admin of the *current* state": alice hands the group
     * to bob and steps down; her signature counts because she was admin */
    el_group_state v3 = v2;
    v3.version = 3;
    v3.n_admins = 1;
    strcpy(v3.admins[0], el_identity_peer_id(f->bob));
    el_group_signed g3;
    assert_int_equal(el_group_sign(f->alice, &v3, &g3, err, sizeof err), EL_OK);
    expect_rc(el_group_may_apply(&v2, EL_GROUP_OP_UPDATE, &g3, err, sizeof err), EL_OK, err, "step down");
    /* ... and from then on she no longer can */
    el_group_state v4 = v3;
    v4.version = 4;
    strcpy(v4.name, "mine");
    v4.name_len = 4;
    el_group_signed g4;
    assert_int_equal(el_group_sign(f->alice, &v4, &g4, err, sizeof err), EL_OK);
    expect_rc(el_group_may_apply(&v3, EL_GROUP_OP_UPDATE, &g4, err, sizeof err), EL_ERR_DENIED, err,
              "former admin");
    assert_int_equal(el_group_sign(f->bob, &v4, &g4, err, sizeof err), EL_OK);
    expect_rc(el_group_may_apply(&v3, EL_GROUP_OP_UPDATE, &g4, err, sizeof err), EL_OK, err, "new admin");
}

static void test_state_rules(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    el_group_state s;
    el_group_signed g;

    make_state(f, &s, 1);
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_OK, err, "valid");
    /* admin not among members */
    s.n_members = 2;
    strcpy(s.members[0], el_identity_peer_id(f->carol));
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_DENIED, err, "admin not member");
    /* signing such a state is refused too */
    expect_rc(el_group_sign(f->alice, &s, &g, err, sizeof err), EL_ERR_DENIED, err, "sign bad state");
    /* duplicates */
    make_state(f, &s, 1);
    strcpy(s.members[2], s.members[1]);
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_DENIED, err, "duplicate member");
    make_state(f, &s, 1);
    s.n_admins = 2;
    strcpy(s.admins[1], s.admins[0]);
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_DENIED, err, "duplicate admin");
    /* bounds */
    make_state(f, &s, 0);
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "version 0");
    s.version = EL_GROUP_VERSION_MAX + 1;
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "version 2^53");
    make_state(f, &s, 1);
    s.name_len = 0;
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "empty name");
    s.name_len = EL_GROUP_NAME_MAX + 1;
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "name 129");
    make_state(f, &s, 1);
    s.n_admins = 0;
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "no admin");
    make_state(f, &s, 1);
    s.n_admins = EL_GROUP_MAX_ADMINS + 1;
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "17 admins");
    make_state(f, &s, 1);
    s.n_members = EL_GROUP_MAX_MEMBERS + 1;
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "257 members");
    make_state(f, &s, 1);
    s.members[1][0] = 'A';
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "uppercase peer ID");
    make_state(f, &s, 1);
    s.group_id[0] = 'A';
    expect_rc(el_group_state_check(&s, err, sizeof err), EL_ERR_INVALID, err, "uppercase group_id");

    /* 16 admins and 256 members: the largest canonical encoding */
    memset(&s, 0, sizeof s);
    strcpy(s.group_id, "2cf1e4584827884ed0587c7719380e2c");
    s.version = EL_GROUP_VERSION_MAX;
    memset(s.name, 'n', EL_GROUP_NAME_MAX);
    s.name_len = EL_GROUP_NAME_MAX;
    s.n_members = EL_GROUP_MAX_MEMBERS;
    for (size_t i = 0; i < s.n_members; i++) {
        uint8_t ik[EL_ID_KEY_LEN] = {(uint8_t)i, 0x55};
        assert_int_equal(el_id_peer_id(ik, s.members[i]), EL_OK);
    }
    s.n_admins = EL_GROUP_MAX_ADMINS;
    for (size_t i = 0; i < s.n_admins; i++)
        strcpy(s.admins[i], s.members[i * 3]);
    strcpy(s.admins[0], el_identity_peer_id(f->carol));
    strcpy(s.members[0], el_identity_peer_id(f->carol));
    uint8_t buf[EL_GROUP_CANONICAL_MAX];
    size_t len;
    expect_rc(el_group_canonical(&s, buf, &len, err, sizeof err), EL_OK, err, "largest");
    assert_int_equal(len, EL_GROUP_CANONICAL_MAX);
    assert_int_equal(el_group_sign(f->carol, &s, &g, err, sizeof err), EL_OK);
    expect_rc(el_group_may_apply(NULL, EL_GROUP_OP_CREATE, &g, err, sizeof err), EL_ERR_DENIED, err,
              "create needs version 1");
    expect_rc(el_group_check(EL_GROUP_OP_UPDATE, &g, err, sizeof err), EL_OK, err, "largest update");
}

static void test_canonical_is_order_free(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    el_group_state a, b;
    make_state(f, &a, 5);
    b = a;
    /* reverse the members */
    strcpy(b.members[0], a.members[2]);
    strcpy(b.members[2], a.members[0]);
    uint8_t ca[EL_GROUP_CANONICAL_MAX], cb[EL_GROUP_CANONICAL_MAX];
    size_t la, lb;
    assert_int_equal(el_group_canonical(&a, ca, &la, err, sizeof err), EL_OK);
    assert_int_equal(el_group_canonical(&b, cb, &lb, err, sizeof err), EL_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(ca, cb, la);
    /* the layout: domain, id, version, name, lists */
    assert_memory_equal(ca, "echolink-v1-group\0", 18);
    assert_int_equal(ca[18], 0x80);
    assert_int_equal(ca[18 + 16 + 7], 5);
    assert_int_equal(ca[18 + 16 + 8], 7);
    assert_memory_equal(ca + 18 + 16 + 9, "friends", 7);
    assert_int_equal(la, 18 + 16 + 8 + 1 + 7 + 2 + 32 + 2 + 3 * 32);
    /* and any change of content changes it */
    b = a;
    b.version = 6;
    assert_int_equal(el_group_canonical(&b, cb, &lb, err, sizeof err), EL_OK);
    assert_true(memcmp(ca, cb, la) != 0);
}

static void test_tampering(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    el_group_signed g = f->vec[0];
    expect_rc(el_group_verify(&g, err, sizeof err), EL_OK, err, "intact");
    for (size_t bit = 0; bit < 8 * EL_ID_SIG_LEN; bit += 37) {
        g = f->vec[0];
        g.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        expect_rc(el_group_verify(&g, err, sizeof err), EL_ERR_CRYPTO, err, "sig bit");
    }
    g = f->vec[0];
    g.state.name[0] = 'F';
    expect_rc(el_group_check(EL_GROUP_OP_CREATE, &g, err, sizeof err), EL_ERR_CRYPTO, err, "name");
    g = f->vec[0];
    g.state.n_members = 2; /* drop carol: a different set, still within the rules */
    expect_rc(el_group_check(EL_GROUP_OP_CREATE, &g, err, sizeof err), EL_ERR_CRYPTO, err, "members");
    g = f->vec[0];
    memcpy(g.by_ik, el_identity_bundle(f->bob)->ik, EL_ID_KEY_LEN);
    expect_rc(el_group_check(EL_GROUP_OP_CREATE, &g, err, sizeof err), EL_ERR_CRYPTO, err, "other by_ik");

    /* small-order key and R (identity point, S = 0): a "signature" of every
     * message under OpenSSL's plain check; refused as in §2 */
    g = f->vec[0];
    memset(g.by_ik, 0, sizeof g.by_ik);
    g.by_ik[0] = 1;
    memset(g.sig, 0, sizeof g.sig);
    g.sig[0] = 1;
    expect_rc(el_group_verify(&g, err, sizeof err), EL_ERR_CRYPTO, err, "small order");
}

static void test_membership_and_edits(void **state)
{
    fixture *f = *state;
    const el_group_state *v3 = &f->vec[2].state; /* alice and bob; carol removed */
    const char *alice = el_identity_peer_id(f->alice), *bob = el_identity_peer_id(f->bob),
               *carol = el_identity_peer_id(f->carol);
    assert_true(el_group_is_member(v3, alice));
    assert_true(el_group_is_member(v3, bob));
    assert_false(el_group_is_member(v3, carol));
    assert_true(el_group_is_member(&f->vec[0].state, carol));
    assert_true(el_group_is_admin(v3, bob));
    assert_false(el_group_is_admin(&f->vec[0].state, bob));
    assert_false(el_group_is_member(NULL, alice));
    assert_false(el_group_is_member(v3, NULL));
    assert_false(el_group_is_member(v3, ""));

    assert_int_equal(el_group_may_edit(alice, alice), EL_OK);
    assert_int_equal(el_group_may_edit(bob, alice), EL_ERR_DENIED);
    assert_int_equal(el_group_may_edit(alice, NULL), EL_ERR_INVALID);
    assert_int_equal(el_group_may_edit("", ""), EL_ERR_INVALID);
    assert_int_equal(el_group_may_edit("T6FU4GJRPMWAKKZ2CIV72ZBFP2C5OVPN", "T6FU4GJRPMWAKKZ2CIV72ZBFP2C5OVPN"),
                     EL_ERR_INVALID);
}

static void test_json_form(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    el_group_state s;
    const char *ok = "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8f\",\"version\":1.0,\"name\":\"a\\u0000b\","
                     "\"admins\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"],"
                     "\"members\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"],\"extra\":true}";
    json_t *j = json_loads(ok, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    assert_non_null(j);
    expect_rc(el_group_state_from_json(j, &s, err, sizeof err), EL_OK, err, "1.0 and a NUL");
    assert_int_equal(s.version, 1);
    assert_int_equal(s.name_len, 3);
    assert_memory_equal(s.name, "a\0b", 3);
    json_decref(j);

    static const char *const bad[] = {
        "[]",
        "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8f\",\"version\":1.5,\"name\":\"a\",\"admins\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"],\"members\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"]}",
        "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8f\",\"version\":\"1\",\"name\":\"a\",\"admins\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"],\"members\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"]}",
        "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8f\",\"version\":1,\"admins\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"],\"members\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"]}",
        "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8\",\"version\":1,\"name\":\"a\",\"admins\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"],\"members\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"]}",
        "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8f\",\"version\":1,\"name\":\"a\",\"admins\":\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\",\"members\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"]}",
        "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8f\",\"version\":1,\"name\":\"a\",\"admins\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovp1\"],\"members\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"]}",
        "{\"group_id\":\"80884fba5360790f68d829cf52d6ca8f\",\"version\":1,\"name\":\"a\",\"admins\":[\"t6fu4gjrpmwakkz2civ72zbfp2c5ovpn\"],\"members\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i], JSON_DECODE_INT_AS_REAL, NULL);
        assert_non_null(j);
        expect_rc(el_group_state_from_json(j, &s, err, sizeof err), EL_ERR_INVALID, err, bad[i]);
        json_decref(j);
    }
    expect_rc(el_group_state_from_json(NULL, &s, err, sizeof err), EL_ERR_INVALID, err, "NULL");

    /* to_json refuses a name that is not UTF-8 */
    make_state(f, &s, 1);
    s.name[0] = (char)0xff;
    assert_null(el_group_state_to_json(&s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_reproduce),
        cmocka_unit_test(test_vector_history_applies),
        cmocka_unit_test(test_signer_rules),
        cmocka_unit_test(test_state_rules),
        cmocka_unit_test(test_canonical_is_order_free),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_membership_and_edits),
        cmocka_unit_test(test_json_form),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
