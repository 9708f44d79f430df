# One image, every binary: docker run IMAGE worker|poller|bench|... -config /etc/rollcall/config.yaml
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot
ENV PROVISION_CONFIG=/etc/rollcall/config.yaml
ENTRYPOINT ["/usr/local/bin/worker"]
