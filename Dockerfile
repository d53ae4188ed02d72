# overlord-ts: one image for the shadow tracker (`serve`, the default command), the tee receiver
# (`tee mirror`) and the comparison watcher (`watch`); docker-compose.shadow.yml runs all three.
# Node 24 runs the TypeScript source as it is (type stripping): there is no build step.
#   docker build --build-arg BUILD_VERSION=2026.12.4.2330-abc1234 -t overlord-ts .

# Production dependencies only. test/compose.test.ts checks that every package src/ imports at
# run time is a `dependencies` entry (a devDependency would be missing here and crash the image).
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# Read at run time: the endpoint manifest (src/capture/snapshots.ts, loaded by every command) and
# the rules, waivers and cutover criteria `watch` and `cutover` read.
COPY compare ./compare
COPY docker/healthcheck.ts ./docker/healthcheck.ts
# The watcher's reports: a named volume mounted here starts with this directory's owner.
RUN mkdir /reports && chown 1000:1000 /reports
# 0.0.0.0 inside the container; docker-compose.shadow.yml publishes on 127.0.0.1 only.
ENV PORT=8766 HOST=0.0.0.0
EXPOSE 8766
# The image's `node` user, by number so Kubernetes' runAsNonRoot can verify it is not root.
USER 1000:1000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "docker/healthcheck.ts"]
# Last, so a new version reuses every layer above. CalVer YYYY.M.D.HHMM-gitshorthash, served at
# /api-version (CONTRACT.md §4).
ARG BUILD_VERSION=dev
ENV BUILD_VERSION=${BUILD_VERSION}
ENTRYPOINT ["node", "src/cli/main.ts"]
CMD ["serve"]
