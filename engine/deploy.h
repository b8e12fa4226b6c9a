/*
 * engine/deploy.h: files of deploy/ embedded in the library at build time (cmake/embed.cmake),
 * so `berth bootstrap --host` writes exactly what the repository ships.
 */
#ifndef BERTH_ENGINE_DEPLOY_H
#define BERTH_ENGINE_DEPLOY_H

/** deploy/host/berth.service, NUL-terminated; "@BERTH_BIN@" stands for the binary's path. */
extern const char eng_deploy_host_unit[];

#endif
