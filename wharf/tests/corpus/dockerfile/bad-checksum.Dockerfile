FROM busybox
ADD --checksum=sha256:00 a /a
