"""The terminal layer: a private tmux server with a pool of panes, each running a resident
runner that executes commands exactly as `bash -c` would while the pane shows them.

`tmux` is the one path to tmux (commands, control mode, windows; `TmuxError` the one exception
root), `pool` finds or starts a pane, `runner` lives in the pane, `client` talks to a runner,
`session` drives interactive shells (`shell`: their start and prompt state, `keys`: key names
and literal text), `protocol` is the framing shared by the Python client, the runner and the
C prefix wrapper.
"""
