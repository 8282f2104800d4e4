FROM busybox
HEALTHCHECK --interval=xx CMD true
