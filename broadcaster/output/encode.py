"""One encoding session per connection: libx264 + AAC-LC on PyAV, muxed into the output.

libx264 is opened with bit_rate == maxrate (the ceiling) and a VBV buffer: only then does it
apply a `bit_rate` set later, while it runs (within a few frames). maxrate and the VBV
buffer then follow every new bitrate (codec_options), so keyframes stay in proportion to
what the link carries. Rate control's probes add H.264 filler data to the video packets
(padding): link load without touching the picture. A new session starts with an IDR frame
and pts at zero, which is what an ingest expects after a reconnect.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from broadcaster.config import AudioSettings, VideoSettings
from broadcaster.media.slotqueue import MediaSlot
from broadcaster.output.codec_options import codec_options

MAX_PADDING_BYTES = 256 * 1024


def _filler_nal(size: int) -> bytes:
    """An Annex B filler-data NAL unit of `size` bytes in all: 0xFF payload, stop bit."""
    return b"\x00\x00\x00\x01\x0c" + b"\xff" * max(0, size - 6) + b"\x80"


class EncoderSession:
    def __init__(self, container, width: int, height: int, fps: int, video: VideoSettings,
                 audio: AudioSettings, bitrate_kbps: int | None = None):
        self.container = container
        self.width, self.height, self.fps = width, height, fps
        self.ceiling_kbps = video.bitrate_kbps
        gop = max(1, round(fps * video.keyframe_interval_s))
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        cc = vs.codec_context
        cc.time_base = Fraction(1, fps)
        cc.gop_size = gop
        cc.max_b_frames = 0
        ceiling = video.bitrate_kbps * 1000
        cc.bit_rate = ceiling
        cc.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": video.profile,
            "maxrate": str(ceiling),
            "bufsize": str(int(ceiling * video.buffer_s)),
            # ultrafast turns CABAC off, which makes the stream Constrained Baseline; ingests
            # ask for Main/High, and CABAC (+8x8 transform for High) costs little CPU.
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:cabac=1:"
                           + ("8x8dct=1:" if video.profile == "high" else "")
                           + "colorprim=bt709:transfer=bt709:colormatrix=bt709",
        }
        astream = container.add_stream("aac", rate=audio.sample_rate)
        acc = astream.codec_context
        acc.layout = "stereo"
        acc.bit_rate = audio.bitrate_kbps * 1000
        self.audio_kbps = audio.bitrate_kbps
        acc.time_base = Fraction(1, audio.sample_rate)
        acc.options = {"aac_coder": "fast"}
        self.video_stream, self.audio_stream = vs, astream
        self.sample_rate = audio.sample_rate
        self._frames = 0
        self._samples = 0
        self._last_frame: av.VideoFrame | None = None
        self.bytes_video = 0
        self.bytes_audio = 0
        self.frames_skipped = 0
        self.bitrate_kbps = video.bitrate_kbps
        # libx264 must be OPENED at bit_rate == maxrate: opened lower, it ignores every later
        # change of bit_rate. So a session that starts below the ceiling (rate control, a
        # reconnect) applies its bitrate once the codec is open, at the first write.
        self._initial_kbps = bitrate_kbps
        self.buffer_s = video.buffer_s
        self._vbv = None                 # CodecOptions, False when unavailable
        self._vbv_pending = False
        self.padding_kbps = 0             # a rate-control probe's filler (see _padded)
        self._padding_owed = 0.0
        self.bytes_padding = 0
        if bitrate_kbps is not None:
            self.bitrate_kbps = max(1, min(int(bitrate_kbps), self.ceiling_kbps))

    @property
    def needs_picture(self) -> bool:
        """True until the first frame: a slot without video cannot repeat anything yet."""
        return self._last_frame is None

    @property
    def media_seconds(self) -> float:
        return self._samples / self.sample_rate

    def set_bitrate(self, kbps: int) -> int:
        """Retarget the video encoder live (capped at the ceiling it was opened with)."""
        kbps = max(1, min(int(kbps), self.ceiling_kbps))
        self.video_stream.codec_context.bit_rate = kbps * 1000
        self.bitrate_kbps = kbps
        self._vbv_pending = True
        self._follow_vbv()
        return kbps

    def _follow_vbv(self) -> None:
        """Size the VBV (maxrate, buffer) for the current bitrate, once the codec is open.

        Opened at the ceiling, libx264 would keep a ceiling-sized buffer after every cut and
        spend it on keyframes far larger than a narrow link can carry (see codec_options).
        """
        cc = self.video_stream.codec_context
        if not self._vbv_pending or not cc.is_open:
            return
        self._vbv_pending = False
        if self._vbv is None:
            self._vbv = codec_options(cc) or False
        if self._vbv:
            bps = self.bitrate_kbps * 1000
            self._vbv.set_int("maxrate", bps)
            self._vbv.set_int("bufsize", int(bps * self.buffer_s))

    def write(self, slot: MediaSlot, skip_video: bool = False) -> int:
        """Encode and mux one slot; returns bytes muxed. Raises on a broken output.

        skip_video (rate control: frame-rate reduction or audio only) sends no picture for
        this slot; its frame number is used up, so the next picture keeps its true pts.
        """
        written = 0
        # A probe's padding is owed per slot and rides on the next picture sent (with a
        # frame-rate cut, fewer pictures carry more each); at most 0.25 s of it is kept.
        if self.padding_kbps > 0:
            per_slot = self.padding_kbps * 1000 / 8 / self.fps
            self._padding_owed = min(self._padding_owed + per_slot, per_slot * self.fps / 4)
        else:
            self._padding_owed = 0.0
        if self._initial_kbps is not None:
            self._initial_kbps = None
            self.set_bitrate(self.bitrate_kbps)
        if slot.video is not None:
            frame = av.VideoFrame.from_numpy_buffer(slot.video, format="yuv420p")
            self._last_frame = frame
        else:
            frame = self._last_frame
        if skip_video and frame is not None:
            self._frames += 1
            self.frames_skipped += 1
        elif frame is not None:
            self._follow_vbv()
            frame.pts = self._frames
            self._frames += 1
            for packet in self.video_stream.encode(frame):
                packet = self._padded(packet)
                self.bytes_video += packet.size
                written += packet.size
                self.container.mux(packet)
        planar = np.ascontiguousarray(slot.audio.T)
        aframe = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        aframe.sample_rate = self.sample_rate
        aframe.pts = self._samples
        aframe.time_base = Fraction(1, self.sample_rate)
        self._samples += planar.shape[1]
        for packet in self.audio_stream.encode(aframe):
            self.bytes_audio += packet.size
            written += packet.size
            self.container.mux(packet)
        return written

    def _padded(self, packet: av.Packet) -> av.Packet:
        """The packet with the padding owed since the last one appended as a filler NAL.

        Filler data (NAL type 12) is part of H.264 for exactly this: bytes a decoder skips.
        The FLV muxer converts it with the rest of the Annex B packet; MPEG-TS carries it.
        """
        size = int(min(self._padding_owed, MAX_PADDING_BYTES))
        if size < 64:
            return packet
        data = bytes(packet)
        if not (data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")):
            return packet                          # (not Annex B: leave it alone)
        self._padding_owed -= size
        self.bytes_padding += size
        padded = av.Packet(data + _filler_nal(size))
        padded.pts, padded.dts, padded.time_base = packet.pts, packet.dts, packet.time_base
        padded.stream = packet.stream
        padded.is_keyframe = packet.is_keyframe
        return padded

    def close(self, flush: bool = True) -> None:
        """Flush both encoders (so a file plays to its end) and close the container."""
        try:
            if flush:
                for stream in (self.video_stream, self.audio_stream):
                    for packet in stream.encode(None):
                        self.container.mux(packet)
        finally:
            self.container.close()
