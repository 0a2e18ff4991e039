"""Local actions: what the model's function calls do on the speaker itself.

    schema.py    the model's arguments checked against a function's parameters (pure)
    timers.py    the timer table, durations (pure)
    volume.py    volume levels and the gain they put on samples (pure)
    builtins.py  the built-in functions as declared to the model
    dispatch.py  toolCall -> checked, run, answered; cancellation; limits; journal records
    commands.py  [[tools.command]] programs run with no shell, in their own process group
    alarm.py     a ringing timer on the speaker and the LED
    state.py     the state file (volume, timers), written atomically
    host.py      all of it wired to the daemon (`Actions`)
"""
