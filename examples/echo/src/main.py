"""Echo agent: one entrypoint serves the agent and its sub-agent (dispatch on "action")."""


def _text(ctx):
    text = ctx.get("text")
    if text is None and isinstance(ctx.get("data"), dict):
        text = ctx["data"].get("text")
    return "" if text is None else str(text)


def handler(ctx):
    if ctx.get("action") == "echo-upper":
        return {"text": _text(ctx).upper()}
    return {"echo": ctx}
