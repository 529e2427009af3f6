/* metrics.c - see metrics.h. */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const reject_codes[EL_REJ__COUNT] = {
    "bad_request", "unknown_event", "not_logged_in", "bad_signature", "offline",
    "unknown_peer", "not_allowed", "rate_limited", "too_large", "invalid_json",
    "binary_unsupported", "quota_exceeded", "not_found", "internal", "protocol_error",
    "connection_limit",
};
static const char *const relay_names[EL_RELAY__COUNT] = {"offer", "answer", "ice_candidate"};

const char *el_reject_code(el_reject r)
{
    return r < EL_REJ__COUNT ? reject_codes[r] : "internal";
}

typedef struct {
    char *out;
    size_t len, cap;
    int overflow;
} sink;

__attribute__((format(printf, 2, 3))) static void put(sink *s, const char *fmt, ...)
{
    if (s->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->out + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= s->cap - s->len)
        s->overflow = 1;
    else
        s->len += (size_t)n;
}

int el_metrics_render(const el_metrics *m, char *out, size_t outlen)
{
    sink s = {out, 0, outlen, 0};
    put(&s, "# HELP echolink_connections_total Engine.IO sessions opened.\n"
            "# TYPE echolink_connections_total counter\n"
            "echolink_connections_total %llu\n",
        (unsigned long long)m->connections_total);
    put(&s, "# HELP echolink_connections Engine.IO sessions open now.\n"
            "# TYPE echolink_connections gauge\n"
            "echolink_connections{transport=\"any\"} %lld\n"
            "echolink_connections{transport=\"websocket\"} %lld\n",
        (long long)m->connections_open, (long long)m->websocket_open);
    put(&s, "# HELP echolink_peers_online Logged-in peers.\n"
            "# TYPE echolink_peers_online gauge\n"
            "echolink_peers_online %lld\n",
        (long long)m->peers_online);
    put(&s, "# HELP echolink_logins_total Login attempts by result.\n"
            "# TYPE echolink_logins_total counter\n"
            "echolink_logins_total{result=\"ok\"} %llu\n"
            "echolink_logins_total{result=\"failed\"} %llu\n",
        (unsigned long long)m->logins_total, (unsigned long long)m->logins_failed);
    put(&s, "# HELP echolink_events_total Socket.IO events received.\n"
            "# TYPE echolink_events_total counter\n"
            "echolink_events_total %llu\n",
        (unsigned long long)m->events_total);
    put(&s, "# HELP echolink_relayed_total Signaling events relayed, by type.\n"
            "# TYPE echolink_relayed_total counter\n");
    for (int i = 0; i < EL_RELAY__COUNT; i++)
        put(&s, "echolink_relayed_total{type=\"%s\"} %llu\n", relay_names[i],
            (unsigned long long)m->relayed[i]);
    put(&s, "# HELP echolink_rejected_total Inputs rejected, by reason.\n"
            "# TYPE echolink_rejected_total counter\n");
    for (int i = 0; i < EL_REJ__COUNT; i++)
        put(&s, "echolink_rejected_total{reason=\"%s\"} %llu\n", reject_codes[i],
            (unsigned long long)m->rejected[i]);
    put(&s, "# HELP echolink_envelopes_total Offline envelopes, by stage.\n"
            "# TYPE echolink_envelopes_total counter\n"
            "echolink_envelopes_total{stage=\"stored\"} %llu\n"
            "echolink_envelopes_total{stage=\"delivered\"} %llu\n",
        (unsigned long long)m->envelopes_stored, (unsigned long long)m->envelopes_delivered);
    put(&s, "# HELP echolink_websocket_upgrades_total WebSocket handshakes, by who frames the connection.\n"
            "# TYPE echolink_websocket_upgrades_total counter\n"
            "echolink_websocket_upgrades_total{framing=\"echolinkd\"} %llu\n"
            "echolink_websocket_upgrades_total{framing=\"lws\"} %llu\n",
        (unsigned long long)m->ws_upgrades_own, (unsigned long long)m->ws_upgrades_lws);
    put(&s, "# HELP echolink_http_requests_total HTTP requests (not WebSocket frames).\n"
            "# TYPE echolink_http_requests_total counter\n"
            "echolink_http_requests_total %llu\n",
        (unsigned long long)m->http_requests);
    return s.overflow ? -1 : (int)s.len;
}
