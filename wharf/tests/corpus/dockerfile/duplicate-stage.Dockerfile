FROM busybox AS one
FROM one AS one
