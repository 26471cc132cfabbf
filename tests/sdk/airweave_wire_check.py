"""Drives Airweave's published Python SDK (airweave-sdk) against this API, unchanged.

Every call must parse into the SDK's own models; errors must raise the SDK's typed errors with a
string `detail`. Usage: AIRWEAVE_API_KEY=... python airweave_wire_check.py BASE_URL COLLECTION,
or BASE_URL --synced CONNECTION_ID once the connection's first sync has run (then it runs,
cancels, updates and finally deletes that connection).
Prints one JSON line describing what it saw; exits non-zero on the first mismatch.
"""

import json
import os
import sys

from airweave import AirweaveSDK, DirectAuthentication, ScheduleConfig
from airweave.core.api_error import ApiError
from airweave.errors import NotFoundError, UnprocessableEntityError


def synced(client: AirweaveSDK, connection_id: str) -> None:
    """The jobs list and the connection after the worker ran the first sync."""
    jobs = client.source_connections.get_source_connection_jobs(connection_id)
    assert len(jobs) == 1 and jobs[0].status == "completed", jobs
    job = jobs[0]
    assert job.completed_at.tzinfo is not None and job.duration_seconds is not None
    assert job.entities_updated == 0 and job.entities_deleted == 0 and job.error is None
    connection = client.source_connections.get(connection_id)
    assert connection.status == "active", connection.status
    run = client.source_connections.run(connection_id, force_full_sync=True)
    assert run.status == "pending" and run.source_connection_id == connection_id, run
    stopped = client.source_connections.cancel_job(connection_id, run.id)
    assert stopped.status == "cancelled", stopped
    assert connection.sync.successful_runs == 1 and connection.sync.last_job.status == "completed"
    assert connection.entities.total_entities == job.entities_inserted, connection.entities
    updated = client.source_connections.update(
        connection_id, name="Renamed by the SDK", schedule=ScheduleConfig(cron="0 */2 * * *")
    )
    assert updated.name == "Renamed by the SDK" and updated.schedule.cron == "0 */2 * * *", updated
    assert updated.schedule.next_run is not None and updated.schedule.next_run.tzinfo is not None
    try:
        client.source_connections.update(connection_id, schedule=ScheduleConfig(cron="* * * * *"))
        raise AssertionError("a schedule every minute was accepted")
    except UnprocessableEntityError as e:
        assert isinstance(e.body["detail"], str), e.body
    deleted = client.source_connections.delete(connection_id)
    assert deleted.id == connection_id and deleted.name == "Renamed by the SDK", deleted
    try:
        client.source_connections.get(connection_id)
        raise AssertionError("a deleted connection is still readable")
    except NotFoundError as e:
        assert isinstance(e.body.detail, str), e.body
    print(json.dumps({"inserted": job.entities_inserted, "deleted": deleted.id}))


def main() -> None:
    base_url = sys.argv[1]
    client = AirweaveSDK(api_key=os.environ["AIRWEAVE_API_KEY"], base_url=base_url)
    if sys.argv[2] == "--synced":
        synced(client, sys.argv[3])
        return
    collection = sys.argv[2]

    sources = client.sources.list()
    short_names = sorted(s.short_name for s in sources)
    assert {"stub", "github"} <= set(short_names), short_names
    github = client.sources.get("github")
    assert github.class_name and github.auth_fields is not None
    assert any(f.name == "personal_access_token" and f.is_secret for f in github.auth_fields.fields)
    assert any(f.name == "repo_name" and f.required for f in github.config_fields.fields)

    created = client.source_connections.create(
        short_name="stub",
        readable_collection_id=collection,
        authentication=DirectAuthentication(credentials={"api_key": "sdk-wire-secret"}),
        config={"entity_count": 5, "seed": 1},
        schedule=ScheduleConfig(cron="0 3 * * *"),
    )
    assert created.status == "active", created.status
    assert created.auth.method == "direct" and created.auth.authenticated
    assert created.schedule.cron == "0 3 * * *" and created.schedule.next_run is not None
    assert created.sync.last_job.status == "pending"
    assert created.created_at.tzinfo is not None

    jobs = client.source_connections.get_source_connection_jobs(created.id, limit=10)
    assert [j.id for j in jobs] == [created.sync.last_job.id], jobs
    assert jobs[0].status == "pending" and jobs[0].source_connection_id == created.id
    assert jobs[0].entities_inserted == 0 and jobs[0].completed_at is None

    fetched = client.source_connections.get(created.id)
    assert fetched.id == created.id and fetched.name == "Stub Connection"

    items = client.source_connections.list(collection=collection, skip=0, limit=10)
    assert [i.id for i in items] == [created.id], items
    assert items[0].auth_method == "direct" and items[0].is_authenticated

    try:
        client.source_connections.get("00000000-0000-0000-0000-000000000000")
        raise AssertionError("an unknown id must be 404")
    except NotFoundError as e:
        assert isinstance(e.body.detail, str), e.body

    try:
        client.source_connections.create(
            short_name="stub",
            readable_collection_id=collection,
            name="abc",
            authentication=DirectAuthentication(credentials={"api_key": "k"}),
        )
        raise AssertionError("a 3-character name must be 422")
    except UnprocessableEntityError as e:
        assert isinstance(e.body["detail"], str), e.body

    try:
        AirweaveSDK(api_key="sc_wrong", base_url=base_url).sources.list()
        raise AssertionError("a wrong key must be 401")
    except ApiError as e:
        assert e.status_code == 401 and isinstance(e.body["detail"], str), e.body

    print(json.dumps({"sources": short_names, "created": created.id, "listed": len(items)}))


if __name__ == "__main__":
    main()
