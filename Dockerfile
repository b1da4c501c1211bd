# syntax=docker/dockerfile:1
#
# Cohort images. The default target is the worker image, which also holds the
# starter CLI (docker compose run --rm starter ...):
#   docker build -t cohort .
#   docker build -t cohort-emulator --target emulator .     # rehearsals only
#
# Nothing secret is baked in: Databricks credentials reach the worker only
# through its environment at run time (docker-compose.yml: env_file), and the
# config file is mounted read-only at /etc/cohort.

# Go 1.26, as go.mod requires; the official image sets GOTOOLCHAIN=local.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static binaries (no cgo) for a distroless runtime; no VCS stamping, since
# .git is not part of the build context.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags="-s -w" -o /out/bin/ \
      ./worker ./starter ./emulator/cmd/databricks-emulator \
 && mkdir -p /out/app/data/rosters /out/emulator

# The emulator: a local, stateful Databricks for rehearsals (compose profile "rehearsal").
FROM gcr.io/distroless/static-debian12:nonroot AS emulator
COPY --from=build /out/bin/databricks-emulator /usr/local/bin/databricks-emulator
# State journal directory; a named volume mounted here inherits the owner.
COPY --from=build --chown=nonroot:nonroot /out/emulator /var/lib/emulator
USER nonroot:nonroot
EXPOSE 8765
ENTRYPOINT ["/usr/local/bin/databricks-emulator"]
CMD ["--listen", "0.0.0.0:8765", "--state", "/var/lib/emulator/state.jsonl"]

# The worker (default target). roster_dir in the config is relative
# (data/rosters), so the working directory is /app and the roster volume shared
# with the starter is mounted at /app/data/rosters.
FROM gcr.io/distroless/static-debian12:nonroot AS worker
COPY --from=build /out/bin/worker /out/bin/starter /usr/local/bin/
COPY --from=build --chown=nonroot:nonroot /out/app /app
WORKDIR /app
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/worker"]
CMD ["--config", "/etc/cohort/cohort.yaml"]
