"""Run in a subprocess with HOME pointing at a temp dir: an ALSA 'file' PCM named testmic
(a real ALSA device whose capture side reads a raw file) stands in for a sound card, so
SoundDeviceSource is exercised through real PortAudio/ALSA. Prints one JSON line."""

import json
import os
import sys
import threading
import time

ASOUNDRC = """pcm.testmic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
"""


def write_config(home: str, infile: str, present: bool) -> None:
    with open(os.path.join(home, ".asoundrc"), "w") as f:
        f.write(ASOUNDRC.format(infile=infile) if present else "")


def main() -> None:
    home, infile, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    from broadcaster.backoff import Backoff
    from broadcaster.mic.capture import MicDeviceNotFound, SoundDeviceSource, list_input_devices
    if mode == "missing":
        try:
            SoundDeviceSource(sys.argv[4])
            print(json.dumps({"error": None}))
        except MicDeviceNotFound as exc:
            print(json.dumps({"error": str(exc), "devices": list_input_devices()}))
        return
    # mode == "recover": capture, lose the device, get it back.
    src = SoundDeviceSource("testmic", backoff=Backoff(0.1, 2.0, 0.4), stall_s=1.0)
    got = {"before": 0, "after": 0, "peak": 0.0}
    phase = ["before"]

    def consume():
        for f in src.frames():
            got[phase[0]] += 1
            got["peak"] = max(got["peak"], float(abs(f).max()))

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 5
    while got["before"] < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    write_config(home, infile, present=False)      # the device disappears...
    src._stream.abort()                            # ...and its stream dies, as on unplug
    time.sleep(0.8)                                # reopen attempts fail meanwhile
    failed_while_missing = src.reopen_count == 0
    phase[0] = "after"
    write_config(home, infile, present=True)       # plugged back in
    deadline = time.monotonic() + 5
    while got["after"] < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    src.close()
    t.join(5)
    print(json.dumps({**got, "reopen_count": src.reopen_count, "failed_while_missing": failed_while_missing,
                      "thread_alive": t.is_alive()}))


if __name__ == "__main__":
    main()
