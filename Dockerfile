# trustgate's container image: `npm run image` builds it as localhost/trustgate:dev (scripts/build-image.sh).
# Multi-stage: build with dev dependencies, run with production ones only, as the non-root user `node`.
# The base is an ARG so a site can point it at its own mirror of node:20-bookworm-slim; where that
# cannot be pulled, scripts/build-image.sh makes a local stand-in with the same layout (node and npm in
# /usr/local, user node uid 1000) from Debian packages and this machine's Node 20, and says so.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
# Only for sites whose egress re-signs TLS: a CA file mounted into the build (scripts/build-image.sh
# BUILD_CA_FILE). Unset, npm uses its defaults. Build args are not part of the final image's config.
ARG NPM_CONFIG_CAFILE
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --ignore-scripts --no-audit --no-fund && npx tsc -p tsconfig.build.json

FROM ${BASE_IMAGE} AS deps
ARG NPM_CONFIG_CAFILE
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${BASE_IMAGE}
ENV NODE_ENV=production \
    # Listen on all interfaces inside the container (the file's listen: is overridden); publish with -p.
    TRUSTGATE_LISTEN=0.0.0.0:5050 \
    # The config path: mount your file here (compose: deploy/compose.yaml), or set another path.
    TRUSTGATE_CONFIG=/app/config/default.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
# The file store (store.path ./data, relative to /app) and the blob cache live here: keep it on a volume.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME /app/data
USER node
EXPOSE 5050
# Probes /healthz on the port TRUSTGATE_LISTEN names (the healthcheck runs inside the container).
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD ["node", "-e", "const p=(process.env.TRUSTGATE_LISTEN||'0.0.0.0:5050').split(':').pop();fetch('http://127.0.0.1:'+p+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/main.js"]
CMD ["start"]
