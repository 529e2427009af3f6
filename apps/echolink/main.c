/* echolink - the EchoLink terminal client.
 *
 * One process owns a profile at a time (its lock): `listen` and `chat` run
 * for as long as the user wants; every other command either hands its
 * request to that owner through the control socket, or, when nothing owns
 * the profile, runs a short session of its own and waits until its work is
 * delivered (or handed to the server's offline queue), at most --wait
 * seconds. See usage() for the commands. */
#include "app.h"
#include "tui.h"

#include "base/clock.h"
#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"
#include "client/ctl.h"
#include "crypto/safety.h"

#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LOGIN_TIMEOUT_S 15
#define DEFAULT_WAIT_S 30

typedef struct {
    const char *profile;
    GPtrArray *servers;   /* --server, repeatable */
    GPtrArray *ice;       /* --ice-address, repeatable */
    const char *name;     /* init --name */
    const char *reply_to;
    const char *conv;
    int json;
    int accept_files;
    int remove;
    int confirm;
    int force;
    long limit;
    long wait_s;          /* -1: the command's default */
    long voice_ms;
    char **args;          /* positional arguments after the command */
    int nargs;
} options;

static void usage(FILE *out)
{
    fputs(
        "usage: echolink [--profile NAME] [--server URL]... COMMAND [ARGS] [OPTIONS]\n"
        "\n"
        "Profile and identity\n"
        "  init --name NAME            create the profile and its identity key\n"
        "  id                          your peer ID and identity fingerprint\n"
        "  export FILE / import FILE   identity backup with a passphrase\n"
        "                              (ECHOLINK_PASSPHRASE, or asked on the terminal)\n"
        "Running\n"
        "  chat                        the full-screen interface\n"
        "  listen [--json] [--accept-files]\n"
        "                              stay online, print every event (one JSON\n"
        "                              object per line with --json)\n"
        "Contacts (through the server)\n"
        "  add PEER [MESSAGE]          send a contact request\n"
        "  accept PEER | refuse PEER | remove PEER | block PEER | unblock PEER\n"
        "  peers                       contacts, requests and who is online\n"
        "Messages (CONV is a peer ID or g:GROUP_ID)\n"
        "  send CONV TEXT [--reply-to ID]\n"
        "  send-file CONV PATH [--voice MS]\n"
        "  react CONV ID EMOJI [--remove] | edit CONV ID TEXT | delete CONV ID\n"
        "  read CONV                   mark read (sends read receipts)\n"
        "  typing CONV on|off          the typing indicator (while a link is up)\n"
        "  history CONV [--limit N]    | search WORDS [--conv CONV]\n"
        "  files CONV | accept-file FILE_ID | cancel-file FILE_ID\n"
        "Groups\n"
        "  groups | group create NAME PEER... | group add|remove|admin GROUP_ID PEER\n"
        "  group rename GROUP_ID NAME | group leave GROUP_ID\n"
        "Trust\n"
        "  verify PEER [--confirm]     the safety number; --confirm marks it verified\n"
        "  accept-key PEER             trust a peer's new key\n"
        "  stats\n"
        "\n"
        "Options: --json (machine-readable output), --wait SECONDS (how long a\n"
        "one-shot command waits for delivery; 0 = no limit), --profile NAME\n"
        "(default \"default\"; ECHOLINK_HOME moves all profiles), --server URL\n"
        "(ws:// or wss://; saved by init), --help.\n"
        "\n"
        "Exit codes: 0 done; 64 usage; 65 bad input; 66 no such profile, file or\n"
        "message; 69 server unreachable; 70 internal error; 74 disk error; 75\n"
        "queued but not delivered yet (sent later); 77 refused.\n",
        out);
}

/* ---- option parsing ---------------------------------------------------------------- */

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    o->profile = EL_PROFILE_DEFAULT;
    o->servers = g_ptr_array_new();
    o->ice = g_ptr_array_new();
    o->wait_s = -1;
    o->args = calloc((size_t)argc + 1, sizeof *o->args);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                                  \
    do {                                                                         \
        if (!v) {                                                                \
            fprintf(stderr, "echolink: %s needs a value\n", a);                  \
            return -1;                                                           \
        }                                                                        \
        i++;                                                                     \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--accept-files")) {
            o->accept_files = 1;
        } else if (!strcmp(a, "--remove")) {
            o->remove = 1;
        } else if (!strcmp(a, "--confirm")) {
            o->confirm = 1;
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
        } else if (!strcmp(a, "--profile")) {
            VALUE();
            o->profile = v;
        } else if (!strcmp(a, "--server")) {
            VALUE();
            g_ptr_array_add(o->servers, (gpointer)v);
        } else if (!strcmp(a, "--ice-address")) {
            VALUE();
            g_ptr_array_add(o->ice, (gpointer)v);
        } else if (!strcmp(a, "--name")) {
            VALUE();
            o->name = v;
        } else if (!strcmp(a, "--reply-to")) {
            VALUE();
            o->reply_to = v;
        } else if (!strcmp(a, "--conv")) {
            VALUE();
            o->conv = v;
        } else if (!strcmp(a, "--limit") || !strcmp(a, "--wait") || !strcmp(a, "--voice")) {
            VALUE();
            long *dst = a[2] == 'l' ? &o->limit : a[2] == 'w' ? &o->wait_s : &o->voice_ms;
            if (parse_long(v, a[2] == 'v' ? 1 : 0, a[2] == 'v' ? 86400000 : 1000000, dst) != 0) {
                fprintf(stderr, "echolink: %s: \"%s\" is not a valid number\n", a, v);
                return -1;
            }
        } else if (!strcmp(a, "--")) {
            while (++i < argc)
                o->args[o->nargs++] = argv[i];
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "echolink: unknown option %s (see echolink --help)\n", a);
            return -1;
        } else {
            o->args[o->nargs++] = argv[i];
        }
#undef VALUE
    }
    g_ptr_array_add(o->servers, NULL);
    g_ptr_array_add(o->ice, NULL);
    return 0;
}

/* ---- output -------------------------------------------------------------------------- */

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
}

static const char *short_time(json_int_t ms, char buf[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

static void print_message(json_t *m)
{
    char tb[32];
    const char *status = json_string_value(json_object_get(m, "status"));
    const char *mark = !status || !strcmp(status, "incoming") ? ""
                       : !strcmp(status, "read")              ? " ✓✓"
                       : !strcmp(status, "delivered")         ? " ✓"
                                                              : " …";
    json_t *file = json_object_get(m, "file");
    printf("[%s] %.8s: %s%s%s%s%s%s  (%s)\n",
           short_time(json_integer_value(json_object_get(m, "ts")), tb),
           json_string_value(json_object_get(m, "from")),
           json_is_true(json_object_get(m, "deleted")) ? "[deleted]"
                                                       : json_string_value(json_object_get(m, "text")),
           file ? " [file: " : "", file ? json_string_value(json_object_get(file, "state")) : "",
           file ? "]" : "", json_is_true(json_object_get(m, "edited")) ? " (edited)" : "", mark,
           json_string_value(json_object_get(m, "id")));
}

static void print_peer(const char *tag, json_t *p)
{
    const char *name = json_string_value(json_object_get(p, "name"));
    printf("%s %s  %s%s\n", tag, json_string_value(json_object_get(p, "peer_id")),
           name ? name : "(no name)",
           json_is_true(json_object_get(p, "online")) ? "  online" : "");
}

static void print_reply(const char *cmd, json_t *reply, int json)
{
    if (json) {
        print_json(reply);
        return;
    }
    if (!json_is_true(json_object_get(reply, "ok"))) {
        fprintf(stderr, "echolink: %s: %s\n", cmd, json_string_value(json_object_get(reply, "error")));
        return;
    }
    size_t i;
    json_t *v;
    if (json_object_get(reply, "messages")) {
        json_array_foreach(json_object_get(reply, "messages"), i, v) print_message(v);
    } else if (json_object_get(reply, "contacts")) {
        json_array_foreach(json_object_get(reply, "contacts"), i, v) print_peer("contact", v);
        json_array_foreach(json_object_get(reply, "incoming"), i, v)
            printf("request from %s  \"%s\"\n", json_string_value(json_object_get(v, "from")),
                   json_string_value(json_object_get(v, "message")) ?: "");
        json_array_foreach(json_object_get(reply, "outgoing"), i, v)
            printf("request to %s\n", json_string_value(json_object_get(v, "to")));
        json_array_foreach(json_object_get(reply, "blocked"), i, v)
            printf("blocked %s\n", json_string_value(v));
    } else if (json_object_get(reply, "safety")) {
        printf("%s\n", json_string_value(json_object_get(reply, "safety")));
    } else if (json_object_get(reply, "msg_id") || json_object_get(reply, "file_id") ||
               json_object_get(reply, "group_id")) {
        json_t *id = json_object_get(reply, "msg_id");
        if (!id)
            id = json_object_get(reply, "file_id");
        if (!id)
            id = json_object_get(reply, "group_id");
        printf("%s\n", json_string_value(id));
    } else {
        json_t *copy = json_deep_copy(reply);
        json_object_del(copy, "ok");
        if (json_object_size(copy) > 0)
            print_json(copy);
        json_decref(copy);
    }
    fflush(stdout);
}

static void print_event(json_t *ev, int json)
{
    if (json) {
        print_json(ev);
        return;
    }
    const char *name = json_string_value(json_object_get(ev, "event"));
    char tb[32];
    if (!strcmp(name, "message")) {
        printf("[%s] %.8s: %s\n", short_time(json_integer_value(json_object_get(ev, "ts")), tb),
               json_string_value(json_object_get(ev, "from")),
               json_string_value(json_object_get(ev, "text")));
    } else {
        json_t *copy = json_deep_copy(ev);
        json_object_del(copy, "event");
        char *s = json_dumps(copy, JSON_COMPACT);
        printf("%s %s\n", name, s ? s : "");
        free(s);
        json_decref(copy);
    }
    fflush(stdout);
}

/* ---- the profile ------------------------------------------------------------------------ */

static int open_profile(const options *o, unsigned flags, el_profile **p)
{
    char err[512];
    int rc = el_profile_open(o->profile, flags, p, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "echolink: %s\n", err);
        return rc == EL_ERR_NOT_FOUND ? EL_EXIT_NOINPUT : EL_EXIT_DATAERR;
    }
    return 0;
}

static int load_identity(el_profile *p, el_identity **id)
{
    char err[512];
    if (el_profile_load_identity(p, getenv("ECHOLINK_PASSPHRASE"), id, err, sizeof err) != 0) {
        fprintf(stderr, "echolink: %s\n", err);
        return EL_EXIT_NOINPUT;
    }
    return 0;
}

static char *ask_passphrase(const char *prompt)
{
    const char *env = getenv("ECHOLINK_PASSPHRASE");
    if (env)
        return strdup(env);
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return NULL;
    struct termios old, quiet;
    int fd = fileno(tty);
    int have = tcgetattr(fd, &old) == 0;
    if (have) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fputs(prompt, tty);
    fflush(tty);
    char buf[1024];
    char *line = fgets(buf, sizeof buf, tty);
    if (have)
        tcsetattr(fd, TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (!line)
        return NULL;
    buf[strcspn(buf, "\r\n")] = 0;
    return strdup(buf);
}

static void print_identity(const el_identity *id, int json)
{
    char ik[EL_ID_KEY_B64_SIZE], sk[EL_ID_KEY_B64_SIZE], sig[EL_ID_SIG_B64_SIZE];
    char half[EL_SAFETY_HALF_LEN + 1] = "", fp[EL_SAFETY_HALF_LEN + EL_SAFETY_HALF_LEN / 5] = "";
    el_id_bundle_to_b64(el_identity_bundle(id), ik, sk, sig);
    el_safety_half(el_identity_bundle(id)->ik, half);
    for (size_t i = 0, j = 0; half[i]; i++) {
        if (i && i % 5 == 0)
            fp[j++] = ' ';
        fp[j++] = half[i];
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "peer_id", el_identity_peer_id(id), "ik", ik,
                              "fingerprint", fp);
        print_json(o);
        json_decref(o);
    } else {
        printf("peer ID:     %s\nfingerprint: %s\n", el_identity_peer_id(id), fp);
    }
}

static int cmd_init(options *o)
{
    if (!o->name) {
        fprintf(stderr, "echolink: init needs --name NAME (how your contacts see you)\n");
        return EL_EXIT_USAGE;
    }
    el_profile *p = NULL;
    int ex = open_profile(o, EL_PROFILE_CREATE, &p);
    if (ex)
        return ex;
    char err[512];
    el_identity *id = NULL;
    int rc = el_profile_create_identity(p, &id, err, sizeof err);
    if (rc == 0)
        rc = el_profile_set_display_name(p, o->name, err, sizeof err);
    size_t ns = o->servers->len - 1;
    if (rc == 0 && ns > 0)
        rc = el_profile_set_servers(p, (const char *const *)o->servers->pdata, ns, err, sizeof err);
    if (rc == 0)
        print_identity(id, o->json);
    else
        fprintf(stderr, "echolink: %s\n", err);
    el_identity_free(id);
    el_profile_close(p);
    return rc == 0 ? 0 : rc == EL_ERR_EXISTS ? EL_EXIT_DATAERR : EL_EXIT_IOERR;
}

static int cmd_id(options *o)
{
    el_profile *p = NULL;
    el_identity *id = NULL;
    int ex = open_profile(o, 0, &p);
    if (!ex)
        ex = load_identity(p, &id);
    if (!ex)
        print_identity(id, o->json);
    el_identity_free(id);
    el_profile_close(p);
    return ex;
}

static int cmd_backup(options *o, int export)
{
    if (o->nargs != 2) {
        fprintf(stderr, "echolink: %s needs a FILE\n", export ? "export" : "import");
        return EL_EXIT_USAGE;
    }
    el_profile *p = NULL;
    int ex = open_profile(o, export ? 0 : EL_PROFILE_CREATE, &p);
    if (ex)
        return ex;
    char *pass = ask_passphrase("Backup passphrase: ");
    char err[512];
    int rc = pass && *pass ? 0 : el_seterr(err, sizeof err, EL_ERR_INVALID, "a passphrase is needed");
    el_identity *id = NULL;
    if (rc == 0)
        rc = export ? el_profile_export(p, o->args[1], pass, o->force ? EL_PROFILE_FORCE : 0, err,
                                        sizeof err)
                    : el_profile_import(p, o->args[1], pass, o->force ? EL_PROFILE_FORCE : 0, &id,
                                        err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "echolink: %s\n", err);
    else if (id)
        print_identity(id, o->json);
    el_identity_free(id);
    free(pass);
    el_profile_close(p);
    return rc == 0 ? 0 : rc == EL_ERR_NOT_FOUND ? EL_EXIT_NOINPUT : EL_EXIT_DATAERR;
}

/* ---- requests from the command line ---------------------------------------------------------- */

typedef enum {
    LOCAL,     /* reads the profile's database: no server needed */
    SERVER,    /* needs a login first */
    DELIVER,   /* queues work, then waits until it is delivered */
} cmd_kind;

/* Builds the request of a one-shot command. NULL (with a message) on a
 * usage error. */
static json_t *build_request(options *o, const char *cmd, cmd_kind *kind)
{
    char **a = o->args + 1;
    int n = o->nargs - 1;
    *kind = SERVER;
#define NEED(k)                                                                    \
    do {                                                                           \
        if (n != (k)) {                                                            \
            fprintf(stderr, "echolink: %s takes %d argument%s (see --help)\n", cmd, \
                    (k), (k) == 1 ? "" : "s");                                     \
            return NULL;                                                           \
        }                                                                          \
    } while (0)
    if (!strcmp(cmd, "add")) {
        if (n < 1 || n > 2) {
            fprintf(stderr, "echolink: add PEER [MESSAGE]\n");
            return NULL;
        }
        return json_pack("{s:s, s:s, s:s?}", "cmd", "add", "peer", a[0], "message",
                         n > 1 ? a[1] : NULL);
    }
    static const char *const peer_cmds[] = {"accept", "refuse", "remove", "block", "unblock"};
    for (size_t i = 0; i < G_N_ELEMENTS(peer_cmds); i++) {
        if (!strcmp(cmd, peer_cmds[i])) {
            NEED(1);
            return json_pack("{s:s, s:s}", "cmd", cmd, "peer", a[0]);
        }
    }
    if (!strcmp(cmd, "peers")) {
        NEED(0);
        return json_pack("{s:s}", "cmd", "peers");
    }
    *kind = DELIVER;
    if (!strcmp(cmd, "send")) {
        NEED(2);
        return json_pack("{s:s, s:s, s:s, s:s?}", "cmd", "send", "to", a[0], "text", a[1],
                         "reply_to", o->reply_to);
    }
    if (!strcmp(cmd, "send-file")) {
        NEED(2);
        char *abs = realpath(a[1], NULL);
        if (!abs) {
            fprintf(stderr, "echolink: %s: %s\n", a[1], strerror(errno));
            return NULL;
        }
        json_t *r = json_pack("{s:s, s:s, s:s, s:I}", "cmd", "send_file", "to", a[0], "path", abs,
                              "voice_ms", (json_int_t)o->voice_ms);
        free(abs);
        return r;
    }
    if (!strcmp(cmd, "react")) {
        NEED(3);
        return json_pack("{s:s, s:s, s:s, s:s, s:b}", "cmd", "react", "conv", a[0], "target", a[1],
                         "emoji", a[2], "remove", o->remove);
    }
    if (!strcmp(cmd, "edit")) {
        NEED(3);
        return json_pack("{s:s, s:s, s:s, s:s}", "cmd", "edit", "conv", a[0], "target", a[1],
                         "text", a[2]);
    }
    if (!strcmp(cmd, "delete")) {
        NEED(2);
        return json_pack("{s:s, s:s, s:s}", "cmd", "delete", "conv", a[0], "target", a[1]);
    }
    if (!strcmp(cmd, "typing")) {
        if (n != 2 || (strcmp(a[1], "on") && strcmp(a[1], "off"))) {
            fprintf(stderr, "echolink: typing CONV on|off\n");
            return NULL;
        }
        return json_pack("{s:s, s:s, s:b}", "cmd", "typing", "conv", a[0], "typing",
                         !strcmp(a[1], "on"));
    }
    if (!strcmp(cmd, "read")) {
        NEED(1);
        return json_pack("{s:s, s:s}", "cmd", "read", "conv", a[0]);
    }
    if (!strcmp(cmd, "accept-file") || !strcmp(cmd, "cancel-file")) {
        NEED(1);
        return json_pack("{s:s, s:s}", "cmd", cmd[0] == 'a' ? "accept_file" : "cancel_file",
                         "file_id", a[0]);
    }
    if (!strcmp(cmd, "group")) {
        if (n < 2) {
            fprintf(stderr, "echolink: group create|add|remove|admin|rename|leave ... (see --help)\n");
            return NULL;
        }
        const char *sub = a[0];
        if (!strcmp(sub, "create")) {
            if (n < 3) {
                fprintf(stderr, "echolink: group create NAME PEER...\n");
                return NULL;
            }
            json_t *m = json_array();
            for (int i = 2; i < n; i++)
                json_array_append_new(m, json_string(a[i]));
            return json_pack("{s:s, s:s, s:o}", "cmd", "group_create", "name", a[1], "members", m);
        }
        if (!strcmp(sub, "leave") && n == 2)
            return json_pack("{s:s, s:s}", "cmd", "group_leave", "group_id", a[1]);
        if (!strcmp(sub, "rename") && n == 3)
            return json_pack("{s:s, s:s, s:s}", "cmd", "group_rename", "group_id", a[1], "name", a[2]);
        static const char *const subs[] = {"add", "remove", "admin"};
        for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
            if (!strcmp(sub, subs[i]) && n == 3) {
                char name[32];
                snprintf(name, sizeof name, "group_%s", sub);
                return json_pack("{s:s, s:s, s:s}", "cmd", name, "group_id", a[1], "peer", a[2]);
            }
        }
        fprintf(stderr, "echolink: group %s: wrong arguments (see --help)\n", sub);
        return NULL;
    }
    *kind = LOCAL;
    if (!strcmp(cmd, "history")) {
        NEED(1);
        return json_pack("{s:s, s:s, s:I}", "cmd", "history", "conv", a[0], "limit",
                         (json_int_t)(o->limit ? o->limit : 50));
    }
    if (!strcmp(cmd, "search")) {
        if (n < 1) {
            fprintf(stderr, "echolink: search WORDS...\n");
            return NULL;
        }
        GString *q = g_string_new(NULL);
        for (int i = 0; i < n; i++)
            g_string_append_printf(q, "%s%s", i ? " " : "", a[i]);
        json_t *r = json_pack("{s:s, s:s, s:s?, s:I}", "cmd", "search", "query", q->str, "conv",
                              o->conv, "limit", (json_int_t)(o->limit ? o->limit : 50));
        g_string_free(q, TRUE);
        return r;
    }
    if (!strcmp(cmd, "files")) {
        NEED(1);
        return json_pack("{s:s, s:s}", "cmd", "files", "conv", a[0]);
    }
    if (!strcmp(cmd, "groups") || !strcmp(cmd, "stats") || !strcmp(cmd, "conversations")) {
        NEED(0);
        return json_pack("{s:s}", "cmd", cmd);
    }
    if (!strcmp(cmd, "verify")) {
        NEED(1);
        return json_pack("{s:s, s:s, s:b}", "cmd", "verify", "peer", a[0], "confirm", o->confirm);
    }
    if (!strcmp(cmd, "accept-key")) {
        NEED(1);
        return json_pack("{s:s, s:s}", "cmd", "accept_key", "peer", a[0]);
    }
#undef NEED
    fprintf(stderr, "echolink: unknown command \"%s\" (see echolink --help)\n", cmd);
    return NULL;
}

/* A one-shot run of our own. */
typedef struct {
    GMainLoop *loop;
    el_app *app;
    const options *o;
    const char *cmd;
    json_t *req;
    cmd_kind kind;
    int sent;         /* the request was made */
    int replied;
    int logged_in;
    char msg_id[33];  /* send: done when this message is delivered or queued offline */
    int msg_done;
    int exit_code;
    gint64 deadline;  /* monotonic us; 0 = none */
    gint64 login_deadline;
} oneshot;

static void oneshot_replied(el_app *app, json_t *reply, void *user)
{
    oneshot *os = user;
    (void)app;
    os->replied = 1;
    const char *mid = json_string_value(json_object_get(reply, "msg_id"));
    if (mid)
        snprintf(os->msg_id, sizeof os->msg_id, "%s", mid);
    print_reply(os->cmd, reply, os->o->json);
    os->exit_code = el_app_exit_code(reply);
    if (os->exit_code != 0 || os->kind != DELIVER)
        g_main_loop_quit(os->loop);
}

static void oneshot_event(el_app *app, json_t *ev, void *user)
{
    oneshot *os = user;
    (void)app;
    const char *name = json_string_value(json_object_get(ev, "event"));
    if (!strcmp(name, "login"))
        os->logged_in = 1;
    if (!strcmp(name, "status") && os->msg_id[0] &&
        !g_strcmp0(json_string_value(json_object_get(ev, "id")), os->msg_id)) {
        const char *st = json_string_value(json_object_get(ev, "status"));
        const char *via = json_string_value(json_object_get(ev, "via"));
        if (strcmp(st, "sent") != 0 || !g_strcmp0(via, "envelope"))
            os->msg_done = 1; /* delivered, read, or in the server's offline queue */
    }
    if (!strcmp(name, "error") || !strcmp(name, "key_changed"))
        print_event(ev, 0);
    if (!os->sent && os->logged_in) {
        os->sent = 1;
        el_app_request(app, os->req, oneshot_replied, os);
    }
}

static gboolean oneshot_tick(gpointer data)
{
    oneshot *os = data;
    gint64 now = g_get_monotonic_time();
    if (!os->sent && now > os->login_deadline) {
        if (os->kind == DELIVER) {
            os->sent = 1; /* queue it anyway: delivered by the next run */
            el_app_request(os->app, os->req, oneshot_replied, os);
        } else {
            fprintf(stderr, "echolink: cannot log in to the server\n");
            os->exit_code = EL_EXIT_UNAVAILABLE;
            g_main_loop_quit(os->loop);
            return G_SOURCE_REMOVE;
        }
    }
    if (os->replied && os->kind == DELIVER && os->exit_code == 0) {
        /* a message waits for itself only, not for the rest of the outbox */
        int left = os->msg_id[0] ? !os->msg_done : el_session_unsettled(el_app_session(os->app));
        if (left == 0 && os->logged_in) {
            g_main_loop_quit(os->loop);
        } else if (!os->logged_in && now > os->login_deadline) {
            fprintf(stderr, "echolink: cannot reach the server; it stays queued and is sent the "
                            "next time echolink runs for this profile\n");
            os->exit_code = EL_EXIT_TEMPFAIL;
            g_main_loop_quit(os->loop);
        } else if (os->deadline && now > os->deadline) {
            fprintf(stderr, "echolink: not delivered yet (%d pending); it stays queued and is "
                            "sent the next time echolink runs for this profile\n", left);
            os->exit_code = EL_EXIT_TEMPFAIL;
            g_main_loop_quit(os->loop);
        }
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_quit_signal(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_CONTINUE;
}

static void watch_signals(GMainContext *ctx, GMainLoop *loop)
{
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
        GSource *src = g_unix_signal_source_new(sigs[i]);
        g_source_set_callback(src, on_quit_signal, loop, NULL);
        g_source_attach(src, ctx);
        g_source_unref(src);
    }
}

static el_app *make_app(const options *o, el_profile *p, const el_identity *id, int ctl,
                        int *exit_code)
{
    el_app_options ao = {
        .servers = o->servers->len > 1 ? (const char *const *)o->servers->pdata : NULL,
        .ice_addresses = o->ice->len > 1 ? (const char *const *)o->ice->pdata : NULL,
        .accept_files = o->accept_files,
        .control_socket = ctl,
    };
    char err[512];
    el_app *app = el_app_new(g_main_context_default(), p, id, &ao, err, sizeof err);
    if (!app) {
        fprintf(stderr, "echolink: %s\n", err);
        *exit_code = EL_EXIT_IOERR;
    }
    return app;
}

static int run_oneshot(options *o, el_profile *p, const el_identity *id, const char *cmd,
                       json_t *req, cmd_kind kind)
{
    int ex = 0;
    el_app *app = make_app(o, p, id, kind != LOCAL, &ex);
    if (!app)
        return ex;
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    long wait = o->wait_s >= 0 ? o->wait_s
                : (!strcmp(cmd, "send-file") || !strcmp(cmd, "accept-file")) ? 0
                                                                              : DEFAULT_WAIT_S;
    oneshot os = {.loop = loop, .app = app, .o = o, .cmd = cmd, .req = req, .kind = kind};
    gint64 now = g_get_monotonic_time();
    os.deadline = wait ? now + wait * G_USEC_PER_SEC : 0;
    os.login_deadline = now + LOGIN_TIMEOUT_S * G_USEC_PER_SEC;
    char err[512];
    if (kind == LOCAL) {
        el_app_request(app, req, oneshot_replied, &os);
    } else {
        el_app_add_listener(app, oneshot_event, &os);
        if (el_app_start(app, err, sizeof err) != 0) {
            fprintf(stderr, "echolink: %s\n", err);
            os.exit_code = EL_EXIT_SOFTWARE;
        } else {
            guint t = g_timeout_add(100, oneshot_tick, &os);
            watch_signals(g_main_context_default(), loop);
            g_main_loop_run(loop);
            g_source_remove(t);
        }
    }
    el_app_free(app);
    /* let cancelled connections finish on the context before it goes */
    for (int i = 0; i < 50 && g_main_context_iteration(NULL, FALSE); i++)
        ;
    g_main_loop_unref(loop);
    return os.exit_code;
}

/* Hands the request to the process that owns the profile. */
static int run_remote(options *o, el_profile *p, const char *cmd, json_t *req)
{
    json_t *reply = NULL;
    char err[512];
    json_object_set_new(req, "id", json_integer(1));
    int rc = el_ctl_call(el_profile_control_path(p), req, &reply, 60000, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "echolink: profile %s is in use by process %d, which does not answer: %s\n",
                el_profile_name(p), (int)el_profile_lock_holder(p), err);
        return EL_EXIT_TEMPFAIL;
    }
    json_object_del(reply, "id");
    print_reply(cmd, reply, o->json);
    int ex = el_app_exit_code(reply);
    json_decref(reply);
    return ex;
}

static int cmd_oneshot(options *o, const char *cmd)
{
    cmd_kind kind;
    json_t *req = build_request(o, cmd, &kind);
    if (!req)
        return EL_EXIT_USAGE;
    el_profile *p = NULL;
    el_identity *id = NULL;
    int ex = open_profile(o, 0, &p);
    if (!ex) {
        char err[512];
        if (el_profile_lock(p, err, sizeof err) != 0)
            ex = run_remote(o, p, cmd, req);
        else if (!(ex = load_identity(p, &id)))
            ex = run_oneshot(o, p, id, cmd, req, kind);
    }
    json_decref(req);
    el_identity_free(id);
    el_profile_close(p);
    return ex;
}

/* ---- listen and chat -------------------------------------------------------------------------- */

static void listen_event(el_app *app, json_t *ev, void *user)
{
    (void)app;
    print_event(ev, *(int *)user);
}

static int cmd_owner(options *o, int tui)
{
    el_profile *p = NULL;
    el_identity *id = NULL;
    int ex = open_profile(o, 0, &p);
    char err[512];
    if (!ex && el_profile_lock(p, err, sizeof err) != 0) {
        fprintf(stderr, "echolink: %s\n", err);
        ex = EL_EXIT_TEMPFAIL;
    }
    if (!ex)
        ex = load_identity(p, &id);
    el_app *app = ex ? NULL : make_app(o, p, id, 1, &ex);
    if (app && !tui)
        el_app_add_listener(app, listen_event, &o->json);
    if (app && el_app_start(app, err, sizeof err) != 0) {
        fprintf(stderr, "echolink: %s\n", err);
        ex = EL_EXIT_SOFTWARE;
    } else if (app && tui) {
        ex = el_tui_run(app, g_main_context_default(), err, sizeof err);
        if (ex)
            fprintf(stderr, "echolink: %s\n", err);
    } else if (app) {
        GMainLoop *loop = g_main_loop_new(NULL, FALSE);
        watch_signals(g_main_context_default(), loop);
        g_main_loop_run(loop);
        g_main_loop_unref(loop);
    }
    el_app_free(app);
    for (int i = 0; i < 50 && g_main_context_iteration(NULL, FALSE); i++)
        ;
    el_identity_free(id);
    el_profile_close(p);
    return ex;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    signal(SIGPIPE, SIG_IGN);
    const char *lvl = getenv("ECHOLINK_LOG");
    el_log_level level = EL_LOG_WARN;
    if (lvl && el_log_parse_level(lvl, &level) != 0)
        level = EL_LOG_WARN;
    el_log_set_level(level);
    el_clock_init(); /* warns now if a test moved the clock */
    options o = {0};
    if (parse_args(argc, argv, &o) != 0)
        return EL_EXIT_USAGE;
    if (o.nargs == 0) {
        usage(stderr);
        return EL_EXIT_USAGE;
    }
    const char *cmd = o.args[0];
    int ex;
    if (!strcmp(cmd, "init"))
        ex = cmd_init(&o);
    else if (!strcmp(cmd, "id"))
        ex = cmd_id(&o);
    else if (!strcmp(cmd, "export") || !strcmp(cmd, "import"))
        ex = cmd_backup(&o, cmd[0] == 'e');
    else if (!strcmp(cmd, "listen"))
        ex = cmd_owner(&o, 0);
    else if (!strcmp(cmd, "chat"))
        ex = cmd_owner(&o, 1);
    else if (!strcmp(cmd, "help"))
        usage(stdout), ex = 0;
    else
        ex = cmd_oneshot(&o, cmd);
    g_ptr_array_free(o.servers, TRUE);
    g_ptr_array_free(o.ice, TRUE);
    free(o.args);
    return ex;
}
