/* echolinkd - the EchoLink signaling server. See --help and docs/PROTOCOL.md. */
#include "base/log.h"
#include "server/config.h"
#include "server/server.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    el_server_config cfg;
    char err[512] = "";
    int rc = el_config_load(&cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "echolinkd: %s\n", err);
        el_config_clear(&cfg);
        return rc < 0 ? 2 : 0;
    }
    el_log_level level;
    if (el_log_parse_level(cfg.log_level, &level) < 0) {
        fprintf(stderr, "echolinkd: --log-level must be error, warn, info or debug\n");
        el_config_clear(&cfg);
        return 2;
    }
    el_log_set_level(level);
    el_server *srv = el_server_new(&cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "echolinkd: %s\n", err);
        el_config_clear(&cfg);
        return 1;
    }
    rc = el_server_run(srv);
    el_server_free(srv);
    el_config_clear(&cfg);
    return rc;
}
