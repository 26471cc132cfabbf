"""Run moto server with DynamoDB requests serialised; what infra/emulator.sh starts.

moto's DynamoDB backend is not thread-safe: under a few dozen concurrent TransactWriteItems
the threaded server now and then answers an HTML 500 ("dictionary changed size during
iteration"). Real DynamoDB never does that, so rather than retry in production code the
emulator lets one DynamoDB request (and DynamoDB Streams, which reads the same tables) run at
a time. Every other request (SQS long polls, Secrets Manager, ...) is left concurrent, so a
ReceiveMessage waiting 20 s never holds up a DynamoDB call, nor the reverse.

moto's models also record every object they create until a reset (BaseModel.__new__ appends
to `instances_tracked`, read only by moto's dashboard): memory grows without bound over a test
run or a 100k-entity benchmark. After each DynamoDB request, still inside the lock, those lists
are cleared; nothing the emulated API answers depends on them.

moto's TransactWriteItems backs up every table it touches, whole (a deep copy per item of the
transaction), and rolls a cancelled one back by putting those copies in place of the live
tables: a one-item transaction costs as much as the table is large (3.5 ms on an empty table,
16 ms at 1,000 items), so anything measured on a growing table measures moto. And the swap
takes the stream shard with it: an iterator handed out earlier keeps reading the replaced shard,
which holds the cancelled writes' records and never gets a later one.
`transactions_back_up_only_their_items` backs up the items the transaction names instead (at
most 100), and on any failure puts them back as they were and cuts the live stream shard back to
the records it had before, as on AWS, where a cancelled transaction writes nothing at all.

moto's Query reads every item of the table, sorted by key, for each page (`Table.all_items`),
and compares keys through `DynamoType.cast_value`, which rebuilds the value on every call: a
Query of an empty partition took 200 ms at 3,000 items, 1 s at 17,000. `keys_compare_as_values`
sorts by the keys' plain values (keys are strings, numbers or binary; the order is the same) and
compares two strings without rebuilding them; `queries_read_what_they_need` hands a Query of
the table only its partition, and a Query of an index the items unsorted (moto sorts what
matches by the index's keys and the table's, so the answer is the same).

This serves the app the `moto_server` console script serves (moto/server.py), with its
request handler, wrapped in `SerialiseDynamoDB`. Usage: moto_launcher.py [-H HOST] [-p PORT]
"""

import argparse
import copy
import inspect
import os
from decimal import Decimal
import signal
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.core.model_instances import model_data
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
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


class ItemsBackup:
    """The items a transaction names, as they were before it, and each touched table's stream
    shard length; `restore` puts them all back."""

    def __init__(self, backend, transact_items):
        self.items, self.shards = [], {}
        for entry in transact_items:
            op = next(iter(entry.values()), None)
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue  # moto answers the missing table itself; nothing of it to restore
            source = op["Item"] if "Item" in op else op.get("Key", {})
            try:
                hash_key = DynamoType(source[table.hash_key_attr])
                range_key = (DynamoType(source[table.range_key_attr])
                             if table.range_key_attr else None)
            except KeyError:
                continue  # a malformed key: moto refuses the transaction before writing
            before = table.get_item(hash_key, range_key)
            self.items.append((table, hash_key, range_key, copy.deepcopy(before)))
            shard = getattr(table, "stream_shard", None)
            if shard is not None:
                self.shards[id(shard)] = (shard, len(shard.items))

    def restore(self):
        for table, hash_key, range_key, before in self.items:
            if range_key is None:
                if before is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = before
            elif before is None:
                table.items.get(hash_key, {}).pop(range_key, None)
                if hash_key in table.items and not table.items[hash_key]:
                    del table.items[hash_key]
            else:
                table.items[hash_key][range_key] = before
        for shard, count in self.shards.values():
            del shard.items[count:]


class LiveTables:
    """What moto's own backup sees instead of `copy`: while a transaction runs, "copying" a table
    answers the live table itself, so moto's rollback puts each table back in its own place (and
    `ItemsBackup` undoes the writes); any other copy is a real one."""

    def __init__(self):
        self.in_transaction = False

    def deepcopy(self, value, memo=None):
        if self.in_transaction and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def transactions_back_up_only_their_items():
    live = LiveTables()
    dynamodb_models.copy = live
    transact_write_items = DynamoDBBackend.transact_write_items

    def backing_up_items(self, transact_items):
        backup = ItemsBackup(self, transact_items[:100])
        live.in_transaction = True
        try:
            return transact_write_items(self, transact_items)
        except BaseException:
            backup.restore()
            raise
        finally:
            live.in_transaction = False

    DynamoDBBackend.transact_write_items = backing_up_items


def key_value(value):
    """A key attribute's value as DynamoDB orders it: numbers as numbers, strings and binary as
    they are (`DynamoType.cast_value` of a key, without the casting machinery)."""
    return Decimal(value.value) if value.type == "N" else value.value


def keys_compare_as_values():
    def all_items(self):
        items = []
        for hash_set in self.items.values():
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)

        def order(item):
            if item.range_key is None:
                return (key_value(item.hash_key),)
            return (key_value(item.hash_key), key_value(item.range_key))

        return sorted(items, key=order)

    Table.all_items = all_items
    equal, unequal = DynamoType.__eq__, DynamoType.__ne__

    def fast_equal(self, other):
        kind = self.type
        if kind in ("S", "B") and getattr(other, "type", None) == kind:
            return self.value == other.value
        return equal(self, other)

    def fast_unequal(self, other):
        kind = self.type
        if kind in ("S", "B") and getattr(other, "type", None) == kind:
            return self.value != other.value
        return unequal(self, other)

    DynamoType.__eq__ = fast_equal
    DynamoType.__ne__ = fast_unequal


def queries_read_what_they_need():
    query = Table.query
    signature = inspect.signature(query)

    def reading_what_it_needs(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs).arguments
        index_name, hash_key = arguments.get("index_name"), arguments.get("hash_key")

        def needed():
            if index_name is None and hash_key is not None:
                partition = self.items.get(hash_key)
                if partition is None:
                    return []
                return list(partition.values()) if self.range_key_attr else [partition]
            items = []
            for hash_set in self.items.values():
                if self.range_key_attr:
                    items.extend(hash_set.values())
                else:
                    items.append(hash_set)
            return items

        self.all_items = needed  # shadows the method for this one call
        try:
            return query(self, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = reading_what_it_needs


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
    transactions_back_up_only_their_items()
    keys_compare_as_values()
    queries_read_what_they_need()
    app = SerialiseDynamoDB(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
