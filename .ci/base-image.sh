#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim when no registry can be pulled from.
# Debian minbase + python3 in a venv at /usr/local, so `python`/`pip` behave like the official image.
# Skipped when the tag already exists. The host's CA bundle is copied in so pip works behind a
# TLS-intercepting proxy (the same problem corporate users hit).
set -euo pipefail
tag="${1:-python:3.11-slim}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi
if docker pull "$tag" >/dev/null 2>&1; then
  echo "base image $tag pulled"
  exit 0
fi
command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
chroot "$rootfs" python3 -m venv /usr/local
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "base image $tag built locally"
