"""The paced media loop: one audio-master clock, the mixer, the slot queue to the encoder, counters."""
