# syntax=docker/dockerfile:1
#
# kycgate as a container image: a static binary (pure Go, CGO_ENABLED=0) on a
# distroless base that runs as a non-root user. README, "Running in
# containers", says what to set; deploy/compose.yaml runs two replicas on
# PostgreSQL behind a proxy.
#
#   docker build -t kycgate .          (or: podman build -t kycgate .)
#   docker run --rm kycgate version
#
# Both base images are build arguments so a mirror or a pinned digest can
# stand in for them without editing this file.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# `kycgate version` names the commit when the context holds the checkout's
# .git; without one (a tarball, a CI that strips it, a git worktree whose
# .git file points outside the context) the build goes on unstamped instead
# of failing. safe.directory: the context's files may belong to another
# user than the build's, which git otherwise refuses.
RUN set -eu; \
    vcs=false; \
    if command -v git >/dev/null 2>&1; then \
        git -C / config --global --add safe.directory /src; \
        if git -C /src rev-parse --is-inside-work-tree >/dev/null 2>&1; then vcs=true; fi; \
    fi; \
    if [ "$vcs" = false ]; then echo "note: no usable .git in the build context: kycgate version will not name a commit"; fi; \
    CGO_ENABLED=0 go build -trimpath -buildvcs="$vcs" -ldflags="-s -w" -o /out/kycgate ./cmd/kycgate; \
    /out/kycgate version; \
    mkdir -p /out/data

FROM ${RUNTIME_IMAGE}
# The distroless :nonroot images run as 65532; named here too so a runtime
# image without a default user still never runs kycgate as root.
USER 65532:65532
COPY --from=build /out/kycgate /usr/local/bin/kycgate
# The SQLite default keeps its database and generated secret in /data.
# With PostgreSQL nothing is written there.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME /data
WORKDIR /data
# 0.0.0.0: a container is reached through its network interface, never its
# loopback. That also turns development mode off (decideDev): the server
# then needs KYCGATE_DIDIT_* and KYCGATE_SMTP_URL, or KYCGATE_DEV=1 for a
# trial with the built-in simulator and mailbox.
ENV KYCGATE_ADDR=0.0.0.0:8080 \
    KYCGATE_DATABASE_URL=sqlite:/data/kycgate.db
EXPOSE 8080
# Distroless has no shell or curl: the binary probes itself (GET /readyz on
# KYCGATE_ADDR). Orchestrators may instead probe /healthz (liveness) and
# /readyz (readiness) over HTTP. Podman keeps HEALTHCHECK only when
# building with --format docker.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/kycgate", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/kycgate"]
CMD ["serve"]
