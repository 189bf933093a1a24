# socsync as a container image: a static binary on an empty base, running as non-root.
#   docker build -t socsync .
#   docker run --rm -p 8080:8080 -v $PWD/socsync.yaml:/etc/socsync/socsync.yaml:ro \
#     -e SOCSYNC_SERVER_LISTEN=0.0.0.0:8080 socsync serve --config /etc/socsync/socsync.yaml
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/socsync/socsync/internal/cli.version=${VERSION}" \
    -o /out/socsync ./cmd/socsync

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/socsync /usr/local/bin/socsync
COPY --from=build --chown=65532:65532 /tmp /var/lib/socsync
USER 65532:65532
WORKDIR /var/lib/socsync
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/socsync"]
CMD ["serve", "--config", "/etc/socsync/socsync.yaml"]
