"""The terminal layer: a private tmux server with a pool of panes, each running a resident
runner that executes commands exactly as `bash -c` would while the pane shows them.

`pool` finds or starts a pane, `runner` lives in the pane, `client` talks to a runner,
`control` is a tmux control-mode connection for fast screen captures, `protocol` is the framing
shared by the Python client, the runner and the C prefix wrapper.
"""
