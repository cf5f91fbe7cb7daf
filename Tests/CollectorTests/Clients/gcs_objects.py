"""Reads and prepares the GCS emulator through Google's official client, for the GCS tests.

    gcs_objects.py create BUCKET          make a bucket
    gcs_objects.py dump BUCKET PREFIX     print {name: base64 bytes} of every object under PREFIX

STORAGE_EMULATOR_HOST names the emulator (scripts/services/gcs.sh exports it for the tests).
"""
import base64
import json
import sys

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

client = storage.Client(project="test", credentials=AnonymousCredentials())
command, bucket = sys.argv[1], sys.argv[2]
if command == "create":
    client.create_bucket(bucket)
elif command == "dump":
    # Each object fetched by name: a listed object's media link names the host it was uploaded
    # through, which in the fault tests is a proxy that is off by now.
    names = [blob.name for blob in client.list_blobs(bucket, prefix=sys.argv[3])]
    out = {name: base64.b64encode(client.bucket(bucket).blob(name).download_as_bytes()).decode() for name in names}
    print(json.dumps(out))
else:
    sys.exit(f"unknown command {command}")
