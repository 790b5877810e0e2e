"""A file output that cannot be written ends the broadcast with a clear error (exit 3) instead
of retrying the same file forever and saying "recorded"; a recording is never overwritten."""

import contextlib

import av

from tests.support.broadcaster_proc import (
    run_broadcaster,
    start_broadcaster,
    wait_on_air,
)
from tests.support.media import probe
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.tmpfs import small_tmpfs


def test_a_filling_disk_ends_the_recording_while_the_file_can_be_finished(tmp_path):
    with small_tmpfs(tmp_path / "disk", "3m") as disk:
        recording = disk / "rec.flv"
        result = run_broadcaster("run", "--output", str(recording), "--duration", "60",
                                 "--bitrate", "3000", "--control-port", "0", timeout=90)
        assert result.returncode == 3, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert "recording stopped: the disk holding" in result.stderr
        assert "reconnecting" not in result.stderr
        assert "recorded" not in result.stdout
        report = probe(recording)           # decodes to the end: the file was finished
        assert report.video_duration > 2.0, report.video_pts[-3:]
        with av.open(str(recording)) as container:
            assert container.duration and container.duration / 1e6 > 2.0   # header has the duration


def test_a_disk_filled_by_another_process_stops_the_recording_without_retrying(tmp_path):
    """Another writer takes the last byte while the broadcaster records: whichever comes
    first (the free-space check or a failed write, ENOSPC), the run ends with exit 3 and does
    not retry the same file."""
    port = free_port()
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        proc = start_broadcaster("run", "--output", str(disk / "rec.flv"), "--duration", "60",
                                 "--bitrate", "500", "--control-port", str(port))
        try:
            wait_on_air(port)
            with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            out, err = proc.communicate(timeout=30)
        finally:
            stop(proc)
    assert proc.returncode == 3, err[-3000:]
    assert "recording stopped" in err and "Traceback" not in err
    assert "reconnecting" not in err and "recorded" not in out


def test_an_existing_recording_is_never_overwritten(tmp_path):
    recording = tmp_path / "show.flv"
    recording.write_bytes(b"yesterday's show")
    result = run_broadcaster("run", "--output", str(recording), "--duration", "1",
                             "--control-port", "0")
    assert result.returncode == 3, result.stderr
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert recording.read_bytes() == b"yesterday's show"
