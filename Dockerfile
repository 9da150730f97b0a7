# Backer's container image. Build: docker build -t backer .
# Multi-stage: the build stage compiles TypeScript and drops dev dependencies; the runtime stage
# has Node 24, the programs Backer's middleware runs and the volume helper needs, and tini as init.

FROM node:24-bookworm-slim AS build
# better-sqlite3 (the state database) is a native addon: npm fetches a prebuilt binary when it can
# reach GitHub, else compiles it against this image's own Node headers (/usr/local/include/node).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
ENV npm_config_nodedir=/usr/local
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web UI (web/, Vue + Tailwind) is built into dist/web by npm run build.
COPY web ./web
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# ccrypt, zstd, gnupg, age: middleware programs; tar: the volume helper (this image) archives with it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ccrypt zstd gnupg age tar ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*

# The daemon runs as backer (uid 10001). It reaches the Docker socket through the socket's group:
# docker run --group-add "$(stat -c %g /var/run/docker.sock)" (compose: group_add).
RUN groupadd --system --gid 10001 backer \
 && useradd --system --uid 10001 --gid backer --home-dir /var/lib/backer --shell /usr/sbin/nologin backer \
 && mkdir -p /etc/backer /var/lib/backer /backups \
 && chown backer:backer /var/lib/backer /backups

WORKDIR /opt/backer
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
RUN chmod 0755 bin/backer.js && ln -s /opt/backer/bin/backer.js /usr/local/bin/backer
COPY docker/backer.yml /etc/backer/backer.yml

ENV NODE_ENV=production \
    BACKER_CONFIG=/etc/backer/backer.yml
VOLUME ["/var/lib/backer"]
USER backer
WORKDIR /var/lib/backer
# Last: a new revision does not invalidate the cached layers above.
ARG VERSION=dev
ARG REVISION=unknown
# The repository's URL; CI passes it (.github/workflows/image.yml).
ARG SOURCE=
LABEL org.opencontainers.image.title="Backer" \
      org.opencontainers.image.description="Backup daemon for databases and volumes that run in Docker" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
# `backer` is bin/backer.js: its shebang runs Node with --max-semi-space-size=1 (less memory, see
# README "Memory"), and the CLI keeps Node's compile cache in /tmp/backer-compile-cache-10001.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["backer", "health"]
ENTRYPOINT ["/usr/bin/tini", "--", "backer"]
CMD ["daemon"]
