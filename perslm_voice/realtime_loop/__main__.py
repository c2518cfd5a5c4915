"""`python -m perslm_voice.realtime_loop`: the terminal session, with the options of
`perslm-voice chat`."""

from ..cli import run_guarded
from ..cli.chat import chat

run_guarded(lambda: chat.main(prog_name="python -m perslm_voice.realtime_loop"))
