"""Notification: Claude Code tells its person something, most often that it waits for them (a
permission dialog, or input after 60 s idle). The dispatcher notes it as the session's
activity, "waiting" (sessionward.activity); there is nothing to answer: Claude Code shows no
output of a Notification hook."""

from sessionward.hooks import HookEvent


def handle(event: HookEvent) -> dict | None:
    return None
