FROM busybox
EXPOSE abc
