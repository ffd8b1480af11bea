# auth-service: build with the dev toolchain, run on the production dependencies only.
#
# No Docker engine is needed to check this file: test/docker-image.test.ts replays it (the build
# context as .dockerignore leaves it, every COPY, RUN and ENV of both stages, with compilers
# disabled as in the slim image) and starts the result. Keep RUN paths relative to WORKDIR.
FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && mkdir -p .data

FROM node:26-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/app/.data
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/.data ./.data
USER node
EXPOSE 3000
CMD ["node", "dist/src/main.js"]
