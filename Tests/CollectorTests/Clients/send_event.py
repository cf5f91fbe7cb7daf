"""Sends one exception event to Breakwater with a real Sentry client, for the Swift end-to-end tests.

usage: send_event.py raven|sentry-sdk|sentry-sdk-minidump DSN [DUMP_FILE]

Prints one JSON line: {"event_id": "..."} (the id the client chose).
  raven               raven-python 6.10 to /api/<project>/store/ (zlib JSON)
  sentry-sdk          sentry-sdk to /api/<project>/envelope/, the event with a text attachment
  sentry-sdk-minidump sentry-sdk's transport sending an envelope with an event.minidump attachment
"""
import json
import sys


def crash():
    return {"missing": 1}["key"]


def send_raven(dsn):
    from raven import Client
    from raven.transport.http import HTTPTransport

    # The synchronous transport: the event is sent (or has failed) when captureException returns.
    client = Client(dsn, transport=HTTPTransport, release="app@1.2.3", environment="staging")
    try:
        crash()
    except KeyError:
        event_id = client.captureException()
    if client.state.did_fail():
        sys.exit("raven: sending failed")
    return event_id


def send_sentry_sdk(dsn, dump=None):
    import sentry_sdk
    from sentry_sdk.envelope import Envelope, Item, PayloadRef

    sentry_sdk.init(dsn, release="app@2.0.0", environment="production", default_integrations=False)
    if dump is None:
        with sentry_sdk.new_scope() as scope:
            scope.add_attachment(bytes=b"log line 1\nlog line 2\n", filename="app.log", content_type="text/plain")
            try:
                crash()
            except KeyError as error:
                event_id = sentry_sdk.capture_exception(error)
    else:
        # What native SDKs send for a crash: the event and the minidump in one envelope.
        import uuid
        event_id = uuid.uuid4().hex
        envelope = Envelope(headers={"event_id": event_id})
        envelope.add_event({"event_id": event_id, "platform": "native", "level": "fatal", "release": "app@2.0.0"})
        with open(dump, "rb") as f:
            envelope.add_item(Item(payload=PayloadRef(bytes=f.read()), type="attachment", filename="crash.dmp",
                                   headers={"attachment_type": "event.minidump"}))
        sentry_sdk.get_client().transport.capture_envelope(envelope)
    sentry_sdk.flush(timeout=10)
    return event_id


if __name__ == "__main__":
    kind, dsn = sys.argv[1], sys.argv[2]
    if kind == "raven":
        event_id = send_raven(dsn)
    elif kind == "sentry-sdk":
        event_id = send_sentry_sdk(dsn)
    elif kind == "sentry-sdk-minidump":
        event_id = send_sentry_sdk(dsn, dump=sys.argv[3])
    else:
        sys.exit(__doc__)
    print(json.dumps({"event_id": event_id}))
