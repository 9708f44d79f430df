# One image, every binary of cmd/ (a new cmd/<name> is included without editing this file):
#   docker run IMAGE                      # the worker, the default entrypoint
#   docker run --entrypoint poller IMAGE -config /etc/rollcall/config.yaml
# Binaries: /usr/local/bin/<name>. Static (CGO_ENABLED=0), time zones embedded
# (timetzdata: tenants name IANA zones and the image has no /usr/share/zoneinfo),
# run as an unprivileged user; nothing else in the image but CA certificates.

FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The final image has no shell, so its whole file tree is laid out here, in /rootfs.
RUN mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs \
 && CGO_ENABLED=0 go build -trimpath -tags timetzdata -ldflags="-s -w" -o /rootfs/usr/local/bin/ ./cmd/... \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'rollcall:x:65532:65532:rollcall:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'rollcall:x:65532:' > /rootfs/etc/group \
 && ls -l /rootfs/usr/local/bin/

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin \
    PROVISION_CONFIG=/etc/rollcall/config.yaml
# Numeric, so a runtime can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/worker"]
