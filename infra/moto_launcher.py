"""Run moto server with DynamoDB requests serialised; what infra/emulator.sh starts.

moto's DynamoDB backend is not thread-safe: under a few dozen concurrent TransactWriteItems
the threaded server now and then answers an HTML 500 ("dictionary changed size during
iteration"). Real DynamoDB never does that, so rather than retry in production code the
emulator lets one DynamoDB request (and DynamoDB Streams, which reads the same tables) run at
a time. Every other request (SQS long polls, Secrets Manager, ...) is left concurrent, so a
ReceiveMessage waiting 20 s never holds up a DynamoDB call, nor the reverse.

moto's models also record every object they create until a reset (BaseModel.__new__ appends
to `instances_tracked`, read only by moto's dashboard), and TransactWriteItems deep-copies the
whole table as its rollback snapshot: memory and latency grow without bound over a test run or a
100k-entity benchmark. After each DynamoDB request, still inside the lock, those lists are
cleared; nothing the emulated API answers depends on them.

moto rolls a cancelled TransactWriteItems back by putting those snapshots in place of the live
tables, stream shard and all: a shard iterator handed out earlier then reads the replaced shard,
which holds the cancelled writes' stream records and never gets a later one (the local stream
poller, like Lambda, keeps its iterator). `keep_stream_shards_through_rollbacks` keeps the live
shard instead, cut back to the records it had before the transaction, as on AWS, where a
cancelled transaction writes nothing to the stream.

This serves the app the `moto_server` console script serves (moto/server.py), with its
request handler, wrapped in `SerialiseDynamoDB`. Usage: moto_launcher.py [-H HOST] [-p PORT]
"""

import argparse
import os
import signal
import sys
import threading

from moto.core.model_instances import model_data
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerialiseDynamoDB:
    """WSGI middleware: requests whose X-Amz-Target starts with "DynamoDB" (DynamoDB_20120810.*
    and DynamoDBStreams_20120810.*) run one at a time; all others pass straight through."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            # The app may return a lazy iterable that does the work as it is consumed:
            # produce the whole body, and close the iterable, while still holding the lock.
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                if hasattr(body, "close"):
                    body.close()
                forget_tracked_instances("dynamodb")


def forget_tracked_instances(service):
    for model in model_data.get(service, {}).values():
        model.instances_tracked.clear()


def keep_stream_shards_through_rollbacks():
    transact_write_items = DynamoDBBackend.transact_write_items

    def keeping_stream_shards(self, transact_items):
        live = {}
        for item in transact_items:
            operation = next(iter(item.values()), None)
            name = operation.get("TableName") if isinstance(operation, dict) else None
            table = self.tables.get(name)
            shard = getattr(table, "stream_shard", None)
            if shard is not None:
                live[name] = (table, shard, len(shard.items))
        try:
            return transact_write_items(self, transact_items)
        except BaseException:
            for name, (table, shard, count) in live.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:
                    del shard.items[count:]
                    shard.table = restored
                    restored.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = keeping_stream_shards


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args()
    # As moto_server does: moto uses MOTO_PORT when it calls itself (e.g. SQS -> Lambda).
    os.environ.setdefault("MOTO_PORT", str(args.port))
    # SIGTERM (infra/emulator.sh stop) and SIGINT exit cleanly, as with moto_server; but unlike
    # moto_server, an inherited "ignore SIGINT" (emulator.sh's background job) is kept, so a
    # Ctrl-C meant for the foreground command does not take the emulator down.
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, lambda *_: sys.exit(0))
    keep_stream_shards_through_rollbacks()
    app = SerialiseDynamoDB(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
