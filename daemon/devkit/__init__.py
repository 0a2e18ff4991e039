"""Tools that ship with pttd but that the daemon never imports.

`pttd emulator` (a protocol-faithful local Live API server), `pttd demo` (the whole pipeline
with no Pi, no sound card and no key) and the PulseAudio null-sink rig that gives the demo, the
tests and the benchmark a sound card. Keeping them here keeps the product's rooms
(`daemon/`, `daemon/live/`, `hw/`) to what runs on the speaker.
"""
