"""KurrentDB's official Python client against csp-ledger's KurrentDB endpoint.

Run by tests/python.rs with the endpoint's URL and keys in the environment. Appends (as the
store admin), reads a stream and $all, and catches up a subscription (as a reader).
"""

import faulthandler
import os
import sys
import traceback
import uuid

from kurrentdbclient import KurrentDBClient, NewEvent, StreamState
from kurrentdbclient.exceptions import WrongCurrentVersionError

ADMIN_URL = os.environ["ENDPOINT_ADMIN_URL"]
READER_URL = os.environ["ENDPOINT_READER_URL"]
CONTENT_TYPE = "application/octet-stream"


def main() -> None:
    # Should anything hang, print every thread's stack and exit before the Rust side's
    # 120 s timeout, so the failure shows where.
    faulthandler.dump_traceback_later(90, exit=True)
    # Both clients are closed here, while every gRPC thread still runs, rather than by
    # `__del__` at interpreter shutdown.
    with KurrentDBClient(uri=ADMIN_URL) as admin, KurrentDBClient(uri=READER_URL) as reader:
        stream = f"partner-{uuid.uuid4()}"
        events = [
            NewEvent(type="Happened", data=bytes([0x91, i]), content_type=CONTENT_TYPE)
            for i in range(3)
        ]
        revision = admin.append_to_stream(
            stream, events=events[:2], current_version=StreamState.NO_STREAM
        )
        assert revision == 1, revision
        revision = admin.append_to_stream(stream, events=events[2:], current_version=1)
        assert revision == 2, revision

        read = reader.get_stream(stream)
        assert [e.id for e in read] == [e.id for e in events], read
        assert [e.data for e in read] == [e.data for e in events]
        assert [e.stream_position for e in read] == [0, 1, 2]

        backwards = reader.get_stream(stream, backwards=True, limit=2)
        assert [e.id for e in backwards] == [events[2].id, events[1].id]

        everything = list(reader.read_all())
        assert [e.id for e in everything if e.stream_name == stream] == [e.id for e in events]
        positions = [e.commit_position for e in everything]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)

        subscription = reader.subscribe_to_all(include_caught_up=True)
        seen = []
        for item in subscription:
            if item.is_caught_up:
                break
            seen.append(item.id)
        assert [i for i in seen if i in {e.id for e in events}] == [e.id for e in events], seen
        more = NewEvent(type="Happened", data=b"\x90", content_type=CONTENT_TYPE)
        admin.append_to_stream(stream, events=[more], current_version=2)
        for item in subscription:
            if not item.is_caught_up and item.id == more.id:
                break
        subscription.stop()

        # A wrong expected version is the client's own concurrency error, through Append (one
        # event) and BatchAppend (several): the door sends KurrentDB's details.
        late = [NewEvent(type="Happened", data=b"\x90", content_type=CONTENT_TYPE) for _ in range(2)]
        for proposed in (late[:1], late):
            try:
                admin.append_to_stream(stream, events=proposed if len(proposed) > 1 else proposed[0], current_version=1)
            except WrongCurrentVersionError as error:
                assert error.actual_version == 3, error.actual_version
            else:
                raise AssertionError("appended at a wrong expected version")
        try:
            admin.append_to_stream(f"partner-{uuid.uuid4()}", events=late, current_version=0)
        except WrongCurrentVersionError as error:
            assert error.actual_version == StreamState.NO_STREAM, error.actual_version
        else:
            raise AssertionError("appended to a stream that does not exist at revision 0")

        # What a teardown lists: nothing, rather than an error.
        assert reader.list_subscriptions() == [], "persistent subscriptions"
        assert list(reader.list_all_projection_statistics()) == [], "projections"

        try:
            reader.append_to_stream(stream, events=[NewEvent(type="X", data=b"", content_type=CONTENT_TYPE)], current_version=3)
        except Exception as error:  # the reader key must not append
            print(f"reader refused as expected: {type(error).__name__}")
        else:
            raise AssertionError("a reader appended")
    print("python official client: ok")


if __name__ == "__main__":
    # Leave with os._exit, skipping the interpreter's finalization: gRPC's objects run
    # `__del__` then, and one can wait forever on a lock held by a daemon thread that
    # finalization has already frozen (seen about once in 50 runs). Every check is done
    # by then.
    try:
        main()
        status = 0
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
