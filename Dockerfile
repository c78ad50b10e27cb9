# JobChain's container image: the CLI with its production dependencies, the built-in jobs and the example pipeline.
#
#   docker build -t jobchain .                                  # on the public Node image
#   docker build --build-arg BASE=jobchain-base:24 -t jobchain . # on any image with Node 24 + npm at the same paths
#   docker run --read-only jobchain runner /app/examples/pipeline --nats nats://nats:4222
#
# The entrypoint is `jobchain`, so the container's args are a CLI command: `runner ...`, `operator ...`.
# A runner image for your own jobs is this image plus your job modules in /app/jobs (JOBCHAIN_JOBS), e.g.
# examples/pipeline/Dockerfile; docs/jobs.md says how.
# It runs as the unprivileged user 1000 and writes nothing outside its working files (use an emptyDir for /tmp
# when the root filesystem is read-only).
ARG BASE=node:24-bookworm-slim

FROM ${BASE} AS build
# A CA bundle inside the image for npm's TLS (where the registry is reached through a proxy with its own CA).
ARG NODE_EXTRA_CA_CERTS
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
# The sources (.dockerignore lets in only the package's own directories).
COPY . .
RUN node_modules/.bin/tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund --loglevel=error

FROM ${BASE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY examples ./examples
RUN ln -s /app/bin/jobchain.js /usr/local/bin/jobchain && chmod 0755 /app/bin/jobchain.js && mkdir -p /app/jobs
# Runners load every job module in these directories (':'-separated) besides the built-in jobs.
ENV JOBCHAIN_JOBS=/app/jobs
USER 1000:1000
ENTRYPOINT ["jobchain"]
CMD ["--help"]
