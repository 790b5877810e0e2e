"""Test data made on the spot (espeak-ng speech) or stored with its maker (the mel reference)."""
