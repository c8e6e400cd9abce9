"""bench-tiny: returns its input."""


def handler(ctx):
    return {"echo": ctx}
