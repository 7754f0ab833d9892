# wsgate: multi-stage build on a glibc >= 2.38 base (Debian 13 "trixie"), so the upstream
# uWebSockets.js v20.57.0 binary loads. WSGATE_UWS_BUILD=upstream makes a failure to load it fatal
# instead of silently using another build.
FROM node:22-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --omit=optional

FROM node:22-trixie-slim
ENV NODE_ENV=production \
    WSGATE_PORT=8080 \
    WSGATE_UWS_BUILD=upstream
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
# One worker process per core of the container's CPU quota (WSGATE_WORKERS=auto, docs/WORKERS.md).
# SIGTERM drains for WSGATE_DRAIN_GRACE_SEC + WSGATE_DRAIN_SEC (3 + 5 s): within `docker stop`'s 10 s.
# The health check speaks https when WSGATE_TLS_CERT_FILE is set (the certificate is not checked: it
# names the public host, not 127.0.0.1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require(process.env.WSGATE_TLS_CERT_FILE?'node:https':'node:http').get({host:'127.0.0.1',port:process.env.WSGATE_PORT||8080,path:'/healthz',rejectUnauthorized:false,timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli.js"]
