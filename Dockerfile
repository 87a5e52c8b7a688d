# kubegate: one image for every process (`kubegate proxy`, `kubegate webhook`, `kubegate agent`).
# Stage 1 compiles TypeScript and the better-sqlite3 native module; stage 2 carries only the
# production dependencies and the compiled output, and runs as an unprivileged user.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm ci` builds dist/ through the `prepare` script.
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The data dir holds the SQLite store and generated TLS material when no volume is given.
RUN mkdir -p /var/lib/kubegate && chown 65532:65532 /var/lib/kubegate
USER 65532:65532
ENV KUBEGATE_DATA_DIR=/var/lib/kubegate
EXPOSE 8443 6440
ENTRYPOINT ["node", "/app/dist/cmd/main.js"]
CMD ["proxy"]
