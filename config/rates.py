"""The Live API's audio rates, which every room that touches audio agrees on.

The service takes microphone audio as 16 kHz mono PCM16 and sends its spoken reply as 24 kHz
mono PCM16; devices that run at other rates are resampled to and from these. Example::

    from config.rates import INPUT_RATE
    ring = Ring(INPUT_RATE * 5)  # five seconds of microphone audio
"""

INPUT_RATE = 16000
OUTPUT_RATE = 24000
