"""Request log lines in batches (gateway/logbatch.py): whole lines, few writes, nothing lost at flush."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from gateway import logbatch
from gateway.logbatch import PIPE_BUF, LineBatcher, chunks


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every os.write the batcher makes."""
    sizes: list[int] = []
    real = os.write

    def counting(fd: int, data: bytes | memoryview) -> int:
        sizes.append(len(data))
        return real(fd, data)

    monkeypatch.setattr(logbatch.os, "write", counting)
    return sizes


def drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return out
        if not data:
            return out
        out += data


def test_lines_from_many_threads_leave_whole_in_a_few_writes_at_flush(pipe: tuple[int, int],
                                                                       writes: list[int]) -> None:
    read_fd, write_fd = pipe
    batcher = LineBatcher(write_fd, delay_s=60, max_bytes=1 << 20)  # only flush() writes here
    threads, per_thread = 8, 150
    expected = {f'{{"request_id":"t{t}-{i}","pad":"{"x" * (i % 40)}"}}'.encode()
                for t in range(threads) for i in range(per_thread)}

    def send(t: int) -> None:
        for i in range(per_thread):
            batcher.write(f'{{"request_id":"t{t}-{i}","pad":"{"x" * (i % 40)}"}}'.encode())

    workers = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert drain(read_fd) == b"" and writes == []  # every line waits in the batch

    batcher.flush()
    data = drain(read_fd)
    assert data.endswith(b"\n")
    assert set(data.splitlines()) == expected and len(data.splitlines()) == len(expected)
    assert all(size <= PIPE_BUF for size in writes)  # never interleaved with another worker's write
    assert len(writes) <= len(data) // PIPE_BUF + 2, writes  # as few as whole lines allow
    count = len(writes)
    batcher.flush()  # nothing left: no write at all
    assert len(writes) == count and drain(read_fd) == b""


def test_the_thread_writes_a_batch_after_the_delay_in_one_write(pipe: tuple[int, int], writes: list[int]) -> None:
    read_fd, write_fd = pipe
    batcher = LineBatcher(write_fd, delay_s=0.05)
    for i in range(5):
        batcher.write(b'{"n":%d}' % i)
    deadline = time.monotonic() + 10
    data = b""
    while data.count(b"\n") < 5 and time.monotonic() < deadline:
        data += drain(read_fd)
        time.sleep(0.01)
    assert data.splitlines() == [b'{"n":%d}' % i for i in range(5)]
    assert len(writes) == 1


def test_a_full_batch_leaves_before_the_delay(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    batcher = LineBatcher(write_fd, delay_s=60, max_bytes=1000)
    for i in range(20):
        batcher.write(b"%03d" % i + b"y" * 96)
    deadline = time.monotonic() + 10
    data = b""
    while data.count(b"\n") < 10 and time.monotonic() < deadline:
        data += drain(read_fd)
        time.sleep(0.01)
    assert data.count(b"\n") >= 10  # written by the thread, long before the minute is up


def test_a_delay_of_zero_writes_each_line_at_once(pipe: tuple[int, int], writes: list[int]) -> None:
    read_fd, write_fd = pipe
    batcher = LineBatcher(write_fd, delay_s=0)
    batcher.write(b'{"a":1}')
    assert drain(read_fd) == b'{"a":1}\n' and writes == [8]


@pytest.mark.parametrize(("lines", "limit", "expected"), [
    ([], 10, []),
    ([b"ab", b"cd"], 10, [b"ab\ncd\n"]),
    ([b"abcd", b"efgh"], 9, [b"abcd\n", b"efgh\n"]),  # 10 bytes together: over the limit
    ([b"abc", b"defg"], 9, [b"abc\ndefg\n"]),  # exactly the limit
    ([b"a", b"x" * 20, b"b"], 9, [b"a\n", b"x" * 20 + b"\n", b"b\n"]),  # too long: on its own, whole
])
def test_chunks_hold_whole_lines_up_to_the_limit(lines: list[bytes], limit: int, expected: list[bytes]) -> None:
    assert chunks(lines, limit) == expected
