#!/usr/bin/env bash
# moto's S3 API server on loopback, with signature checking on, for the S3 storage tests.
#   eval "$(scripts/services/moto.sh start)"   # prints export lines for BREAKWATER_TEST_*
#   scripts/services/moto.sh stop
# Only the export lines go to stdout; progress goes to stderr. State lives in $SERVICES_DIR.
set -euo pipefail
service=moto
. "$(dirname "$0")/lib/service.sh"

start() {
  if running && [ -f "$envfile" ]; then
    cat "$envfile"
    return
  fi
  python_with 'import boto3, moto.server' 'moto[server]' boto3
  moto=$(dirname "$(command -v "$python")")/moto_server
  [ -x "$moto" ] || moto=moto_server
  port=$(free_port)
  endpoint="http://127.0.0.1:$port"
  # The first 3 requests run unauthenticated (the IAM set-up below); every later one is signature-checked.
  INITIAL_NO_AUTH_ACTION_COUNT=3 setsid "$moto" -H 127.0.0.1 -p "$port" </dev/null >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  # Wait with bare TCP connects: an HTTP request would use up one of the unauthenticated calls.
  "$python" - "$port" >&2 <<'PY'
import socket, sys, time
deadline = time.time() + 30
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("moto_server did not start; see the log in SERVICES_DIR")
        time.sleep(0.1)
PY
  "$python" - "$endpoint" >"$envfile" <<'PY'
import json, sys
import boto3
endpoint = sys.argv[1]
bucket = "breakwater-test"
anonymous = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anonymous)
iam.create_user(UserName="breakwater")
# moto does not load managed policies: an inline one.
iam.put_user_policy(UserName="breakwater", PolicyName="everything",
                    PolicyDocument=json.dumps({"Version": "2012-10-17",
                                               "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="breakwater")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
print(f"export BREAKWATER_TEST_S3_ENDPOINT={endpoint}")
print(f"export BREAKWATER_TEST_S3_BUCKET={bucket}")
print(f"export BREAKWATER_TEST_AWS_ACCESS_KEY_ID={key['AccessKeyId']}")
print(f"export BREAKWATER_TEST_AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}")
PY
  echo "moto_server running at $endpoint (pid $(cat "$pidfile"))" >&2
  cat "$envfile"
}

dispatch "$@"
