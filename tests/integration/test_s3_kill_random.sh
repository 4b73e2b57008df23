# test_s3_kill_random: test_kill_random.sh against S3 (Ceph RGW), with 64 KiB
# parts so that kills land in the middle of multipart uploads.
KILL_REPO=s3
. "$(dirname "$0")/test_kill_random.sh"
