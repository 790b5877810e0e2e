"""Encoding and publishing: encoder sessions, codec options, the publisher with reconnects, the stall guard."""
