FROM busybox
ARG A=${B
