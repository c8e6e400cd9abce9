"""bench-size: echo, proving its one dependency imports."""

import six


def handler(ctx):
    return {"echo": ctx, "six": six.__version__}
