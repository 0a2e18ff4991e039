"""Shared pytest setup: fixtures live in tests/fixtures_*.py plugins, one per part."""

import os

# gpiozero needs a pin factory on machines with no GPIO; the mock one is real gpiozero code.
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")

pytest_plugins: list[str] = [
    "fixtures_audio", "fixtures_live", "fixtures_journal", "fixtures_daemon",
    "fixtures_actions",
]
