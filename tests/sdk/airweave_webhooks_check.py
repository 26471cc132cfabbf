"""Drives the `webhooks` client of Airweave's published Python SDK (airweave-sdk) against this
API, unchanged: every call must parse into the SDK's own models.

Usage: AIRWEAVE_API_KEY=... python airweave_webhooks_check.py BASE_URL RECEIVER_URL
[MESSAGE_ID]. Subscribes RECEIVER_URL, reads, changes, recovers and finally deletes that subscription;
with MESSAGE_ID also reads the message log and that message with its attempts. Prints one JSON
line describing what it saw; exits non-zero on the first mismatch.
"""

import datetime
import json
import os
import sys

from airweave import AirweaveSDK
from airweave.errors import NotFoundError, UnprocessableEntityError


def main() -> None:
    base_url, receiver = sys.argv[1], sys.argv[2]
    message_id = sys.argv[3] if len(sys.argv) > 3 else None
    client = AirweaveSDK(api_key=os.environ["AIRWEAVE_API_KEY"], base_url=base_url)
    hooks = client.webhooks

    created = hooks.create_subscription(
        url=receiver, event_types=["sync.completed", "source_connection.created"]
    )
    assert created.url == receiver and created.disabled is False, created
    assert sorted(created.filter_types) == ["source_connection.created", "sync.completed"]
    assert created.health_status == "unknown" and created.created_at.tzinfo is not None

    listed = hooks.get_subscriptions()
    assert created.id in [s.id for s in listed], listed

    detail = hooks.get_subscription(created.id, include_secret=True)
    assert detail.secret and detail.secret.startswith("whsec_"), "no secret"
    assert detail.delivery_attempts is not None
    plain = hooks.get_subscription(created.id)
    assert plain.secret is None

    disabled = hooks.patch_subscription(created.id, disabled=True)
    assert disabled.disabled is True, disabled
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    enabled = hooks.patch_subscription(created.id, disabled=False, recover_since=since)
    assert enabled.disabled is False, enabled
    recovery = hooks.recover_failed_messages(created.id, since=since)
    assert recovery.status == "completed" and recovery.id, recovery
    until = datetime.datetime.now(datetime.timezone.utc)
    window = hooks.recover_failed_messages(created.id, since=since, until=until)
    assert window.status == "completed", window

    try:
        hooks.create_subscription(url=receiver, event_types=["sync.exploded"])
        raise AssertionError("an unknown event type must be 422")
    except UnprocessableEntityError as e:
        assert isinstance(e.body["detail"], str), e.body

    seen = {"subscription": created.id}
    if message_id:
        messages = hooks.get_messages(event_types=["source_connection.created", "sync.completed"])
        assert message_id in [m.id for m in messages], messages
        message = hooks.get_message(message_id, include_attempts=True)
        assert message.payload["event_type"] == message.event_type
        assert message.delivery_attempts is not None
        seen["messages"] = len(messages)
        seen["attempts"] = len(message.delivery_attempts)

    deleted = hooks.delete_subscription(created.id)
    assert deleted.id == created.id, deleted
    try:
        hooks.get_subscription(created.id)
        raise AssertionError("a deleted subscription is still readable")
    except NotFoundError:
        pass
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
