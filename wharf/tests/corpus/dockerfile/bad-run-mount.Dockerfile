FROM busybox
RUN --mount=type=nope true
