"""The network front-end (``perslm-voice serve``): the same sessions as the terminal, over a
WebSocket, for a browser tab or another program. app.py is the ASGI app, connection.py one
client, protocol.py the messages, player.py the client's speakers, static/ the browser client."""
